"""Drafts: the answers of unfinished guided flows, one per user and flow."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Draft


class DraftRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

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
