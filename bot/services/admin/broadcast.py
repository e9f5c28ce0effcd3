"""A broadcast to everyone the bot knows, after the admin confirmed it."""

from __future__ import annotations

from bot.services.admin.common import (
    Actor,
    AdminError,
)
from bot.services.admin.drafts import DraftAdmin
from bot.services.outbox import OutgoingMessage
from storage.models import User
from storage.repositories.drafts import DraftRepository
from storage.repositories.users import UserRepository


class BroadcastAdmin(DraftAdmin):
    async def count_broadcast_recipients(self) -> int:
        """How many people a broadcast would reach now."""
        return len(await self._broadcast_recipients())

    async def _broadcast_recipients(self) -> list[User]:
        async with self.db.reader() as session:
            return [
                u
                for u in await UserRepository(session).everyone()
                if u.reachable and (u.roles or u.memberships)
            ]

    async def broadcast(self, actor: Actor, version: int) -> int:
        """Queue the confirmed broadcast for everyone the bot knows; returns how many."""
        pending = await self.draft(actor, "broadcast")
        if pending is None or pending[1] != version:
            raise AdminError("stale")
        body = pending[0]["text"]
        recipients = await self._broadcast_recipients()
        messages = [
            OutgoingMessage(
                key=f"broadcast:{actor.telegram_id}:{version}:{self.clock.now().isoformat()}:{user.id}",
                kind="broadcast",
                chat_id=user.telegram_id,
                user_id=user.id,
                text=self.word(user.language, "admin.broadcast.message", text=body),
            )
            for user in recipients
        ]
        async with self.db.transaction() as session:
            user = await self._actor_user(session, actor)
            await DraftRepository(session).drop(user.id, "broadcast")
            self._audit(
                session,
                "broadcast.send",
                actor,
                entity="broadcast",
                after={"text": body, "recipients": len(messages)},
            )
        await self.outbox.enqueue(messages)
        return len(messages)
