"""Progress reports, their revisions and attachments."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from storage.models import Attachment, ProgressReport, ReportRevision


class ReportRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def for_period(self, task_id: int, unit_id: int, period: str) -> ProgressReport | None:
        """The unit's report on the task in the period, locked for a correction (its
        revisions and attachments are not loaded: a correction only adds to them)."""
        return await self.session.scalar(
            select(ProgressReport)
            .where(ProgressReport.task_id == task_id, ProgressReport.unit_id == unit_id,
                   ProgressReport.period == period)
            .with_for_update()
        )

    def add(self, report: ProgressReport) -> ProgressReport:
        self.session.add(report)
        return report

    def add_revision(self, revision: ReportRevision) -> ReportRevision:
        self.session.add(revision)
        return revision

    def add_attachment(self, attachment: Attachment) -> Attachment:
        self.session.add(attachment)
        return attachment

    async def latest_for_tasks(
        self, task_ids: Iterable[int], unit_ids: Iterable[int] | None = None
    ) -> dict[int, ProgressReport]:
        """The most recent report on each task (optionally only by these units)."""
        task_ids = list(task_ids)
        if not task_ids:
            return {}
        query = select(ProgressReport).where(ProgressReport.task_id.in_(task_ids))
        if unit_ids is not None:
            query = query.where(ProgressReport.unit_id.in_(list(unit_ids)))
        latest: dict[int, ProgressReport] = {}
        for report in await self.session.scalars(query.order_by(ProgressReport.submitted_at)):
            latest[report.task_id] = report
        return latest

    async def recent(self, unit_ids: Iterable[int], task_id: int | None = None,
                     limit: int = 10) -> list[ProgressReport]:
        query = (
            select(ProgressReport)
            .where(ProgressReport.unit_id.in_(list(unit_ids)))
            .options(selectinload(ProgressReport.revisions),
                     selectinload(ProgressReport.attachments))
            .order_by(ProgressReport.submitted_at.desc(), ProgressReport.id.desc())
            .limit(limit)
        )
        if task_id is not None:
            query = query.where(ProgressReport.task_id == task_id)
        return list(await self.session.scalars(query))

    async def history(self, task_ids: Iterable[int]) -> list[tuple[int, int, object, str, int]]:
        """(task_id, unit_id, submitted_at, status, percent) of every report on these tasks, in
        time order (the latest revision of each period's report)."""
        task_ids = list(task_ids)
        rows: list[tuple[int, int, object, str, int]] = []
        for start in range(0, len(task_ids), 500):
            result = await self.session.execute(
                select(ProgressReport.task_id, ProgressReport.unit_id,
                       ProgressReport.submitted_at, ProgressReport.status,
                       ProgressReport.percent)
                .where(ProgressReport.task_id.in_(task_ids[start:start + 500]))
                .order_by(ProgressReport.submitted_at, ProgressReport.id)
            )
            rows.extend(tuple(row) for row in result)  # type: ignore[misc]
        rows.sort(key=lambda row: row[2])  # type: ignore[arg-type,return-value]
        return rows

    async def revision_history(
        self, task_ids: Iterable[int]
    ) -> list[tuple[int, int, datetime, str]]:
        """(task id, unit id, submitted at, status) of every revision, oldest first."""
        task_ids = list(task_ids)
        history: list[tuple[int, int, datetime, str]] = []
        for start in range(0, len(task_ids), 500):
            rows = await self.session.execute(
                select(ProgressReport.task_id, ProgressReport.unit_id, ReportRevision.submitted_at,
                       ReportRevision.status)
                .join(ReportRevision, ReportRevision.report_id == ProgressReport.id)
                .where(ProgressReport.task_id.in_(task_ids[start:start + 500]))
                .order_by(ReportRevision.submitted_at, ReportRevision.id)
            )
            history.extend((t, u, at, s) for t, u, at, s in rows.all())
        history.sort(key=lambda row: row[2])
        return history

    async def everything(self) -> list[ProgressReport]:
        """Every report (latest revision's fields), for the export."""
        rows = await self.session.scalars(
            select(ProgressReport).order_by(ProgressReport.submitted_at, ProgressReport.id)
        )
        return list(rows)
