"""Helpers for the report flow tests: people made through real invites, and short cuts through
the guided /report."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from storage.db import Database
from storage.models import AuditEntry, Draft, ProgressReport
from tests.support.botapi import SentMessage
from tests.support.harness import Harness


async def join(harness: Harness, user_id: int, unit: str, role: str = "focal",
               name: str = "Lan") -> list[SentMessage]:
    """A user opens the bot through an invite to `unit` as `role`."""
    harness.api.user(user_id, name)
    invite = await harness.services.invites.create(unit, role, timedelta(days=7))
    return await harness.send(user_id, f"/start {invite.code}")


async def press(harness: Harness, user_id: int, message: SentMessage,
                label: str) -> list[SentMessage]:
    return await harness.press(user_id, message.message_id, message.button_data(label))


async def count(db: Database, model: type) -> int:
    async with db.reader() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def reports(db: Database) -> int:
    return await count(db, ProgressReport)


async def drafts(db: Database) -> int:
    return await count(db, Draft)


async def audit_actions(db: Database) -> list[str]:
    async with db.reader() as session:
        return list(await session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))


def last_answer(harness: Harness) -> str | None:
    return harness.api.answered_callbacks[-1].text


async def to_results(harness: Harness, user_id: int, code: str = "5.9",
                     status: str = "Đang thực hiện") -> SentMessage:
    """/report <code>, a status and 50%: returns the results question."""
    (ask,) = await harness.send(user_id, f"/report {code}")
    (nxt,) = await press(harness, user_id, ask, status)
    if status == "Đã hoàn thành":
        return nxt
    (nxt,) = await press(harness, user_id, nxt, "50%")
    return nxt
