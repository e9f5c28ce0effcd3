"""Messages the bot owes people, kept in the database until Telegram has them.

Anything sent later than the reply to a user's own update (notices, reminders, digests) goes
through the outbox: planning writes rows with a unique dedup key (so planning twice sends
once), and the dispatcher job claims due rows, sends them and marks them sent. The payload is
the rendered message: text (Telegram HTML), inline buttons, or a file from the data folder;
nudges and period reminders are planned without it and rendered when sent (bot/services/nudges.py).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from bot import metrics
from bot.clock import Clock
from storage.db import Database
from storage.repositories.outbox import OutboxRepository, add_new_messages, backlog, mark_sent


class Wording(Protocol):
    """How the surface words the text of a message a service queues: the catalog message `key`
    in `language`, filled with plain `values` (a task's title, a person's name, as typed).
    Services never escape: the surface's wording does, for its format (Telegram HTML:
    handlers/wording.py), and the wiring hands it to build_services."""

    def __call__(self, language: str | None, key: str, /, **values: Any) -> str: ...


@dataclass(frozen=True)
class Button:
    """A button on a queued message, named by what it does ("report", "snooze",
    "extension_ok", "extension_no") and its argument; the Telegram surface turns it into
    callback data when the message is sent (handlers/callbacks.py)."""

    label: str
    action: str
    arg: int | str


Buttons = Sequence[Sequence[Button]]  # rows of buttons


# The kind of a report's receipt: queued with the report and sent by the handler at once
# (OutgoingMessage.sent_by_caller). Sending one takes a second; one still claimed after
# RECEIPT_STALE is from a process that died first, and goes out through the dispatcher.
RECEIPT = "receipt"
RECEIPT_STALE = timedelta(seconds=30)


@dataclass(frozen=True)
class OutgoingMessage:
    key: str  # the dedup key: the same key is only ever sent once
    kind: str  # nudge, notice, digest, broadcast, ...
    chat_id: int
    text: str = ""
    buttons: Buttons = ()
    document: str | None = None  # a file path to send as a document (caption = text)
    photo: str | None = None  # a file path to send as a photo (caption = text)
    user_id: int | None = None
    task_id: int | None = None
    due_at: datetime | None = None  # None: now
    # Sent by the caller right after the transaction that queued it (a receipt): queued as
    # claimed, so the dispatcher leaves it alone unless the caller dies before marking it
    # sent (a restart releases every claim, and the message goes out then).
    sent_by_caller: bool = False

    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = {"text": self.text}
        if self.buttons:
            data["buttons"] = [
                [{"label": b.label, "action": b.action, "arg": b.arg} for b in row] for row in self.buttons
            ]
        if self.document:
            data["document"] = self.document
        if self.photo:
            data["photo"] = self.photo
        return data


@dataclass(frozen=True)
class ClaimedMessage:
    id: int
    kind: str
    chat_id: int
    user_id: int | None
    task_id: int | None
    attempts: int
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Backlog:
    """Messages due and not yet sent, and how long the oldest has been waiting."""

    due: int
    oldest_age: timedelta | None


class OutboxService:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    @staticmethod
    def row(message: OutgoingMessage, now: datetime) -> dict[str, Any]:
        """The outbox row for a message (for planners that insert in their own transaction)."""
        m = message
        return {
            "dedup_key": m.key[:255],
            "kind": m.kind,
            "chat_id": m.chat_id,
            "user_id": m.user_id,
            "task_id": m.task_id,
            "payload": m.payload(),
            "due_at": m.due_at or now,
            "state": "claimed" if m.sent_by_caller else "pending",
            "claimed_at": now if m.sent_by_caller else None,
            "attempts": 1 if m.sent_by_caller else 0,
            "created_at": now,
        }

    async def enqueue(self, messages: Iterable[OutgoingMessage]) -> int:
        """Add messages not planned before (by key). Returns how many are new."""
        now = self.clock.now()
        rows = [self.row(m, now) for m in messages]
        if not rows:
            return 0  # no transaction for nothing (a report in a unit without leaders)
        # Core statements (on SQLite straight on the driver): a report's notices to its
        # unit's leaders are queued on the chat path.
        return await self.db.write_statements(lambda runner: add_new_messages(runner, rows))

    async def cancel_for_task(self, task_id: int, kinds: Iterable[str] | None = None) -> int:
        async with self.db.transaction() as session:
            return await OutboxRepository(session).cancel(task_id=task_id, kinds=kinds)

    async def release_claims(
        self, older_than: timedelta = timedelta(0), kinds: Collection[str] | None = None
    ) -> int:
        """Put claimed rows back to pending (of `kinds` only, if given). At start-up
        (older_than=0) every claim is from a process that died before it could finish, so its
        rows are sent now, not lost."""
        async with self.db.transaction() as session:
            return await OutboxRepository(session).release_stale_claims(self.clock.now() - older_than, kinds)

    async def claim_due(
        self, limit: int = 100, *, exclude_chats: Collection[int] = (), exclude_kinds: Collection[str] = ()
    ) -> list[ClaimedMessage]:
        """Claim due rows, oldest first, skipping chats and kinds that must wait."""
        now = self.clock.now()
        async with self.db.transaction() as session:
            rows = await OutboxRepository(session).due(
                now, limit, exclude_chats=exclude_chats, exclude_kinds=exclude_kinds
            )
            claimed = []
            for row in rows:
                row.state = "claimed"
                row.claimed_at = now
                row.attempts += 1
                claimed.append(
                    ClaimedMessage(
                        row.id,
                        row.kind,
                        row.chat_id,
                        row.user_id,
                        row.task_id,
                        row.attempts,
                        dict(row.payload),
                    )
                )
            return claimed

    async def unclaim(self, message_ids: Collection[int]) -> None:
        """Put claimed rows back untouched (the dispatcher took more than it can send now)."""
        if message_ids:
            async with self.db.transaction() as session:
                await OutboxRepository(session).unclaim(message_ids)

    async def any_due(self, exclude_kinds: Collection[str] = ()) -> bool:
        async with self.db.reader() as session:
            return await OutboxRepository(session).any_due(self.clock.now(), exclude_kinds=exclude_kinds)

    async def backlog(self) -> Backlog:
        now = self.clock.now()
        due, oldest = await self.db.read_statements(lambda runner: backlog(runner, now))
        return Backlog(due, None if oldest is None else max(timedelta(0), now - oldest))

    async def mark_sent(self, message_id: int, telegram_message_id: int | None) -> None:
        metrics.SENDS.labels(result="sent").inc()
        now = self.clock.now()
        await self.db.write_statements(lambda runner: mark_sent(runner, message_id, now, telegram_message_id))

    async def mark_retry(self, message_id: int, after: timedelta, error: str) -> None:
        metrics.SENDS.labels(result="retry").inc()
        async with self.db.transaction() as session:
            row = await OutboxRepository(session).get(message_id)
            if row is not None:
                row.state = "pending"
                row.due_at = self.clock.now() + after
                row.last_error = error[:500]

    async def mark_cancelled(self, message_id: int) -> None:
        """A claimed message that is no longer wanted when its turn came (not sent)."""
        metrics.SENDS.labels(result="cancelled").inc()
        async with self.db.transaction() as session:
            row = await OutboxRepository(session).get(message_id)
            if row is not None:
                row.state = "cancelled"

    async def mark_failed(self, message_id: int, error: str) -> None:
        metrics.SENDS.labels(result="failed").inc()
        async with self.db.transaction() as session:
            row = await OutboxRepository(session).get(message_id)
            if row is not None:
                row.state = "failed"
                row.last_error = error[:500]
