"""Who receives the consolidated report, subscriptions, and the record of runs per period."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Membership, ReportRun, Subscription, Unit, User, UserRole


@dataclass(frozen=True)
class Recipient:
    user_id: int
    chat_id: int
    language: str | None


class DigestRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def run_exists(self, period: str, scope: str) -> bool:
        found = await self.session.scalar(
            select(ReportRun.id).where(ReportRun.period == period, ReportRun.scope == scope)
        )
        return found is not None

    async def scopes_done(self, period: str) -> set[str]:
        return set(await self.session.scalars(select(ReportRun.scope).where(ReportRun.period == period)))

    async def add_run(self, period: str, scope: str, at: datetime, detail: dict[str, Any]) -> ReportRun:
        run = ReportRun(
            period=period, scope=scope, state="queued", started_at=at, finished_at=at, detail=detail
        )
        self.session.add(run)
        await self.session.flush()  # the (period, scope) unique constraint answers here
        return run

    async def programme_recipients(self) -> list[Recipient]:
        """Managers and everyone subscribed to the digest, each once."""
        managers = select(UserRole.user_id).where(UserRole.role == "manager")
        subscribers = select(Subscription.user_id).where(Subscription.kind == "digest")
        rows = await self.session.execute(
            select(User.id, User.telegram_id, User.language)
            .where(User.active.is_(True), User.id.in_(managers.union(subscribers)))
            .order_by(User.id)
        )
        return [Recipient(*row) for row in rows]

    async def leaders_by_unit(self) -> dict[str, list[Recipient]]:
        rows = await self.session.execute(
            select(Unit.code, User.id, User.telegram_id, User.language)
            .join(Membership, Membership.user_id == User.id)
            .join(Unit, Unit.id == Membership.unit_id)
            .where(Membership.role == "leader", User.active.is_(True), Unit.active.is_(True))
            .order_by(Unit.code, User.id)
        )
        leaders: dict[str, list[Recipient]] = defaultdict(list)
        for code, user_id, chat_id, language in rows:
            leaders[code].append(Recipient(user_id, chat_id, language))
        return dict(leaders)

    async def user_id(self, telegram_id: int) -> int | None:
        return await self.session.scalar(select(User.id).where(User.telegram_id == telegram_id))

    async def subscribed(self, user_id: int) -> bool:
        found = await self.session.scalar(
            select(Subscription.id).where(Subscription.user_id == user_id, Subscription.kind == "digest")
        )
        return found is not None

    def subscribe(self, user_id: int, at: datetime) -> None:
        self.session.add(Subscription(user_id=user_id, kind="digest", created_at=at))

    async def unsubscribe(self, user_id: int) -> None:
        await self.session.execute(
            delete(Subscription).where(Subscription.user_id == user_id, Subscription.kind == "digest")
        )
