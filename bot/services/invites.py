"""Invites: single-use codes that bind a Telegram user to a unit and a role."""

from __future__ import annotations

import enum
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.clock import Clock
from storage.db import Database
from storage.models import INVITE_ROLES, Invite, Unit
from storage.repositories.audit import AuditRepository
from storage.repositories.invites import InviteRepository
from storage.repositories.units import UnitRepository
from storage.repositories.users import UserRepository


def hash_code(code: str) -> str:
    return hashlib.sha256(code.encode("utf-8")).hexdigest()


def deep_link(username: str, code: str) -> str:
    return f"https://t.me/{username.lstrip('@')}?start={code}"


class UnknownUnit(LookupError):
    pass


class RedeemOutcome(enum.Enum):
    OK = "ok"
    UNKNOWN = "unknown"
    USED = "used"
    EXPIRED = "expired"


@dataclass(frozen=True)
class NewInvite:
    code: str
    role: str
    unit_code: str
    unit_name: str
    expires_at: datetime


@dataclass(frozen=True)
class Redeemed:
    outcome: RedeemOutcome
    role: str = ""
    unit_code: str = ""
    unit_name: str = ""


class InviteService:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def create(
        self,
        unit_code: str,
        role: str,
        expires_in: timedelta,
        *,
        actor: str = "cli",
        actor_telegram_id: int | None = None,
    ) -> NewInvite:
        if role not in INVITE_ROLES:
            raise ValueError(role)
        # 18 random bytes: 24 URL-safe characters, within the 64 a /start payload allows.
        code = secrets.token_urlsafe(18)
        async with self.db.transaction() as session:
            unit = await UnitRepository(session).by_code(unit_code)
            if unit is None:
                raise UnknownUnit(unit_code)
            invite = InviteRepository(session).add(
                Invite(
                    code_hash=hash_code(code),
                    role=role,
                    unit_id=unit.id,
                    created_at=self.clock.now(),
                    expires_at=self.clock.now() + expires_in,
                )
            )
            await session.flush()
            AuditRepository(session).record(
                "invite.create",
                actor=actor,
                actor_telegram_id=actor_telegram_id,
                entity="invite",
                entity_id=invite.id,
                after={"role": role, "unit": unit.code, "expires_at": invite.expires_at.isoformat()},
            )
            return NewInvite(code, role, unit.code, unit.name, invite.expires_at)

    async def redeem(
        self,
        code: str,
        telegram_id: int,
        first_name: str,
        last_name: str | None,
        username: str | None,
    ) -> Redeemed:
        """Bind the user to the invite's unit and role, once; anything else binds nothing."""
        now = self.clock.now()
        async with self.db.transaction() as session:
            invite = await InviteRepository(session).by_hash(hash_code(code))
            if invite is None:
                return Redeemed(RedeemOutcome.UNKNOWN)
            if invite.used_at is not None:
                return Redeemed(RedeemOutcome.USED)
            if invite.expires_at <= now:
                return Redeemed(RedeemOutcome.EXPIRED)
            users = UserRepository(session)
            user = await users.upsert(telegram_id, first_name, last_name, username)
            unit = await session.get(Unit, invite.unit_id) if invite.unit_id else None
            if invite.role == "manager":
                await users.grant_role(user, "manager")
            elif unit is not None:
                await users.add_membership(user, unit, invite.role)
            invite.used_by_id = user.id
            invite.used_at = now
            AuditRepository(session).record(
                "invite.redeem",
                actor=f"tg:{telegram_id}",
                actor_telegram_id=telegram_id,
                entity="invite",
                entity_id=invite.id,
                after={"role": invite.role, "unit": unit.code if unit else None},
            )
            return Redeemed(
                RedeemOutcome.OK, invite.role, unit.code if unit else "", unit.name if unit else ""
            )
