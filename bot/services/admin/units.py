"""Units from chat: /unit_add and the list of units."""

from __future__ import annotations

from bot.services.admin.common import (
    MAX_NAME,
    Actor,
    AdminBase,
    AdminError,
    UnitInfo,
    clean,
)
from bot.services.plans import UNIT_CODE
from storage.repositories.units import UnitRepository
from storage.repositories.users import UserRepository


class UnitAdmin(AdminBase):
    async def add_unit(self, actor: Actor, code: str, name: str) -> UnitInfo:
        code, name = clean(code), clean(name)
        if not UNIT_CODE.match(code):
            raise AdminError("bad_unit_code", code=code)
        if not name or len(name) > MAX_NAME:
            raise AdminError("bad_name")
        async with self.db.transaction() as session:
            units = UnitRepository(session)
            if await units.by_code(code) is not None:
                raise AdminError("unit_exists", code=code)
            unit = await units.add(code, name)
            self._audit(
                session,
                "unit.create",
                actor,
                entity="unit",
                entity_id=unit.code,
                after={"code": code, "name": name},
            )
            return UnitInfo(unit.code, unit.name, 0)

    async def units(self) -> list[UnitInfo]:
        async with self.db.reader() as session:
            counts = await UserRepository(session).focal_counts()
            return [
                UnitInfo(u.code, u.name, counts.get(u.id, 0)) for u in await UnitRepository(session).all()
            ]
