"""The nudge buttons: "Nhắc lại sau" (snooze). "Báo cáo ngay" (rp:start:<task>) belongs to the
report flow."""

from __future__ import annotations

import re

from telegram import Update
from telegram.ext import BaseHandler, CallbackQueryHandler

from handlers.common import caller
from handlers.context import Context

SNOOZE = re.compile(r"^ng:snooze:(\d{1,18})$")

COMMANDS: list[tuple[str, str]] = []


async def snooze(update: Update, context: Context) -> None:
    """Remind again one working day later; refuse data that is not this person's nudge."""
    services = context.services
    query = update.callback_query
    assert query is not None
    _, lang = await caller(update, context)
    match = SNOOZE.match(query.data or "")
    chat = update.effective_chat
    when = None
    if match and chat is not None and chat.id == query.from_user.id:
        when = await services.nudges.snooze(int(match.group(1)), query.from_user.id)
    if when is None:
        await query.answer(services.i18n.t(lang, "nudges.snooze_refused"), show_alert=True)
        return
    shown = services.i18n.datetime(lang, services.calendar.local(when))
    await query.answer(services.i18n.t(lang, "nudges.snoozed", when=shown))


def handlers() -> list[BaseHandler[Update, Context, None]]:
    return [CallbackQueryHandler(snooze, pattern=r"^ng:snooze:")]
