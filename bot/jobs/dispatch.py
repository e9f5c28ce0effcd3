"""The dispatcher: a repeating JobQueue job that sends what the outbox holds.

Telegram's limits are kept here, not left to luck: at most [nudges] max_per_second messages a
second overall, one a second to a private chat and 20 a minute to a group (SendPacer; PTB's
AIORateLimiter is configured without retries and does not pace private chats). Each message is
sent in its own asyncio task at its reserved time, so a slow or failing chat holds up no other;
a chat that must still wait is not even claimed. RetryAfter reschedules only that row,
Forbidden marks the person unreachable and tells their unit's leaders once, network errors are
retried with exponential backoff. Nudges and reminders wait for working hours.

Nudges and period reminders are planned without their text: each is rendered just before it
is sent (NudgeService.render), from the task and the person as they are then, and one no longer
wanted (task closed, completed, deleted or given a new deadline) is cancelled, not sent. The
snooze button gets the outbox row's id here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut

from bot.context import Context
from bot.services.nudges import OUTBOX_ID, PERIOD_REMINDER, RENDERED_AT_SEND, WORKING_HOURS_KINDS
from bot.services.outbox import RECEIPT, RECEIPT_STALE, ClaimedMessage
from bot.services.pacing import LOOKAHEAD
from bot.services.report_flow import interrupts, report_under_way

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
HOLD = timedelta(minutes=2)  # a reminder held while its report is under way: tried again after


def _markup(context: Context, payload: dict[str, object], outbox_id: int) -> InlineKeyboardMarkup | None:
    rows = cast("list[list[Any]] | None", payload.get("buttons"))
    if not rows:
        return None
    return InlineKeyboardMarkup(
        [[_button(context, button, str(outbox_id)) for button in row] for row in rows]
    )


def _button(context: Context, button: Any, outbox_id: str) -> InlineKeyboardButton:
    """A button as a service named it ({label, action, arg}), its callback data made by the
    Telegram surface; or [label, data], as versions before this one queued them."""
    if isinstance(button, dict):
        arg = button["arg"]
        arg = arg.replace(OUTBOX_ID, outbox_id) if isinstance(arg, str) else arg
        return InlineKeyboardButton(
            button["label"], callback_data=context.callback_data(button["action"], arg)
        )
    label, legacy = button
    return InlineKeyboardButton(label, callback_data=legacy.replace(OUTBOX_ID, outbox_id))


async def send_claimed(context: Context, message: ClaimedMessage) -> Message:
    payload = message.payload
    markup = _markup(context, payload, message.id)
    text = str(payload.get("text") or "")
    if payload.get("document"):
        path = Path(str(payload["document"]))
        with path.open("rb") as handle:
            return await context.bot.send_document(
                message.chat_id, handle, filename=path.name, caption=text or None, reply_markup=markup
            )
    if payload.get("photo"):
        with Path(str(payload["photo"])).open("rb") as handle:
            return await context.bot.send_photo(
                message.chat_id, handle, caption=text or None, reply_markup=markup
            )
    return await context.bot.send_message(message.chat_id, text, reply_markup=markup)


async def _interrupts_a_report(context: Context, message: ClaimedMessage) -> bool:
    """A nudge or period reminder about a task whose report the person has under way waits
    (issue 16: "Quá hạn … 1.5" arrived between two questions of a report on 1.5)."""
    if message.user_id is None:
        return False
    draft = await report_under_way(context.services.drafts, message.chat_id)
    return interrupts(draft, message.task_id if message.kind != PERIOD_REMINDER else None)


async def _deliver(context: Context, message: ClaimedMessage, at: float) -> None:
    """Send one claimed message at its reserved time and record the outcome."""
    services = context.services
    outbox, pacer = services.outbox, services.pacer
    reached = True  # for pacing: whether Telegram may count it against the chat
    try:
        if message.kind in RENDERED_AT_SEND and await _interrupts_a_report(context, message):
            reached = False
            await outbox.mark_retry(message.id, HOLD, "held: a report under way")
            return
        # Rows planned before text was rendered at send time carry their text already.
        if message.kind in RENDERED_AT_SEND and "text" not in message.payload:
            payload = await services.nudges.render(message)
            if payload is None:
                reached = False
                await outbox.mark_cancelled(message.id)
                return
            message = dataclasses.replace(message, payload=payload)
        await asyncio.sleep(max(0.0, at - pacer.monotonic()))
        await pacer.gate(message.chat_id)
        sent = await send_claimed(context, message)
    except RetryAfter as exc:
        retry = exc.retry_after
        seconds = retry.total_seconds() if isinstance(retry, timedelta) else float(retry)
        log.warning("outbox %s: Telegram asks to wait %s s (429); sent again then", message.id, seconds)
        await outbox.mark_retry(message.id, timedelta(seconds=seconds), "retry after")
    except Forbidden as exc:
        reached = False
        log.warning("outbox %s: chat %s unreachable (%s)", message.id, message.chat_id, exc.message)
        await outbox.mark_failed(message.id, exc.message)
        if message.user_id is not None and await services.people.mark_unreachable(message.user_id):
            await services.nudges.notify_unreachable(message.user_id)
    except BadRequest as exc:
        reached = False
        log.error("outbox %s: refused by Telegram: %s", message.id, exc.message)
        await outbox.mark_failed(message.id, exc.message)
    except (TimedOut, NetworkError, OSError) as exc:
        # TimedOut may mean Telegram got it: the backoff at least keeps a repeat rare.
        if message.attempts >= MAX_ATTEMPTS:
            log.error("outbox %s: giving up after %s attempts: %s", message.id, message.attempts, exc)
            await outbox.mark_failed(message.id, str(exc))
        else:
            backoff = timedelta(seconds=min(2**message.attempts, 600))
            log.warning("outbox %s: network error, retry in %s: %s", message.id, backoff, exc)
            await outbox.mark_retry(message.id, backoff, str(exc))
    else:
        await outbox.mark_sent(message.id, sent.message_id)
    finally:
        pacer.done(message.chat_id, reached=reached)


def _reap(tasks: set[asyncio.Task[None]]) -> None:
    for task in [t for t in tasks if t.done()]:
        tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # The row stays claimed and is released (sent again) after the stale-claim delay.
            log.error("outbox: a send failed unexpectedly", exc_info=task.exception())


async def dispatch_outbox(context: Context) -> None:
    """Claim due messages, send each at its paced time, and record the outcome; one failure
    holds up no other. Runs until nothing due is left that may be sent now."""
    services = context.services
    outbox, pacer = services.outbox, services.pacer
    await outbox.release_claims(older_than=timedelta(minutes=10))
    # A receipt whose process died before sending it (another instance, still up, never
    # restarts to release it).
    await outbox.release_claims(older_than=RECEIPT_STALE, kinds=(RECEIPT,))
    tasks: set[asyncio.Task[None]] = set()
    try:
        while True:
            _reap(tasks)
            exclude_kinds = (
                () if services.calendar.is_working_time(services.clock.now()) else WORKING_HOURS_KINDS
            )
            capacity = pacer.capacity()
            claimed = []
            if capacity:
                claimed = await outbox.claim_due(
                    capacity, exclude_chats=pacer.busy(), exclude_kinds=exclude_kinds
                )
            # One message per chat per round: the next one waits for that chat's interval.
            chats: set[int] = set()
            extra = []
            for message in claimed:
                if message.chat_id in chats:
                    extra.append(message.id)
                    continue
                chats.add(message.chat_id)
                at = pacer.reserve(message.chat_id)
                tasks.add(asyncio.create_task(_deliver(context, message, at)))
            await outbox.unclaim(extra)
            if chats:
                # Claim again when the reserved slots are running out.
                await asyncio.sleep(max(0.0, pacer.next_any - pacer.monotonic() - LOOKAHEAD / 2))
                continue
            if tasks:
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                continue
            wait = pacer.soonest_free()
            if wait is not None and wait <= 2.0 and await outbox.any_due(exclude_kinds):
                await asyncio.sleep(wait + 0.01)
                continue
            if capacity == 0:
                await asyncio.sleep(pacer.interval)
                continue
            break
    finally:
        if tasks:
            await asyncio.wait(tasks)
            _reap(tasks)
