"""The outbox: messages the bot owes people, each once (unique dedup key)."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.dialects import upsert_insert
from storage.models import OutboxMessage, table_of
from storage.statements import StatementRunner, insert_on_conflict

_OUTBOX = table_of(OutboxMessage)
# The columns of a new message (bot.services.outbox.OutboxService.row).
NEW_MESSAGE_COLUMNS = (
    "dedup_key",
    "kind",
    "chat_id",
    "user_id",
    "task_id",
    "payload",
    "due_at",
    "state",
    "claimed_at",
    "attempts",
    "created_at",
)
_ADD_NEW = insert_on_conflict(_OUTBOX, ("dedup_key",), NEW_MESSAGE_COLUMNS, returning=_OUTBOX.c.id)


def add_new_messages(runner: StatementRunner, rows: Iterable[Mapping[str, Any]]) -> int:
    """Insert the messages (rows of NEW_MESSAGE_COLUMNS) whose dedup_key is new, in the
    open transaction; existing keys are left alone. Returns how many were inserted."""
    return sum(add_new_message(runner, row) is not None for row in rows)


_MARK_SENT = (
    update(_OUTBOX)
    .where(_OUTBOX.c.id == bindparam("message_id"))
    .values(state="sent", sent_at=bindparam("sent_at"), telegram_message_id=bindparam("telegram_id"))
)


def mark_sent(runner: StatementRunner, message_id: int, at: datetime, telegram_message_id: int | None) -> int:
    """Record that Telegram took the message (a Core statement: it runs after every receipt
    and every message the dispatcher sends)."""
    return runner.execute(
        _MARK_SENT, {"message_id": message_id, "sent_at": at, "telegram_id": telegram_message_id}
    )


def add_new_message(runner: StatementRunner, row: Mapping[str, Any]) -> int | None:
    """Insert one message if its dedup_key is new, in the open transaction; its id, or None
    when the key was queued before."""
    inserted = runner.rows(_ADD_NEW, row)
    return int(inserted[0][0]) if inserted else None


# What is due and not yet sent (pending, or claimed by a dispatcher sending it): how many, and
# since when the oldest has been due. The (state, due_at) index answers it.
_BACKLOG = select(func.count(), func.min(_OUTBOX.c.due_at)).where(
    or_(_OUTBOX.c.state == "pending", _OUTBOX.c.state == "claimed"),
    _OUTBOX.c.due_at <= bindparam("now", type_=_OUTBOX.c.due_at.type),
)


def backlog(runner: StatementRunner, now: datetime) -> tuple[int, datetime | None]:
    """How many messages are due by `now` and not sent yet, and the oldest one's due time."""
    count, oldest = runner.rows(_BACKLOG, {"now": now})[0]
    return int(count or 0), oldest


class OutboxRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_unique(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Insert rows whose dedup_key is new; existing keys are left alone. Returns how many
        were inserted."""
        rows = list(rows)
        if not rows:
            return 0
        insert = upsert_insert(self.session.bind.dialect.name if self.session.bind else "sqlite")
        # One statement for many parameter sets (compiled once, sent in batches); RETURNING
        # counts what was really inserted on both engines (asyncpg reports no rowcount here).
        statement = (
            insert(OutboxMessage)
            .on_conflict_do_nothing(index_elements=["dedup_key"])
            .returning(OutboxMessage.id)
        )
        connection = await self.session.connection()
        result = await connection.execute(statement, rows)
        return len(result.all())

    @staticmethod
    def _due_query(
        now: datetime, exclude_chats: Collection[int], exclude_kinds: Collection[str]
    ) -> Select[tuple[OutboxMessage]]:
        query = select(OutboxMessage).where(OutboxMessage.state == "pending", OutboxMessage.due_at <= now)
        if exclude_chats:
            query = query.where(OutboxMessage.chat_id.not_in(list(exclude_chats)))
        if exclude_kinds:
            query = query.where(OutboxMessage.kind.not_in(list(exclude_kinds)))
        return query

    async def due(
        self,
        now: datetime,
        limit: int,
        *,
        exclude_chats: Collection[int] = (),
        exclude_kinds: Collection[str] = (),
    ) -> list[OutboxMessage]:
        rows = await self.session.scalars(
            self._due_query(now, exclude_chats, exclude_kinds)
            .order_by(OutboxMessage.due_at, OutboxMessage.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return list(rows)

    async def any_due(self, now: datetime, *, exclude_kinds: Collection[str] = ()) -> bool:
        found = await self.session.scalar(
            self._due_query(now, (), exclude_kinds).with_only_columns(OutboxMessage.id).limit(1)
        )
        return found is not None

    async def unclaim(self, ids: Collection[int]) -> None:
        """Give back rows claimed but not attempted (the attempt is not counted)."""
        await self.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(list(ids)), OutboxMessage.state == "claimed")
            .values(state="pending", claimed_at=None, attempts=OutboxMessage.attempts - 1)
        )

    async def release_stale_claims(self, older_than: datetime, kinds: Collection[str] | None = None) -> int:
        """Claimed rows whose dispatcher died before finishing go back to pending (only
        those of `kinds`, if given)."""
        query = update(OutboxMessage).where(
            OutboxMessage.state == "claimed", OutboxMessage.claimed_at <= older_than
        )
        if kinds is not None:
            query = query.where(OutboxMessage.kind.in_(list(kinds)))
        result = await self.session.execute(query.values(state="pending"))
        return result.rowcount or 0  # type: ignore[attr-defined]

    async def cancel(self, *, task_id: int, kinds: Iterable[str] | None = None) -> int:
        query = update(OutboxMessage).where(
            OutboxMessage.task_id == task_id, OutboxMessage.state == "pending"
        )
        if kinds is not None:
            query = query.where(OutboxMessage.kind.in_(list(kinds)))
        result = await self.session.execute(query.values(state="cancelled"))
        return result.rowcount or 0  # type: ignore[attr-defined]

    async def get(self, message_id: int) -> OutboxMessage | None:
        return await self.session.get(OutboxMessage, message_id)
