"""Users, their unit memberships and their programme-wide roles."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Exists, Select, bindparam, delete, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload

from storage.models import Membership, Task, TaskUnit, Unit, User, UserRole, table_of
from storage.statements import StatementRunner


def _focal_scopes() -> tuple[Select[Any], Exists]:
    """(telegram id, task id, unit id) of a focal point (:person) who may report on an open
    task (:task) for a unit: one row per unit of theirs that leads or coordinates it; and the
    same condition for one unit (:unit) as an EXISTS, for statements that write only in scope."""
    # Core over the tables, not ORM entities: this runs at every step of a report, and the ORM's
    # per-execution overhead was most of its cost.
    users, members = table_of(User), table_of(Membership)
    tasks, task_units = table_of(Task), table_of(TaskUnit)
    joined = users.join(members, members.c.user_id == users.c.id).join(tasks, tasks.c.id == bindparam("task"))
    conditions = (
        users.c.telegram_id == bindparam("person"),
        users.c.active.is_(True),
        members.c.role == "focal",
        tasks.c.closed_at.is_(None),
        (tasks.c.lead_unit_id == members.c.unit_id)
        | exists().where(task_units.c.task_id == tasks.c.id, task_units.c.unit_id == members.c.unit_id),
    )
    rows = select(users.c.telegram_id, tasks.c.id, members.c.unit_id).select_from(joined).where(*conditions)
    one_unit = exists().select_from(joined).where(*conditions, members.c.unit_id == bindparam("unit"))
    return rows, one_unit


_FOCAL_SCOPES, IN_SCOPE = _focal_scopes()
_USER_ID = select(User.__table__.c.id).where(User.__table__.c.telegram_id == bindparam("telegram_id"))


def focal_scopes(runner: StatementRunner, telegram_id: int, task_id: int) -> set[tuple[int, int, int]]:
    """(Telegram id, task id, unit id) for each unit of which the person is an active focal
    point and which leads or coordinates the open task."""
    rows = runner.rows(_FOCAL_SCOPES, {"person": telegram_id, "task": task_id})
    return {(int(t), int(task), int(unit)) for t, task, unit in rows}


def may_report(runner: StatementRunner, telegram_id: int, task_id: int, unit_id: int) -> bool:
    """Whether the person may report on the open task for the unit (the scope every report
    step is checked against)."""
    return (telegram_id, task_id, unit_id) in focal_scopes(runner, telegram_id, task_id)


def user_id_of(runner: StatementRunner, telegram_id: int) -> int | None:
    rows = runner.rows(_USER_ID, {"telegram_id": telegram_id})
    return int(rows[0][0]) if rows else None


def _person() -> Select[Any]:
    users, members, units = User.__table__, Membership.__table__, Unit.__table__
    roles = UserRole.__table__
    return (
        select(
            users.c.id,
            users.c.first_name,
            users.c.language,
            users.c.active,
            members.c.unit_id,
            members.c.role,
            units.c.code,
            units.c.name,
            roles.c.role.label("programme_role"),
        )
        .select_from(
            users.outerjoin(members, members.c.user_id == users.c.id)
            .outerjoin(units, units.c.id == members.c.unit_id)
            .outerjoin(roles, roles.c.user_id == users.c.id)
        )
        .where(users.c.telegram_id == bindparam("telegram_id"))
    )


_PERSON = _person()


def _contacts() -> Select[Any]:
    users, members = User.__table__, Membership.__table__
    return (
        select(users.c.id, users.c.telegram_id, users.c.language)
        .join(members, members.c.user_id == users.c.id)
        .where(
            members.c.unit_id == bindparam("unit_id"),
            members.c.role == bindparam("role"),
            users.c.active.is_(True),
            users.c.reachable.is_(True),
        )
        .order_by(users.c.id)
    )


_CONTACTS = _contacts()


def person_rows(runner: StatementRunner, telegram_id: int) -> list[Any]:
    """The user's row once per membership and programme role (outer joins: one row with None
    for someone with neither; none for someone unknown): id, first_name, language, active,
    unit_id, role, code, name (of the unit), programme_role. Core over the tables in one
    query: this runs for nearly every update, and loading ORM objects with their
    relationships cost several times more."""
    return runner.rows(_PERSON, {"telegram_id": telegram_id})


def contacts(runner: StatementRunner, unit_id: int, role: str) -> list[tuple[int, int, str | None]]:
    """(user id, Telegram id, language) of the unit's active and reachable members with the
    role, by user id: for the notice of every report."""
    return [
        (int(i), int(t), language)
        for i, t, language in runner.rows(_CONTACTS, {"unit_id": unit_id, "role": role})
    ]


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_telegram_id(self, telegram_id: int) -> User | None:
        # One query (joined): this runs for nearly every update.
        result = await self.session.scalars(
            select(User)
            .where(User.telegram_id == telegram_id)
            .options(
                joinedload(User.memberships).joinedload(Membership.unit),
                joinedload(User.roles),
            )
        )
        return result.unique().one_or_none()

    async def by_username(self, username: str) -> User | None:
        return await self.session.scalar(select(User).where(User.username == username.lstrip("@")))

    async def upsert(
        self, telegram_id: int, first_name: str, last_name: str | None, username: str | None
    ) -> User:
        """Find the user by Telegram id, creating them, and refresh the names they go by."""
        user = await self.by_telegram_id(telegram_id)
        if user is None:
            user = User(telegram_id=telegram_id, memberships=[], roles=[])
            self.session.add(user)
        user.first_name = first_name or ""
        user.last_name = last_name
        user.username = username
        await self.session.flush()
        return user

    async def add_membership(self, user: User, unit: Unit, role: str) -> Membership:
        for membership in user.memberships:
            if membership.unit_id == unit.id and membership.role == role:
                return membership
        membership = Membership(user=user, unit=unit, role=role)
        self.session.add(membership)
        await self.session.flush()
        return membership

    async def grant_role(self, user: User, role: str, granted_by: User | None = None) -> UserRole:
        for existing in user.roles:
            if existing.role == role:
                return existing
        user_role = UserRole(user=user, role=role, granted_by_id=granted_by.id if granted_by else None)
        self.session.add(user_role)
        await self.session.flush()
        return user_role

    async def revoke_all(self, user: User) -> None:
        await self.session.execute(delete(Membership).where(Membership.user_id == user.id))
        await self.session.execute(delete(UserRole).where(UserRole.user_id == user.id))

    async def unit_members(self, unit_id: int, role: str) -> list[User]:
        rows = await self.session.scalars(
            select(User)
            .join(Membership, Membership.user_id == User.id)
            .where(Membership.unit_id == unit_id, Membership.role == role, User.active.is_(True))
            .order_by(User.id)
        )
        return list(rows)

    async def with_role(self, role: str) -> list[User]:
        rows = await self.session.scalars(
            select(User)
            .join(UserRole, UserRole.user_id == User.id)
            .where(UserRole.role == role, User.active.is_(True))
            .order_by(User.id)
        )
        return list(rows)

    async def everyone(self) -> list[User]:
        """Active users with their memberships and roles, by Telegram id."""
        rows = await self.session.scalars(
            select(User)
            .where(User.active.is_(True))
            .options(
                selectinload(User.memberships).selectinload(Membership.unit),
                selectinload(User.roles),
            )
            .order_by(User.telegram_id)
        )
        return list(rows)

    async def remove_role(self, user: User, role: str) -> None:
        await self.session.execute(delete(UserRole).where(UserRole.user_id == user.id, UserRole.role == role))

    async def focal_counts(self) -> dict[int, int]:
        """How many active focal points each unit has (unit id -> count)."""
        rows = await self.session.execute(
            select(Membership.unit_id, func.count())
            .join(User, User.id == Membership.user_id)
            .where(Membership.role == "focal", User.active.is_(True))
            .group_by(Membership.unit_id)
        )
        return {unit_id: int(n) for unit_id, n in rows.all()}
