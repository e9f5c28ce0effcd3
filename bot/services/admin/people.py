"""People from chat: who is known, roles granted and revoked, the audit log."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.admin.common import (
    ROLES,
    Actor,
    AdminBase,
    AdminError,
    AuditView,
    Change,
    UserInfo,
    audit_view,
    clean,
)
from storage.models import User
from storage.repositories.audit import AuditRepository
from storage.repositories.users import UserRepository


class PeopleAdmin(AdminBase):
    async def users(self) -> list[UserInfo]:
        async with self.db.reader() as session:
            found = await UserRepository(session).everyone()
        infos = []
        for user in found:
            roles = sorted(
                {r.role for r in user.roles}
                | ({"admin"} if user.telegram_id in self.config_admins else set())
            )
            roles += sorted(f"{m.role}:{m.unit.code}" for m in user.memberships)
            name = " ".join(p for p in (user.first_name, user.last_name) if p)
            infos.append(UserInfo(user.telegram_id, name, user.username, tuple(roles), user.reachable))
        return infos

    async def _find_user(self, session: AsyncSession, ref: str) -> User:
        ref = clean(ref)
        users = UserRepository(session)
        user = None
        if ref.lstrip("-").isdigit():
            user = await users.by_telegram_id(int(ref))
        elif ref.startswith("@") and len(ref) > 1:
            found = await users.by_username(ref)
            user = await users.by_telegram_id(found.telegram_id) if found else None
        if user is None:
            raise AdminError("unknown_user", user=ref)
        return user

    @staticmethod
    def _roles_of(user: User) -> list[str]:
        return sorted({r.role for r in user.roles}) + sorted(
            f"{m.role}:{m.unit.code}" for m in user.memberships
        )

    async def set_role(self, actor: Actor, ref: str, role: str, unit_code: str | None) -> Change:
        role = clean(role).lower()
        if role not in ROLES:
            raise AdminError("bad_role", roles=", ".join(ROLES))
        async with self.db.transaction() as session:
            users = UserRepository(session)
            user = await self._find_user(session, ref)
            before = self._roles_of(user)
            granter = await self._actor_user(session, actor)
            if role in ("admin", "manager"):
                await users.grant_role(user, role, granter)
            else:
                if not unit_code:
                    raise AdminError("role_needs_unit")
                (unit,) = await self._units(session, [unit_code])
                await users.add_membership(user, unit, role)
            after = self._roles_of(user)
            return self._roles_changed(session, "user.role", actor, user, before, after)

    async def revoke(self, actor: Actor, ref: str) -> Change:
        async with self.db.transaction() as session:
            user = await self._find_user(session, ref)
            before = self._roles_of(user)
            await UserRepository(session).revoke_all(user)
            after = ["admin"] if user.telegram_id in self.config_admins else []
            return self._roles_changed(session, "user.revoke", actor, user, before, after)

    def _roles_changed(
        self,
        session: AsyncSession,
        action: str,
        actor: Actor,
        user: User,
        before: list[str],
        after: list[str],
    ) -> Change:
        """Audit a change of the user's roles; the change as the handler shows it."""
        change = Change(str(user.telegram_id), {"roles": before}, {"roles": after})
        self._audit(
            session,
            action,
            actor,
            entity="user",
            entity_id=user.telegram_id,
            before=change.before,
            after=change.after,
        )
        return change

    async def record_export(self, actor: Actor) -> None:
        async with self.db.transaction() as session:
            self._audit(session, "programme.export", actor, entity="programme")

    async def audit(self, limit: int) -> list[AuditView]:
        async with self.db.reader() as session:
            return [audit_view(e) for e in await AuditRepository(session).latest(limit)]
