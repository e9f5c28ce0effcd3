"""Unfinished guided flows: the answers so far and the step, written at every step.

The answers and the step (kept in the draft's row under CONVERSATION, which bot/persistence.py
gives back to PTB at start-up) are written in one statement before the next
question goes out, so a kill -9 at any moment leaves the user at the step they last saw.

A step on a task carries its scope (task, unit): the write stores nothing (OutOfScope) unless
the person is still an active focal point of a unit that leads or coordinates the open task, so
someone removed from their unit is refused at their very next answer. The check and the write
are one statement (storage.repositories.drafts.store_draft_in_scope: INSERT … SELECT … WHERE
EXISTS), on either engine.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.clock import Clock
from storage import handled
from storage.db import Database
from storage.models import User
from storage.repositories.drafts import (
    CONVERSATION,
    ConversationRepository,
    DraftRepository,
    clean_stops,
    conversation_key,
    draft_of,
    drop_drafts,
    record_clean_stop,
    store_draft_in_scope,
    store_drafts,
)
from storage.repositories.users import user_id_of
from storage.statements import StatementRunner


class OutOfScope(Exception):
    """The person may no longer report on the draft's task (removed from the unit, no longer
    a focal point, deactivated, or the task was closed or handed to other units)."""


@dataclass(frozen=True)
class DraftView:
    version: int
    data: dict[str, Any] = field(default_factory=dict)
    updated_at: datetime | None = None


@dataclass(frozen=True)
class ExpiredDraft:
    telegram_id: int
    language: str | None
    data: dict[str, Any]


class _GroupWriter:
    """Group commit: the steps of everyone who answered while the previous commit was under
    way are written together in one transaction, and each step returns only once its own write
    is committed. Durable at every step, at a fraction of the cost of a transaction per step
    when many people report at once (where each transaction is a round trip or waits for the
    disk). A write is a new draft + state, or (data None) their removal."""

    def __init__(self, service: DraftService) -> None:
        self.service = service
        self.pending: list[_Write] = []
        self.running: asyncio.Task[None] | None = None

    async def write(self, write: _Write) -> None:
        # The update this step answers is marked handled in the batch's transaction, although
        # the batch is committed by another task (storage/handled.py).
        write.mark = handled.pending()
        write.done = asyncio.get_running_loop().create_future()
        self.pending.append(write)
        if self.running is None or self.running.done():
            # A context of its own: the batch belongs to no one update (each write's mark
            # goes with the batch); the creator's mark, inherited, would be written twice.
            self.running = asyncio.create_task(self._run(), context=contextvars.Context())
        await write.done

    async def _run(self) -> None:
        while self.pending:
            batch, self.pending = self._take()
            try:
                refused = await self._commit(batch)
            except BaseException as exc:  # handed to each waiting step, which raises it
                for write in batch:
                    if not write.done.done():
                        write.done.set_exception(exc)
            else:
                for write in batch:
                    if not write.done.done():
                        if id(write) in refused:
                            write.done.set_exception(OutOfScope(write.telegram_id))
                        else:
                            write.done.set_result(None)

    def _take(self) -> tuple[list[_Write], list[_Write]]:
        """The longest prefix without two writes of one draft (one statement cannot upsert a
        row twice, and their order matters); the rest waits for the next round."""
        seen: set[tuple[int, str]] = set()
        for index, write in enumerate(self.pending):
            if (write.telegram_id, write.flow) in seen:
                return self.pending[:index], self.pending[index:]
            seen.add((write.telegram_id, write.flow))
        return self.pending, []

    async def _commit(self, batch: list[_Write]) -> set[int]:
        """Write the batch in one transaction; returns the ids of the writes refused (out of
        scope). Core statements (Database.write_statements): a twentieth of the cost of an ORM
        session on SQLite."""
        marks = [w.mark for w in batch if w.mark is not None]
        refused = await self.service.db.write_statements(
            handled.with_marks(lambda runner: self._apply(runner, batch), marks)
        )
        handled.committed(marks)
        return refused

    def _apply(self, runner: StatementRunner, batch: list[_Write]) -> set[int]:
        refused: set[int] = set()
        drafts, gone = [], []
        for write in batch:
            user_id = self.service._user_id(runner, write.telegram_id)
            if write.data is None:
                # The step goes with the draft's row (a state kept in conversation_states
                # by an older version counts only while its draft exists).
                if user_id is not None:
                    gone.append((user_id, write.flow))
                continue
            if user_id is None:
                raise LookupError(write.telegram_id)
            row = _row(write, user_id, write.data, self.service.owner)
            if write.scope is None:
                drafts.append(row)
            elif not store_draft_in_scope(runner, row, write.telegram_id, write.scope):
                refused.add(id(write))
        if drafts:
            store_drafts(runner, drafts)
        if gone:
            drop_drafts(runner, gone)
        return refused


@dataclass
class _Write:
    telegram_id: int
    flow: str
    key: str  # the conversation key
    data: dict[str, Any] | None  # None: remove the draft and the state
    state: object
    version: int
    at: datetime
    scope: tuple[int, int] | None = None  # (task id, unit id) the person must still report on
    # Set when the write waits for its group commit.
    done: asyncio.Future[None] = field(init=False, repr=False)
    mark: handled.HandledMark | None = field(default=None, init=False, repr=False)


@dataclass(frozen=True)
class _Cached:
    """A draft as kept in memory: its answers as JSON text, so that each load hands out a
    copy of its own (json.loads costs half a deepcopy; the data is JSON by nature)."""

    version: int
    text: str
    updated_at: datetime | None

    def view(self) -> DraftView:
        return DraftView(self.version, json.loads(self.text), self.updated_at)


def _row(write: _Write, user_id: int, data: dict[str, Any], owner: str) -> dict[str, Any]:
    """The draft's row: the answers, with the step riding in them (one statement, not two),
    and the process that wrote it (several processes: a step written by one that died may
    never have been shown)."""
    return {
        "user_id": user_id,
        "flow": write.flow,
        "data": data | {CONVERSATION: {"key": write.key, "state": write.state, "owner": owner}},
        "version": write.version,
        "updated_at": write.at,
    }


def _answers(stored: dict[str, Any]) -> dict[str, Any]:
    """A stored draft's answers, without the conversation step kept beside them."""
    return {k: v for k, v in stored.items() if k != CONVERSATION}


class DraftService:
    """Drafts are read at every step and written at every step. The database is the truth
    (written before each question goes out); reads are served from a write-through copy in
    memory, which is sound because one bot process handles a person's chat at a time (after a
    restart the copy starts empty and is filled from the database; with several processes,
    only the chats this process holds are kept, and a chat's copy is dropped when it is taken
    or let go: bot/cluster.py)."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        # The process writing (set by the wiring when several may share the database).
        self.owner = ""
        # Whether this process handles the person's chat now (several processes: set by the
        # wiring); drafts of others are read from the database each time, never kept.
        self.holds: Callable[[int], bool] = lambda telegram_id: True
        self._cache: dict[tuple[int, str], _Cached | None] = {}
        self._user_ids: dict[int, int] = {}
        self._writer = _GroupWriter(self)

    def _user_id(self, runner: StatementRunner, telegram_id: int) -> int | None:
        user_id = self._user_ids.get(telegram_id)
        if user_id is None:
            user_id = user_id_of(runner, telegram_id)
            if user_id is not None:
                self._user_ids[telegram_id] = user_id
        return user_id

    def forget(self, telegram_id: int) -> None:
        """Drop the copies of the person's drafts (their chat was taken or let go)."""
        for key in [k for k in self._cache if k[0] == telegram_id]:
            del self._cache[key]

    async def conversation_of(
        self, telegram_id: int, flow: str
    ) -> tuple[tuple[int | str, ...], object] | None:
        """The person's conversation key and step in the flow, as stored (for a process that
        has just taken their chat)."""

        def read(runner: StatementRunner) -> Any | None:
            user_id = self._user_id(runner, telegram_id)
            return None if user_id is None else draft_of(runner, user_id, flow)

        row = await self.db.read_statements(read)
        conversation = ((row.data or {}).get(CONVERSATION) or {}) if row is not None else {}
        if not conversation.get("key") or conversation.get("state") is None:
            return None
        return tuple(json.loads(conversation["key"])), conversation["state"]

    async def load(self, telegram_id: int, flow: str) -> DraftView | None:
        key = (telegram_id, flow)
        if not self.holds(telegram_id):
            self._cache.pop(key, None)
        if key in self._cache:
            cached = self._cache[key]
            return None if cached is None else cached.view()

        def read(runner: StatementRunner) -> Any | None:
            user_id = self._user_id(runner, telegram_id)
            return None if user_id is None else draft_of(runner, user_id, flow)

        row = await self.db.read_statements(read)
        cached = None if row is None else _Cached(row.version, json.dumps(_answers(row.data)), row.updated_at)
        if self.holds(telegram_id):
            self._cache[key] = cached
        return None if cached is None else cached.view()

    async def save(
        self,
        telegram_id: int,
        flow: str,
        data: dict[str, Any],
        state: object,
        chat_id: int,
        *,
        scope: tuple[int, int] | None = None,
    ) -> DraftView:
        """Store the answers and the step the user is now at; bumps the draft's version.
        Returns once both are committed. With a scope (task id, unit id), raises OutOfScope and
        stores nothing unless the person is still a focal point of that unit and the open task
        is still the unit's."""
        now = self.clock.now()
        key = (telegram_id, flow)
        current = self._cache[key] if key in self._cache else await self.load(telegram_id, flow)
        version = (current.version if current else 0) + 1
        try:
            await self._writer.write(
                _Write(
                    telegram_id,
                    flow,
                    conversation_key((chat_id, telegram_id)),
                    data,
                    state,
                    version,
                    now,
                    scope,
                )
            )
        except BaseException:
            self._cache.pop(key, None)
            raise
        if self.holds(telegram_id):
            self._cache[key] = _Cached(version, json.dumps(data), now)
        return DraftView(version, data, now)

    async def close(self, telegram_id: int, flow: str, chat_id: int) -> None:
        """Remove the draft and the conversation state (the flow ended)."""
        self._cache.pop((telegram_id, flow), None)
        await self._writer.write(
            _Write(
                telegram_id, flow, conversation_key((chat_id, telegram_id)), None, None, 0, self.clock.now()
            )
        )
        if self.holds(telegram_id):
            self._cache[(telegram_id, flow)] = None

    async def conversation_states(self, flow: str) -> dict[tuple[int | str, ...], object]:
        """The step each open conversation of the flow is at (for PTB at start-up)."""
        async with self.db.reader() as session:
            return await ConversationRepository(session).states(flow)

    async def under_way(
        self, flow: str, *, written_by_none_of: set[str] | None = None
    ) -> list[tuple[int, dict[str, Any]]]:
        """(Telegram id, answers) of every draft of the flow (read at start-up); with
        written_by_none_of, only those whose last step was written by another process than
        these (several processes: the drafts of a process that died)."""
        async with self.db.reader() as session:
            rows = await DraftRepository(session).data_of(flow)
            # A process that stopped cleanly had sent every question it saved.
            delivered = await clean_stops(session)
        skip = delivered | (written_by_none_of or set())
        rows = [
            (telegram_id, data)
            for telegram_id, data in rows
            if ((data or {}).get(CONVERSATION) or {}).get("owner") not in skip
        ]
        return [(telegram_id, _answers(data)) for telegram_id, data in rows]

    async def stopped_cleanly(self) -> None:
        """This process stops cleanly (every update it took is handled, every question it
        saved was sent): its drafts need no asking again at the next start (under_way)."""
        if not self.owner:
            return
        async with self.db.transaction() as session:
            await record_clean_stop(session, self.owner, self.clock.now(), keep=timedelta(days=30))

    async def close_expired(self, flow: str, older_than: timedelta) -> list[ExpiredDraft]:
        """Close drafts untouched for longer than older_than; returns whom to tell."""
        before = self.clock.now() - older_than
        closed: list[ExpiredDraft] = []
        async with self.db.transaction() as session:
            drafts = DraftRepository(session)
            conversations = ConversationRepository(session)
            for draft in await drafts.older_than(flow, before):
                user = await session.get(User, draft.user_id)
                if user is None:
                    continue
                closed.append(ExpiredDraft(user.telegram_id, user.language, _answers(draft.data)))
                self._cache[(user.telegram_id, flow)] = None
                await drafts.drop(draft.user_id, flow)
                await conversations.drop(flow, conversation_key((user.telegram_id, user.telegram_id)))
        return closed
