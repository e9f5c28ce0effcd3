"""Unfinished guided flows: the answers so far and the step, written at every step.

The answers (drafts) and the step (conversation_states, which DatabasePersistence gives back
to PTB at start-up) are written in one transaction before the next question goes out, so a
kill -9 at any moment leaves the user at the step they last saw.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from bot.clock import Clock
from storage.db import Database
from storage.models import User
from storage.persistence import conversation_key
from storage.repositories.drafts import ConversationRepository, DraftRepository


@dataclass(frozen=True)
class DraftView:
    version: int
    data: dict[str, Any] = field(default_factory=dict)
    updated_at: datetime | None = None


@dataclass(frozen=True)
class ExpiredDraft:
    telegram_id: int
    language: str | None
    data: dict[str, Any]


class DraftService:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def load(self, telegram_id: int, flow: str) -> DraftView | None:
        async with self.db.reader() as session:
            user_id = await session.scalar(select(User.id).where(User.telegram_id == telegram_id))
            if user_id is None:
                return None
            draft = await DraftRepository(session).get(user_id, flow)
            if draft is None:
                return None
            return DraftView(draft.version, dict(draft.data), draft.updated_at)

    async def save(self, telegram_id: int, flow: str, data: dict[str, Any], state: object,
                   chat_id: int) -> DraftView:
        """Store the answers and the step the user is now at; bumps the draft's version."""
        now = self.clock.now()
        async with self.db.transaction() as session:
            user_id = await session.scalar(select(User.id).where(User.telegram_id == telegram_id))
            if user_id is None:
                raise LookupError(telegram_id)
            draft = await DraftRepository(session).put(user_id, flow, data, now)
            await ConversationRepository(session).put(
                flow, conversation_key((chat_id, telegram_id)), state, now)
            return DraftView(draft.version, dict(data), now)

    async def close(self, telegram_id: int, flow: str, chat_id: int) -> None:
        async with self.db.transaction() as session:
            user_id = await session.scalar(select(User.id).where(User.telegram_id == telegram_id))
            if user_id is not None:
                await DraftRepository(session).drop(user_id, flow)
            await ConversationRepository(session).drop(
                flow, conversation_key((chat_id, telegram_id)))

    async def close_expired(self, flow: str, older_than: timedelta) -> list[ExpiredDraft]:
        """Close drafts untouched for longer than older_than; returns whom to tell."""
        before = self.clock.now() - older_than
        closed: list[ExpiredDraft] = []
        async with self.db.transaction() as session:
            drafts = DraftRepository(session)
            conversations = ConversationRepository(session)
            for draft in await drafts.older_than(flow, before):
                user = await session.get(User, draft.user_id)
                if user is None:
                    continue
                closed.append(ExpiredDraft(user.telegram_id, user.language, dict(draft.data)))
                await drafts.drop(draft.user_id, flow)
                await conversations.drop(
                    flow, conversation_key((user.telegram_id, user.telegram_id)))
        return closed
