"""The inbox: every update from Telegram is stored before Telegram is told it arrived, and
marked once handled (bot/updates.py feeds it to the handlers; storage/handled.py marks it).

An update is identified by Telegram's update_id (unique per bot), so one delivered twice
(Telegram repeats what it has no confirmation of) is stored once and handled once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bot import metrics
from bot.clock import Clock
from storage.db import Database
from storage.handled import MARK_DONE, HandledMark
from storage.repositories import inbox as repo

log = logging.getLogger(__name__)

# Start-ups that may find an update still pending before it is given up: one that kills the
# process whenever it is handled would otherwise stop the bot for good.
MAX_ATTEMPTS = 3
# Handled updates are kept a while (to look into what someone sent), failed ones longer.
KEEP_DONE = timedelta(days=2)
KEEP_FAILED = timedelta(days=30)
GAVE_UP = "given up: still pending after {n} start-ups"


@dataclass(frozen=True)
class StoredUpdate:
    update_id: int
    payload: dict[str, Any]
    chat_id: int | None = None

    @property
    def chat(self) -> int:
        """The chat's key among processes (0: an update without a chat)."""
        return self.chat_id or 0


def update_kind(payload: Mapping[str, Any]) -> str:
    """What the update carries ("message", "callback_query", ...)."""
    return next((key for key in payload if key != "update_id"), "unknown")[:32]


def _id(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def update_id_of(payload: object) -> int | None:
    """The update's id, if it is an update at all (a JSON object with an integer update_id)."""
    return _id(payload.get("update_id")) if isinstance(payload, Mapping) else None


def chat_of(payload: Mapping[str, Any]) -> int | None:
    """The chat the update belongs to, read from the raw JSON (python-telegram-bot may be
    unable to parse it): the chat of its message, or of the message under a pressed button,
    else its user's (a person's private chat has their id); None if it names neither."""
    body = payload.get(update_kind(payload))
    if not isinstance(body, Mapping):
        return None
    for holder in (body, body.get("message")):
        chat = holder.get("chat") if isinstance(holder, Mapping) else None
        if isinstance(chat, Mapping) and _id(chat.get("id")) is not None:
            return _id(chat.get("id"))
    for key in ("from", "user"):
        user = body.get(key)
        if isinstance(user, Mapping) and _id(user.get("id")) is not None:
            return _id(user.get("id"))
    return None


class InboxService:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        # Updates whose handler failed (set by the error handler while the update is handled).
        self._failures: dict[int, str] = {}

    async def store(self, payloads: Sequence[Mapping[str, Any]]) -> list[StoredUpdate]:
        """Store the updates (each with an integer update_id) in one transaction; those not
        stored before, in the order given."""
        now = self.clock.now()
        rows = [
            {
                "update_id": payload["update_id"],
                "chat_id": chat_of(payload),
                "kind": update_kind(payload),
                "payload": dict(payload),
                "state": "pending",
                "attempts": 0,
                "received_at": now,
            }
            for payload in payloads
        ]
        if len(rows) == 1:  # one statement, no transaction around it: a third of the round trips
            new = {rows[0]["update_id"]} if await self.db.write_statement(repo.ADD_ONE, rows[0]) else set()
        else:
            new = set(await self.db.write_statements(lambda runner: repo.add_new(runner, rows)))
        return [
            StoredUpdate(row["update_id"], row["payload"], row["chat_id"])
            for row in rows
            if row["update_id"] in new
        ]

    async def restart(self) -> list[StoredUpdate]:
        """At start-up: the updates still to be handled, oldest first (see MAX_ATTEMPTS)."""
        error = GAVE_UP.format(n=MAX_ATTEMPTS)
        rows, given_up = await self.db.write_statements(
            lambda runner: repo.restart(runner, self.clock.now(), MAX_ATTEMPTS, error)
        )
        for update_id in given_up:
            log.error("update %s %s; skipped", update_id, error)
        return [StoredUpdate(row.update_id, row.payload) for row in rows]

    async def take_chat(self, chat: int) -> list[StoredUpdate]:
        """A process takes a chat (several processes on one database): the chat's updates
        still to be handled, oldest first, each counting one more attempt (MAX_ATTEMPTS: a
        process that died handling one of them may have died of it)."""
        error = GAVE_UP.format(n=MAX_ATTEMPTS)
        rows, given_up = await self.db.write_statements(
            lambda runner: repo.take_chat(runner, chat, self.clock.now(), MAX_ATTEMPTS, error)
        )
        for update_id in given_up:
            log.error("update %s %s; skipped", update_id, error)
        return [StoredUpdate(row.update_id, row.payload, row.chat_id) for row in rows]

    async def pending_of(self, chat: int) -> list[StoredUpdate]:
        """The chat's updates still to be handled, oldest first."""
        rows = await self.db.read_statements(lambda runner: runner.rows(repo.PENDING_OF_CHAT, {"chat": chat}))
        return [StoredUpdate(row.update_id, row.payload, row.chat_id) for row in rows]

    async def pending_chats(self, older_than: timedelta = timedelta(seconds=1)) -> list[int]:
        """The chats with updates still to be handled, received more than older_than ago (0:
        updates without a chat)."""
        values = {"before": self.clock.now() - older_than}
        rows = await self.db.read_statements(lambda runner: runner.rows(repo.PENDING_CHATS, values))
        return [int(row[0]) for row in rows]

    def handling(self, update_id: int) -> HandledMark:
        """The mark of an update about to be handled (storage/handled.py)."""
        return HandledMark(update_id, self.clock.now())

    def note_failure(self, update_id: int, error: BaseException) -> None:
        """The update's handler failed: it is marked failed when its handling ends."""
        self._failures[update_id] = f"{type(error).__name__}: {error}"[:2000]

    async def finish(self, mark: HandledMark) -> None:
        """The update's handling has ended: failed if a handler failed, else done (unless
        its first write transaction recorded that already)."""
        error = self._failures.pop(mark.update_id, None)
        metrics.UPDATES.labels(result="done" if error is None else "failed").inc()
        if error is not None:
            await self.fail(mark.update_id, error)
        elif not mark.committed:
            await self.db.write_statement(MARK_DONE, mark.values())
            mark.committed = True

    async def fail(self, update_id: int, error: str) -> None:
        values = {"uid": update_id, "at": self.clock.now(), "error": error}
        await self.db.write_statement(repo.FAIL, values)

    async def prune(self) -> int:
        """Forget handled updates after KEEP_DONE and failed ones after KEEP_FAILED."""
        now = self.clock.now()
        values = {"done_before": now - KEEP_DONE, "failed_before": now - KEEP_FAILED}
        return await self.db.write_statement(repo.PRUNE, values)
