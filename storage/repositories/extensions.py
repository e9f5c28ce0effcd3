"""Deadline extension requests and their decisions."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import DeadlineExtension


class ExtensionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, extension: DeadlineExtension) -> DeadlineExtension:
        self.session.add(extension)
        return extension

    async def get(self, extension_id: int) -> DeadlineExtension | None:
        return await self.session.scalar(
            select(DeadlineExtension).where(DeadlineExtension.id == extension_id).with_for_update()
        )

    async def for_task(self, task_id: int) -> list[DeadlineExtension]:
        rows = await self.session.scalars(
            select(DeadlineExtension)
            .where(DeadlineExtension.task_id == task_id)
            .order_by(DeadlineExtension.id)
        )
        return list(rows)
