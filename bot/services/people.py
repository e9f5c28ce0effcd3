"""Who someone is to the bot: their units and roles, as plain data for handlers."""

from __future__ import annotations

from dataclasses import dataclass

from storage.db import Database
from storage.models import User, utcnow
from storage.repositories.users import UserRepository


@dataclass(frozen=True)
class UnitRole:
    unit_id: int
    unit_code: str
    unit_name: str
    role: str  # focal or leader


@dataclass(frozen=True)
class Person:
    telegram_id: int
    first_name: str
    language: str | None
    units: tuple[UnitRole, ...] = ()
    roles: frozenset[str] = frozenset()  # admin, manager
    user_id: int | None = None  # users.id; None for someone not in the database

    @property
    def known(self) -> bool:
        return bool(self.units or self.roles)

    def is_admin(self) -> bool:
        return "admin" in self.roles

    def unit_ids(self, role: str | None = None) -> set[int]:
        return {u.unit_id for u in self.units if role is None or u.role == role}


class PeopleService:
    def __init__(self, db: Database, admins: frozenset[int]) -> None:
        self.db = db
        self.admins = admins

    async def mark_unreachable(self, user_id: int) -> bool:
        """Telegram said 403 (blocked, deactivated): stop counting on this chat. True when
        this is news (the person was reachable until now)."""
        async with self.db.transaction() as session:
            user = await session.get(User, user_id)
            if user is not None and user.reachable:
                user.reachable = False
                user.unreachable_since = utcnow()
                return True
            return False

    async def mark_reachable(self, telegram_id: int) -> bool:
        """The person wrote to the bot again (after unblocking it): count on their chat again.
        True when they had been marked unreachable."""
        async with self.db.transaction() as session:
            user = await UserRepository(session).by_telegram_id(telegram_id)
            if user is not None and not user.reachable:
                user.reachable = True
                user.unreachable_since = None
                return True
            return False

    async def set_language(self, telegram_id: int, language: str) -> bool:
        """Remember the user's language; False for someone the bot does not know."""
        async with self.db.transaction() as session:
            user = await UserRepository(session).by_telegram_id(telegram_id)
            if user is None:
                return False
            user.language = language
            return True

    async def leaders_of(self, unit_id: int) -> list[tuple[int, int, str | None]]:
        """(user id, Telegram id, language) of the unit's leaders."""
        async with self.db.reader() as session:
            users = await UserRepository(session).unit_members(unit_id, "leader")
            return [(u.id, u.telegram_id, u.language) for u in users if u.reachable]

    async def person(self, telegram_id: int, first_name: str = "") -> Person:
        """The caller as the bot knows them; admins listed in the config are always admins."""
        async with self.db.reader() as session:
            user = await UserRepository(session).by_telegram_id(telegram_id)
            if user is None or not user.active:
                config_admin = frozenset({"admin"}) if telegram_id in self.admins else frozenset()
                return Person(telegram_id, first_name, None, roles=config_admin)
            roles = {r.role for r in user.roles}
            if telegram_id in self.admins:
                roles.add("admin")
            units = tuple(
                UnitRole(m.unit_id, m.unit.code, m.unit.name, m.role)
                for m in sorted(user.memberships, key=lambda m: (m.unit.code, m.role))
            )
            return Person(telegram_id, user.first_name or first_name, user.language, units,
                          frozenset(roles), user.id)
