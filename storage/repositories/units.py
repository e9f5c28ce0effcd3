"""Units (đơn vị)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from storage.models import Unit


class UnitRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_code(self, code: str) -> Unit | None:
        return await self.session.scalar(select(Unit).where(Unit.code == code))

    async def by_codes(self, codes: Iterable[str]) -> dict[str, Unit]:
        codes = list(set(codes))
        if not codes:
            return {}
        rows = await self.session.scalars(
            select(Unit).where(Unit.code.in_(codes)).options(selectinload(Unit.parent))
        )
        return {unit.code: unit for unit in rows}

    async def all(self, *, active_only: bool = True) -> list[Unit]:
        query = select(Unit).order_by(Unit.code)
        if active_only:
            query = query.where(Unit.active.is_(True))
        return list(await self.session.scalars(query))

    async def add(self, code: str, name: str, parent: Unit | None = None) -> Unit:
        unit = Unit(code=code, name=name, parent=parent)
        self.session.add(unit)
        await self.session.flush()
        return unit
