"""Submitting reports: one per unit, task and period; corrections keep the old revision."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.clock import FixedClock
from bot.config import Config
from bot.services.periods import period_rule
from bot.services.reporting import EvidenceFile, ReportingService, ReportInput
from storage.db import Database
from storage.models import AuditEntry, ProgressReport, ReportRevision, Task, Unit
from tests.test_storage import import_example


async def ids(db: Database, task_code: str, unit_code: str) -> tuple[int, int]:
    async with db.reader() as session:
        task = await session.scalar(select(Task.id).where(Task.code == task_code))
        unit = await session.scalar(select(Unit.id).where(Unit.code == unit_code))
    assert task and unit
    return task, unit


async def test_resubmitting_in_the_period_is_a_correction(
    db: Database, clock: FixedClock, config: Config
) -> None:
    await import_example(db)
    task_id, unit_id = await ids(db, "1.1", "KHTC")
    service = ReportingService(db, clock, period_rule(config))
    first = await service.submit(
        ReportInput(
            task_id,
            unit_id,
            None,
            "in_progress",
            40,
            "Đã phân bổ <50%> & giao dự toán",
            files=(EvidenceFile("file-1", file_name="qd.pdf", sha256="ab" * 32),),
        )
    )
    assert (first.revision, first.period) == (1, "2024-W05")

    clock.advance(timedelta(hours=3))
    second = await service.submit(ReportInput(task_id, unit_id, None, "done", 10, "Xong"))
    assert (second.report_id, second.revision, second.is_correction) == (first.report_id, 2, True)

    clock.advance(timedelta(days=7))
    third = await service.submit(ReportInput(task_id, unit_id, None, "done", 100, "Tuần sau"))
    assert third.report_id != first.report_id and third.period == "2024-W06"

    async with db.reader() as session:
        report = await session.get(ProgressReport, first.report_id)
        assert report is not None
        assert (report.status, report.percent, report.revision) == ("done", 100, 2)
        revisions = list(
            await session.scalars(
                select(ReportRevision)
                .where(ReportRevision.report_id == first.report_id)
                .order_by(ReportRevision.revision)
            )
        )
        assert [(r.revision, r.status, r.results) for r in revisions] == [
            (1, "in_progress", "Đã phân bổ <50%> & giao dự toán"),
            (2, "done", "Xong"),
        ]
        actions = list(
            await session.scalars(
                select(AuditEntry.action).where(AuditEntry.entity == "report").order_by(AuditEntry.id)
            )
        )
        assert actions == ["report.submit", "report.correct", "report.submit"]
