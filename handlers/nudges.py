"""The nudge buttons: "Nhắc lại sau" (snooze). "Báo cáo ngay" (rp:start:<task>) belongs to the
report flow."""

from __future__ import annotations

from telegram import Update
from telegram.ext import BaseHandler, CallbackQueryHandler

from bot.context import Context
from handlers import callbacks
from handlers.common import alert, caller

COMMANDS: list[tuple[str, str]] = []


async def snooze(update: Update, context: Context) -> None:
    """Remind again one working day later; refuse data that is not this person's nudge."""
    services = context.services
    query = update.callback_query
    assert query is not None
    _, lang = await caller(update, context)
    outbox_id = callbacks.parse_snooze(query.data)
    chat = update.effective_chat
    when = None
    if outbox_id is not None and chat is not None and chat.id == query.from_user.id:
        when = await services.nudges.snooze(outbox_id, query.from_user.id)
    if when is None:
        await alert(update, services.i18n.t(lang, "nudges.snooze_refused"))
        return
    shown = services.i18n.datetime(lang, services.calendar.local(when))
    await alert(update, services.i18n.t(lang, "nudges.snoozed", when=shown), popup=False)


def handlers() -> list[BaseHandler[Update, Context, None]]:
    return [CallbackQueryHandler(snooze, pattern=callbacks.SNOOZE)]
