"""The pending state of admin flows (imports, broadcasts, /task_add), kept in the database so
a restart loses nothing."""

from __future__ import annotations

from typing import Any

from bot.services.admin.common import (
    Actor,
    AdminBase,
)
from storage.repositories.drafts import DraftRepository
from storage.repositories.users import UserRepository


class DraftAdmin(AdminBase):
    async def save_draft(self, actor: Actor, flow: str, data: dict[str, Any]) -> int:
        """Keep a flow's state in the database (a restart loses nothing); returns its version."""
        async with self.db.transaction() as session:
            user = await self._actor_user(session, actor)
            return (await DraftRepository(session).put(user.id, flow, data)).version

    async def draft(self, actor: Actor, flow: str) -> tuple[dict[str, Any], int] | None:
        async with self.db.reader() as session:
            user = await UserRepository(session).by_telegram_id(actor.telegram_id)
            if user is None:
                return None
            draft = await DraftRepository(session).get(user.id, flow)
            return (dict(draft.data), draft.version) if draft else None

    async def drop_draft(self, actor: Actor, flow: str) -> None:
        async with self.db.transaction() as session:
            user = await UserRepository(session).by_telegram_id(actor.telegram_id)
            if user is not None:
                await DraftRepository(session).drop(user.id, flow)
