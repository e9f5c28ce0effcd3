"""Who someone is to the bot: their units and roles, as plain data for handlers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from storage.db import Database
from storage.models import User, utcnow
from storage.repositories.users import UserRepository, contacts, may_report, person_rows
from storage.statements import StatementRunner


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
        return await self.db.read_statements(lambda runner: contacts(runner, unit_id, "leader"))

    async def person(self, telegram_id: int, first_name: str = "") -> Person:
        """The caller as the bot knows them; admins listed in the config are always admins."""
        rows = await self.db.read_statements(lambda runner: person_rows(runner, telegram_id))
        return self._person(telegram_id, first_name, rows)

    async def reporter(
        self, telegram_id: int, task_id: int, unit_id: int, first_name: str = ""
    ) -> tuple[Person, bool]:
        """The caller, and whether they may (still) report on the open task for the unit: an
        active focal point of a unit that leads or coordinates it. One read for both."""

        def read(runner: StatementRunner) -> tuple[list[Any], bool]:
            return (person_rows(runner, telegram_id), may_report(runner, telegram_id, task_id, unit_id))

        rows, allowed = await self.db.read_statements(read)
        return self._person(telegram_id, first_name, rows), allowed

    def _person(self, telegram_id: int, first_name: str, rows: list[Any]) -> Person:
        if not rows or not rows[0].active:
            config_admin = frozenset({"admin"}) if telegram_id in self.admins else frozenset()
            return Person(telegram_id, first_name, None, roles=config_admin)
        user = rows[0]
        roles = {r.programme_role for r in rows if r.programme_role is not None}
        if telegram_id in self.admins:
            roles.add("admin")
        memberships = {(r.unit_id, r.role): (r.code, r.name) for r in rows if r.unit_id is not None}
        units = tuple(
            UnitRole(unit_id, code, name, role)
            for (unit_id, role), (code, name) in sorted(memberships.items(), key=lambda m: (m[1][0], m[0][1]))
        )
        return Person(
            telegram_id, user.first_name or first_name, user.language, units, frozenset(roles), user.id
        )
