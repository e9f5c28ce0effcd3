"""Drafts of guided flows and the conversation states PTB restores after a restart."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import ConversationState, Draft


def _insert(session: AsyncSession) -> Any:
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    return pg_insert if dialect == "postgresql" else sqlite_insert


class DraftRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def upsert_many(self, rows: list[dict[str, Any]]) -> None:
        """Store several drafts in one statement: rows of user_id, flow, data, version,
        updated_at (each (user_id, flow) at most once)."""
        # Core executemany of one statement: compiled once and cached, whatever the batch.
        insert = _insert(self.session)(Draft.__table__)
        await self.session.execute(insert.on_conflict_do_update(
            index_elements=["user_id", "flow"],
            set_={"data": insert.excluded.data, "version": insert.excluded.version,
                  "updated_at": insert.excluded.updated_at},
        ), rows)

    async def get(self, user_id: int, flow: str) -> Draft | None:
        return await self.session.scalar(
            select(Draft).where(Draft.user_id == user_id, Draft.flow == flow)
        )

    async def put(self, user_id: int, flow: str, data: dict[str, Any]) -> Draft:
        """Replace the user's draft of this flow; the version goes up at every write."""
        draft = await self.get(user_id, flow)
        if draft is None:
            draft = Draft(user_id=user_id, flow=flow, data=data, version=1)
            self.session.add(draft)
        else:
            draft.data = data
            draft.version += 1
        await self.session.flush()
        return draft

    async def drop(self, user_id: int, flow: str) -> None:
        await self.session.execute(
            delete(Draft).where(Draft.user_id == user_id, Draft.flow == flow)
        )

    async def drop_many(self, keys: list[tuple[int, str]]) -> None:
        """Delete drafts by (user_id, flow)."""
        for user_id, flow in keys:
            await self.drop(user_id, flow)

    async def older_than(self, flow: str, before: datetime) -> list[Draft]:
        rows = await self.session.scalars(
            select(Draft).where(Draft.flow == flow, Draft.updated_at < before).order_by(Draft.id)
        )
        return list(rows)


class ConversationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def all(self, name: str) -> list[ConversationState]:
        rows = await self.session.scalars(
            select(ConversationState).where(ConversationState.name == name)
        )
        return list(rows)

    async def upsert_many(self, rows: list[dict[str, Any]]) -> None:
        """Store several states in one statement: rows of name, key, state, updated_at."""
        insert = _insert(self.session)(ConversationState.__table__)
        await self.session.execute(insert.on_conflict_do_update(
            index_elements=["name", "key"],
            set_={"state": insert.excluded.state, "updated_at": insert.excluded.updated_at},
        ), rows)

    async def drop(self, name: str, key: str) -> None:
        await self.session.execute(
            delete(ConversationState).where(ConversationState.name == name,
                                            ConversationState.key == key)
        )

    async def drop_many(self, keys: list[tuple[str, str]]) -> None:
        for name, key in keys:
            await self.drop(name, key)
