"""Progress reports, their revisions and attachments."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, selectinload

from storage.direct import StatementRunner
from storage.models import (
    Attachment,
    AuditEntry,
    ProgressReport,
    ReportRevision,
    Task,
    table_of,
)

# The columns a report's answers fill (a revision repeats them).
ANSWER_FIELDS = (
    "status",
    "percent",
    "results",
    "difficulties",
    "proposals",
    "indicator_value",
    "evidence_ref",
    "unchanged",
)


REPORTS = table_of(ProgressReport)
REVISIONS, ATTACHMENTS, AUDIT = table_of(ReportRevision), table_of(Attachment), table_of(AuditEntry)
# Core statements for submitting a report in one short transaction (storage/direct.py): the
# ORM's unit of work cost several times the SQL at the last step of every report.
_PERIOD_REPORT = (
    select(REPORTS.c.id, REPORTS.c.revision, *(REPORTS.c[f] for f in ANSWER_FIELDS))
    .where(
        REPORTS.c.task_id == bindparam("task_id"),
        REPORTS.c.unit_id == bindparam("unit_id"),
        REPORTS.c.period == bindparam("period"),
    )
    .with_for_update()
)
_UNIT_LATEST = (
    select(REPORTS.c.status, REPORTS.c.status_since)
    .where(
        REPORTS.c.task_id == bindparam("task_id"),
        REPORTS.c.unit_id == bindparam("unit_id"),
        REPORTS.c.submitted_at <= bindparam("at", type_=REPORTS.c.submitted_at.type),
    )
    .order_by(REPORTS.c.submitted_at.desc(), REPORTS.c.id.desc())
    .limit(1)
)


_UNIT_LAST_REPORT = (
    select(*(REPORTS.c[f] for f in ANSWER_FIELDS))
    .where(REPORTS.c.task_id == bindparam("task_id"), REPORTS.c.unit_id == bindparam("unit_id"))
    .order_by(REPORTS.c.submitted_at.desc(), REPORTS.c.id.desc())
    .limit(1)
)


def _correct(*columns: str) -> Any:
    return (
        update(REPORTS)
        .where(REPORTS.c.id == bindparam("report_id"))
        .values({name: bindparam(name, type_=REPORTS.c[name].type) for name in columns})
    )


_CORRECTED = (*ANSWER_FIELDS, "revision", "reporter_id", "submitted_at")
_CORRECT = _correct(*_CORRECTED)
_CORRECT_RESTART = _correct(*_CORRECTED, "status_since")  # the status changed


def period_report(runner: StatementRunner, task_id: int, unit_id: int, period: str) -> dict[str, Any] | None:
    """The unit's report on the task in the period (id, revision and answers), locked for a
    correction on PostgreSQL (SQLite's write transaction holds the whole database)."""
    rows = runner.rows(_PERIOD_REPORT, {"task_id": task_id, "unit_id": unit_id, "period": period})
    if not rows:
        return None
    return dict(zip(("id", "revision", *ANSWER_FIELDS), rows[0], strict=True))


def unit_latest_status(
    runner: StatementRunner, task_id: int, unit_id: int, at: datetime
) -> tuple[str, datetime] | None:
    """(status, status_since) of the unit's latest report on the task up to the moment."""
    rows = runner.rows(_UNIT_LATEST, {"task_id": task_id, "unit_id": unit_id, "at": at})
    if not rows:
        return None
    return rows[0][0], rows[0][1]


def unit_last_report(runner: StatementRunner, task_id: int, unit_id: int) -> dict[str, Any] | None:
    """The answers of the unit's latest report on the task (its latest revision), or None."""
    rows = runner.rows(_UNIT_LAST_REPORT, {"task_id": task_id, "unit_id": unit_id})
    return dict(zip(ANSWER_FIELDS, rows[0], strict=True)) if rows else None


def correct_report(runner: StatementRunner, report_id: int, values: dict[str, Any]) -> None:
    """Overwrite the report's answers with a correction's (values: the answers, revision,
    reporter_id, submitted_at, and status_since when the status changed)."""
    statement = _CORRECT_RESTART if "status_since" in values else _CORRECT
    runner.execute(statement, values | {"report_id": report_id})


@dataclass(frozen=True)
class LeadProgress:
    """A task's lead unit's latest report at a moment, and when the task was completed."""

    task_id: int
    status: str
    percent: int
    # When "done" was first claimed in the lead unit's last unbroken run of "done"; None when
    # its latest report does not say done (bot/services/status.py).
    completed_at: datetime | None
    submitted_at: datetime  # the latest report's (last correction's) time
    period: str
    results: str
    difficulties: str
    proposals: str
    indicator_value: float | None
    unchanged: bool = False  # filed as "Không thay đổi" (a copy of the previous report)

    @property
    def completed(self) -> bool:
        return self.completed_at is not None

    def completed_on(self, tz: tzinfo) -> date | None:
        """The local day the task was completed (what the status class compares)."""
        return self.completed_at.astimezone(tz).date() if self.completed_at else None


class ReportRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

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
        for report in await self.session.scalars(
            query.order_by(ProgressReport.submitted_at, ProgressReport.id)
        ):
            latest[report.task_id] = report
        return latest

    async def recent(
        self, unit_ids: Iterable[int], task_id: int | None = None, limit: int = 10
    ) -> list[ProgressReport]:
        query = (
            select(ProgressReport)
            .where(ProgressReport.unit_id.in_(list(unit_ids)))
            .options(selectinload(ProgressReport.revisions), selectinload(ProgressReport.attachments))
            .order_by(ProgressReport.submitted_at.desc(), ProgressReport.id.desc())
            .limit(limit)
        )
        if task_id is not None:
            query = query.where(ProgressReport.task_id == task_id)
        return list(await self.session.scalars(query))

    async def lead_progress(
        self, at: datetime, tasks: Collection[int] | Select[Any]
    ) -> dict[int, LeadProgress]:
        """THE place a task's completion is read (bot/services/status.py): for each task (ids,
        or a query selecting Task.id), its lead unit's latest report up to `at` and, when that
        says done, the moment the task was completed. Tasks without a lead report are left out.

        Set-based: per task one seek back along the (task_id, submitted_at) index, past any
        coordinating units' reports; the completion moment is that report's status_since.
        `at` is now or a period's end (a report's revisions all lie in its period, so its
        latest revision is the one in force at either).
        """
        if isinstance(tasks, Select):
            return await self._lead_progress(at, Task.id.in_(tasks))
        ids = sorted(set(tasks))
        found: dict[int, LeadProgress] = {}
        for start in range(0, len(ids), 500):
            found.update(await self._lead_progress(at, Task.id.in_(ids[start : start + 500])))
        return found

    @staticmethod
    def _latest_lead(column: Any, at: datetime | ColumnElement[datetime]) -> Any:
        """`column` (of ProgressReport) of the task's lead unit's latest report up to `at`, as
        a scalar subquery correlated with Task (and with `at`'s table, if it is a column)."""
        pr = aliased(ProgressReport)
        return (
            select(getattr(pr, column))
            .where(pr.task_id == Task.id, pr.unit_id == Task.lead_unit_id, pr.submitted_at <= at)
            .order_by(pr.submitted_at.desc(), pr.id.desc())
            .limit(1)
            .correlate_except(pr)
            .scalar_subquery()
        )

    @classmethod
    def latest_lead_column(cls, column: str, at: datetime | ColumnElement[datetime]) -> Any:
        """The public name of _latest_lead (the report data's lighter completion query)."""
        return cls._latest_lead(column, at)

    @classmethod
    def completed(cls, at: datetime | ColumnElement[datetime]) -> ColumnElement[bool]:
        """Whether the task (Task, correlated) is completed at `at` (a moment, or a column that
        holds it), inside another query: the same definition as lead_progress (its lead unit's
        latest report says done), one seek per task, so that planning over many tasks needs no
        round trip for it."""
        return func.coalesce(cls._latest_lead("status", at), "") == "done"

    async def _lead_progress(self, at: datetime, which: Any) -> dict[int, LeadProgress]:
        latest_id = self._latest_lead("id", at)
        base = select(Task.id.label("task_id"), latest_id.label("report_id")).where(which).subquery()
        r = ProgressReport.__table__.c  # Core columns: no ORM row processing per task
        rows = await self.session.execute(
            select(
                base.c.task_id,
                r.status,
                r.percent,
                r.status_since,
                r.submitted_at,
                r.period,
                r.results,
                r.difficulties,
                r.proposals,
                r.indicator_value,
                r.unchanged,
            ).join(ProgressReport.__table__, r.id == base.c.report_id)
        )
        return {
            row[0]: LeadProgress(
                task_id=row[0],
                status=row[1],
                percent=row[2],
                completed_at=row[3] if row[1] == "done" else None,
                submitted_at=row[4],
                period=row[5],
                results=row[6] or "",
                difficulties=row[7] or "",
                proposals=row[8] or "",
                indicator_value=row[9],
                unchanged=bool(row[10]),
            )
            for row in rows
        }

    async def everything(self) -> list[ProgressReport]:
        """Every report (latest revision's fields), for the export."""
        rows = await self.session.scalars(
            select(ProgressReport).order_by(ProgressReport.submitted_at, ProgressReport.id)
        )
        return list(rows)
