"""Small pieces every flow uses: who the caller is, their language, refusing forged buttons."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from telegram import Document, InlineKeyboardButton, InlineKeyboardMarkup, PhotoSize, Update
from telegram.constants import ParseMode
from telegram.error import TelegramError

from bot.context import Context
from bot.services.people import Person

log = logging.getLogger(__name__)

# Telegram allows 1-64 bytes of callback data; anything longer was not made by this bot.


async def download(file: Document | PhotoSize) -> bytes | None:
    """A file the person sent, or None when Telegram will not hand it over (too big for the Bot
    API, gone, the network): the caller answers the person instead of leaving them waiting."""
    try:
        return bytes(await (await file.get_file()).download_as_bytearray())
    except TelegramError as exc:
        log.warning("download of file %s failed: %s", file.file_unique_id, exc)
        return None


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


async def send_html(
    update: Update, text: str, rows: Sequence[Sequence[tuple[str, str]]] | None = None
) -> int:
    """Send `text` (HTML) to the update's chat under inline buttons given as (label, data)
    rows; returns the new message's id.

    What every step of a flow does, so it is kept lean: the keyboard goes out as the plain
    JSON Telegram reads (no PTB button objects to build and serialise again) and Telegram's
    answer is not turned into a PTB Message that no caller reads. Bot._post is what every
    PTB method sends through (defaults, rate limiter, errors); the tests check the wire.
    """
    chat = update.effective_chat
    assert chat is not None
    data: dict[str, object] = {"chat_id": chat.id, "text": text, "parse_mode": ParseMode.HTML}
    if rows:
        data["reply_markup"] = {
            "inline_keyboard": [
                [{"text": label, "callback_data": value} for label, value in row] for row in rows
            ]
        }
    sent = await update.get_bot()._post("sendMessage", data)
    return int(sent["message_id"])


def clip(text: str, width: int) -> str:
    """`text` in at most `width` characters: cut at a word where one ends near the limit,
    with "…" to show the cut."""
    if len(text) <= width:
        return text
    cut = text[: width - 1]
    if text[width - 1].isalnum():  # the cut falls inside a word: drop its start
        space = cut.rfind(" ")
        if space >= width * 2 // 3:
            cut = cut[:space]
    return cut.rstrip(" ,.;:-–") + "…"


def page_row(page: int, pages: int, prefix: str) -> list[tuple[str, str]]:
    """The ◀ ▶ buttons of a paged list; each carries `<prefix><page>`."""
    row = []
    if page > 0:
        row.append(("◀", f"{prefix}{page - 1}"))
    if page < pages - 1:
        row.append(("▶", f"{prefix}{page + 1}"))
    return row


async def refuse_callback(update: Update, context: Context, why: str, language: str | None = None) -> None:
    """Answer a button we did not make (or not for this person), audit it, change nothing."""
    query = update.callback_query
    user = update.effective_user
    data = query.data if query and isinstance(query.data, str) else ""
    log.warning("refused callback from %s: %s", user.id if user else None, why)
    await context.services.audit.record(
        "callback.refused",
        actor_telegram_id=user.id if user else None,
        detail=f"{why}: {data[:200]!r}",
    )
    if query is not None:
        await alert(update, context.services.i18n.t(language, "callback.refused"))


async def stale_callback(update: Update, context: Context, language: str | None) -> None:
    """A button on an older message: say so and change nothing."""
    await alert(update, context.services.i18n.t(language, "callback.out_of_date"))


async def alert(update: Update, text: str, *, popup: bool = True) -> None:
    """Answer a press with an alert (`popup`) or a brief notice. Telegram refuses to answer a
    press that waited too long (one made while the bot was restarting is "too old"): then say
    it in the chat instead, so that the person is not left without an answer."""
    query = update.callback_query
    if query is None:
        return
    try:
        await query.answer(text, show_alert=popup)
    except TelegramError as exc:
        log.warning("press in chat %s not answered (%s): saying it in the chat", _chat_of(update), exc)
        chat = update.effective_chat
        if chat is not None:
            await chat.send_message(text, parse_mode=None)


async def acknowledge(update: Update) -> None:
    """Acknowledge a press (Telegram stops the button's spinner). A refused acknowledgement
    (a press answered late after a restart is "too old") is only logged: what the press
    started goes on, since only the spinner is at stake.

    The report flow acknowledges before its step rather than alongside it: cheaper under
    load (bench/report_flow.py: one request in flight per update)."""
    query = update.callback_query
    if query is None:
        return
    try:
        await query.answer()
    except TelegramError as exc:
        log.warning("press in chat %s not acknowledged: %s", _chat_of(update), exc)


def _chat_of(update: Update) -> int | None:
    return update.effective_chat.id if update.effective_chat else None
