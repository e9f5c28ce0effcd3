"""The audit log: who did what, when, with the values before and after."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AuditEntry


class AuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def record(
        self,
        action: str,
        *,
        actor: str = "",
        actor_telegram_id: int | None = None,
        entity: str = "",
        entity_id: str | int = "",
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
        detail: str = "",
    ) -> AuditEntry:
        entry = AuditEntry(
            action=action,
            actor=actor,
            actor_telegram_id=actor_telegram_id,
            entity=entity,
            entity_id=str(entity_id),
            before=before,
            after=after,
            detail=detail[:2000],
        )
        self.session.add(entry)
        return entry

    async def latest(self, limit: int = 20) -> list[AuditEntry]:
        rows = await self.session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit))
        return list(rows)

    async def for_entity(self, entity: str, entity_id: str, limit: int = 30) -> list[AuditEntry]:
        rows = await self.session.scalars(
            select(AuditEntry)
            .where(AuditEntry.entity == entity, AuditEntry.entity_id == entity_id)
            .order_by(AuditEntry.id.desc())
            .limit(limit)
        )
        return list(rows)
