"""The outbox: messages the bot owes people, each once (unique dedup key)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import OutboxMessage


class OutboxRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_unique(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Insert rows whose dedup_key is new; existing keys are left alone. Returns how many
        were inserted."""
        rows = list(rows)
        if not rows:
            return 0
        dialect = self.session.bind.dialect.name if self.session.bind else "sqlite"
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        inserted = 0
        for start in range(0, len(rows), 500):
            statement = insert(OutboxMessage).values(rows[start:start + 500])
            statement = statement.on_conflict_do_nothing(index_elements=["dedup_key"])
            result = await self.session.execute(statement)
            inserted += max(result.rowcount or 0, 0)  # type: ignore[attr-defined]
        return inserted

    async def due(self, now: datetime, limit: int) -> list[OutboxMessage]:
        rows = await self.session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.state == "pending", OutboxMessage.due_at <= now)
            .order_by(OutboxMessage.due_at, OutboxMessage.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return list(rows)

    async def release_stale_claims(self, older_than: datetime) -> int:
        """Claimed rows whose dispatcher died before finishing go back to pending."""
        result = await self.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.state == "claimed", OutboxMessage.claimed_at <= older_than)
            .values(state="pending")
        )
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
