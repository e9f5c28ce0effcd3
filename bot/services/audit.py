"""Recording things worth auditing that happen outside another service's transaction
(refused buttons and commands)."""

from __future__ import annotations

from typing import Any

from storage.db import Database
from storage.repositories.audit import AuditRepository


class AuditService:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def record(
        self,
        action: str,
        *,
        actor_telegram_id: int | None = None,
        entity: str = "",
        entity_id: str | int = "",
        after: dict[str, Any] | None = None,
        detail: str = "",
    ) -> None:
        async with self.db.transaction() as session:
            AuditRepository(session).record(
                action,
                actor=f"tg:{actor_telegram_id}" if actor_telegram_id else "",
                actor_telegram_id=actor_telegram_id,
                entity=entity,
                entity_id=entity_id,
                after=after,
                detail=detail,
            )
