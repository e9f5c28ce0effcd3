"""Small pieces every flow uses: who the caller is, their language, refusing forged buttons."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update

from bot.services.people import Person
from handlers.context import Context

log = logging.getLogger(__name__)

# Telegram allows 1-64 bytes of callback data; anything longer was not made by this bot.
MAX_CALLBACK_BYTES = 64


async def caller(update: Update, context: Context) -> tuple[Person, str]:
    """The person behind the update and the language to answer them in."""
    user = update.effective_user
    assert user is not None
    person = await context.services.people.person(user.id, user.first_name)
    return person, person.language or context.services.i18n.default


def keyboard(rows: Sequence[Sequence[tuple[str, str]]]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(label, callback_data=data) for label, data in row] for row in rows]
    )


def page_row(page: int, pages: int, prefix: str) -> list[tuple[str, str]]:
    """The ◀ ▶ buttons of a paged list; each carries `<prefix><page>`."""
    row = []
    if page > 0:
        row.append(("◀", f"{prefix}{page - 1}"))
    if page < pages - 1:
        row.append(("▶", f"{prefix}{page + 1}"))
    return row


def oversize(data: object) -> bool:
    return isinstance(data, str) and len(data.encode("utf-8")) > MAX_CALLBACK_BYTES


async def refuse_callback(update: Update, context: Context, why: str,
                          language: str | None = None) -> None:
    """Answer a button we did not make (or not for this person), audit it, change nothing."""
    query = update.callback_query
    user = update.effective_user
    data = query.data if query and isinstance(query.data, str) else ""
    log.warning("refused callback from %s: %s", user.id if user else None, why)
    await context.services.audit.record(
        "callback.refused", actor_telegram_id=user.id if user else None,
        detail=f"{why}: {data[:200]!r}",
    )
    if query is not None:
        await query.answer(context.services.i18n.t(language, "callback.refused"), show_alert=True)


async def stale_callback(update: Update, context: Context, language: str | None) -> None:
    """A button on an older message: say so and change nothing."""
    query = update.callback_query
    if query is not None:
        await query.answer(context.services.i18n.t(language, "callback.out_of_date"),
                           show_alert=True)
