"""Helpers for the report flow tests: people made through real invites, and short cuts through
the guided /report."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update

from bot.services.reporting import ReportInput
from storage.db import Database
from storage.models import AuditEntry, Draft, ProgressReport, Task, Unit
from tests.support.botapi import SentMessage
from tests.support.harness import Harness


async def join(
    harness: Harness, user_id: int, unit: str, role: str = "focal", name: str = "Lan"
) -> list[SentMessage]:
    """A user opens the bot through an invite to `unit` as `role`."""
    harness.api.user(user_id, name)
    invite = await harness.services.invites.create(unit, role, timedelta(days=7))
    return await harness.send(user_id, f"/start {invite.code}")


async def press(harness: Harness, user_id: int, message: SentMessage, label: str) -> list[SentMessage]:
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


async def to_results(
    harness: Harness, user_id: int, code: str = "5.9", status: str = "Đang thực hiện"
) -> SentMessage:
    """/report <code>, a status and 50%: returns the results question."""
    (ask,) = await harness.send(user_id, f"/report {code}")
    (nxt,) = await press(harness, user_id, ask, status)
    if status == "Đã hoàn thành":
        return nxt
    (nxt,) = await press(harness, user_id, nxt, "50%")
    return nxt


HANOI = ZoneInfo("Asia/Ho_Chi_Minh")
# Monday 5/2/2024: the deadline of the corrected tasks below; Mon 5/2 and Tue 6/2 lie in the same
# weekly period (Thu 1/2 17:00 to Thu 8/2 17:00), so a report on 6/2 corrects that of 5/2.
CORRECTION_DEADLINE = date(2024, 2, 5)


def hanoi(day: int, hour: int = 10, month: int = 2) -> datetime:
    return datetime(2024, month, day, hour, tzinfo=HANOI).astimezone(UTC)


async def corrected_tasks(harness: Harness, unit: str) -> dict[str, str]:
    """Three of the unit's lead tasks, due Monday 5/2/2024, reported on 5/2 and corrected on
    6/2: "kept" done then done (on time), "reopened" done then in progress (open, overdue from
    6/2), "late" in progress then done (completed on 6/2: late). Returns their codes."""
    db = harness.services.db
    async with db.transaction() as session:
        unit_id = await session.scalar(select(Unit.id).where(Unit.code == unit))
        rows = (
            await session.execute(
                select(Task.id, Task.code)
                .where(Task.lead_unit_id == unit_id, Task.closed_at.is_(None))
                .order_by(Task.position)
                .limit(3)
            )
        ).all()
        assert unit_id is not None and len(rows) == 3
        await session.execute(
            update(Task).where(Task.id.in_([r[0] for r in rows])).values(deadline=CORRECTION_DEADLINE)
        )
    plan = {"kept": ("done", "done"), "reopened": ("done", "in_progress"), "late": ("in_progress", "done")}
    for (task_id, _), (first, then) in zip(rows, plan.values(), strict=True):
        for status, at in ((first, hanoi(5)), (then, hanoi(6))):
            await harness.services.reporting.submit(
                ReportInput(task_id, unit_id, None, status, 60, f"Báo cáo {status}"), at=at
            )
    return {name: code for name, (_, code) in zip(plan, rows, strict=True)}
