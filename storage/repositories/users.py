"""Users, their unit memberships and their programme-wide roles."""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload

from storage.models import Membership, Unit, User, UserRole


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
        return await self.session.scalar(
            select(User).where(User.username == username.lstrip("@"))
        )

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
        await self.session.execute(
            delete(UserRole).where(UserRole.user_id == user.id, UserRole.role == role)
        )

    async def focal_counts(self) -> dict[int, int]:
        """How many active focal points each unit has (unit id -> count)."""
        rows = await self.session.execute(
            select(Membership.unit_id, func.count())
            .join(User, User.id == Membership.user_id)
            .where(Membership.role == "focal", User.active.is_(True))
            .group_by(Membership.unit_id)
        )
        return {unit_id: int(n) for unit_id, n in rows.all()}
