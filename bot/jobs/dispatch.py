"""The dispatcher: a repeating JobQueue job that sends what the outbox holds."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut

from bot.services.outbox import ClaimedMessage
from handlers.context import Context

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8


def _markup(payload: dict[str, Any]) -> InlineKeyboardMarkup | None:
    rows: list[list[list[str]]] = payload.get("buttons") or []
    if not rows:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(label, callback_data=data) for label, data in row] for row in rows]
    )


async def send_claimed(context: Context, message: ClaimedMessage) -> Message:
    payload = message.payload
    markup = _markup(payload)
    text = str(payload.get("text") or "")
    if payload.get("document"):
        path = Path(str(payload["document"]))
        with path.open("rb") as handle:
            return await context.bot.send_document(
                message.chat_id, handle, filename=path.name, caption=text or None,
                reply_markup=markup)
    if payload.get("photo"):
        with Path(str(payload["photo"])).open("rb") as handle:
            return await context.bot.send_photo(message.chat_id, handle, caption=text or None,
                                                reply_markup=markup)
    return await context.bot.send_message(message.chat_id, text, reply_markup=markup)


async def dispatch_outbox(context: Context) -> None:
    """Claim due messages, send each, and record the outcome; one failure holds up no other."""
    outbox = context.services.outbox
    await outbox.release_claims(older_than=timedelta(minutes=10))
    for message in await outbox.claim_due():
        try:
            sent = await send_claimed(context, message)
        except RetryAfter as exc:
            retry = exc.retry_after
            seconds = retry.total_seconds() if isinstance(retry, timedelta) else float(retry)
            await outbox.mark_retry(message.id, timedelta(seconds=seconds), "retry after")
        except Forbidden as exc:
            log.warning("outbox %s: chat %s unreachable (%s)", message.id, message.chat_id,
                        exc.message)
            await outbox.mark_failed(message.id, exc.message)
            if message.user_id is not None:
                await context.services.people.mark_unreachable(message.user_id)
        except BadRequest as exc:
            log.error("outbox %s: refused by Telegram: %s", message.id, exc.message)
            await outbox.mark_failed(message.id, exc.message)
        except (TimedOut, NetworkError, OSError) as exc:
            if message.attempts >= MAX_ATTEMPTS:
                await outbox.mark_failed(message.id, str(exc))
            else:
                backoff = timedelta(seconds=min(2 ** message.attempts, 600))
                await outbox.mark_retry(message.id, backoff, str(exc))
        else:
            await outbox.mark_sent(message.id, sent.message_id)
