"""Programmes (chương trình hành động): each with its decision, period rule and state."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Programme, Task


class ProgrammeRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def all(self, *, active_only: bool = False) -> list[Programme]:
        query = select(Programme).order_by(Programme.decision_date, Programme.id)
        if active_only:
            query = query.where(Programme.state == "active")
        return list(await self.session.scalars(query))

    async def by_code(self, code: str) -> Programme | None:
        return await self.session.scalar(select(Programme).where(Programme.code == code))

    async def by_short_code(self, short_code: str) -> Programme | None:
        return await self.session.scalar(select(Programme).where(Programme.short_code == short_code))

    async def by_id(self, programme_id: int) -> Programme | None:
        return await self.session.get(Programme, programme_id)

    async def task_counts(self) -> dict[int, tuple[int, int]]:
        """programme id -> (tasks, open tasks)."""
        rows = await self.session.execute(
            select(
                Task.programme_id,
                func.count(),
                func.count().filter(Task.closed_at.is_(None)),
            ).group_by(Task.programme_id)
        )
        return {pid: (int(total), int(open_)) for pid, total, open_ in rows}
