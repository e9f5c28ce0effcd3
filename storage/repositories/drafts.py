"""Drafts of guided flows and the conversation states PTB restores after a restart."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import ConversationState, Draft


class DraftRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, user_id: int, flow: str) -> Draft | None:
        return await self.session.scalar(
            select(Draft).where(Draft.user_id == user_id, Draft.flow == flow)
        )

    async def put(self, user_id: int, flow: str, data: dict[str, Any], now: datetime) -> Draft:
        """Store the answers, bumping the version (so buttons on older messages go stale)."""
        draft = await self.get(user_id, flow)
        if draft is None:
            draft = Draft(user_id=user_id, flow=flow, data=data, version=1, updated_at=now)
            self.session.add(draft)
        else:
            draft.data = data
            draft.version += 1
            draft.updated_at = now
        await self.session.flush()
        return draft

    async def drop(self, user_id: int, flow: str) -> None:
        await self.session.execute(
            delete(Draft).where(Draft.user_id == user_id, Draft.flow == flow)
        )

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

    async def put(self, name: str, key: str, state: object, now: datetime) -> None:
        row = await self.session.scalar(
            select(ConversationState).where(ConversationState.name == name,
                                            ConversationState.key == key)
        )
        if row is None:
            self.session.add(ConversationState(name=name, key=key, state={"state": state},
                                               updated_at=now))
        else:
            row.state = {"state": state}
            row.updated_at = now

    async def drop(self, name: str, key: str) -> None:
        await self.session.execute(
            delete(ConversationState).where(ConversationState.name == name,
                                            ConversationState.key == key)
        )
