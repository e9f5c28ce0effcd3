"""Invites, stored by the sha256 of their code."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Invite


class InviteRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, invite: Invite) -> Invite:
        self.session.add(invite)
        return invite

    async def by_hash(self, code_hash: str) -> Invite | None:
        return await self.session.scalar(select(Invite).where(Invite.code_hash == code_hash))
