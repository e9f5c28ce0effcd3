"""The queries behind the consolidated report, each for one period and set-based.

A task's status comes from its lead unit's reports up to a moment, read by
ReportRepository.lead_progress for the task_ids() query below: one seek per task that walks back
from that moment and stops at the first match, so the cost depends on the number of tasks, not
on how many periods of history lie behind (see bench/report_scale.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, and_, distinct, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    AuditEntry,
    ProgressReport,
    Task,
    TaskGroup,
    TaskUnit,
    Unit,
)
from storage.repositories.reports import ReportRepository


@dataclass(frozen=True)
class TaskRecord:
    id: int
    code: str
    title: str
    group_id: int
    lead_unit_id: int
    deadline: date | None
    expected_output: str
    target_value: float | None
    target_unit: str | None
    target_label: str | None
    position: int


@dataclass(frozen=True)
class UnitRecord:
    id: int
    code: str
    name: str


@dataclass(frozen=True)
class GroupRecord:
    id: int
    code: str
    title: str
    position: int


@dataclass(frozen=True)
class ClosedTask:
    code: str
    title: str
    lead_unit_id: int
    closed_at: datetime
    reason: str


@dataclass(frozen=True)
class TaskAudit:
    at: datetime
    action: str
    code: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class ReportDataRepository:
    """The report's queries over one programme's tasks (or, with programme_id None, all)."""

    def __init__(self, session: AsyncSession, programme_id: int | None = None) -> None:
        self.session = session
        self.programme_id = programme_id

    def _scope(self, query: Select[Any], unit_id: int | None) -> Select[Any]:
        if self.programme_id is not None:
            query = query.where(Task.programme_id == self.programme_id)
        if unit_id is None:
            return query
        coordinated = select(TaskUnit.task_id).where(TaskUnit.unit_id == unit_id)
        return query.where(or_(Task.lead_unit_id == unit_id, Task.id.in_(coordinated)))

    @staticmethod
    def _open_at(moment: datetime) -> Any:
        return or_(Task.closed_at.is_(None), Task.closed_at > moment)

    async def tasks(self, at: datetime, unit_id: int | None = None) -> list[TaskRecord]:
        """Tasks not closed at the moment (optionally only those the unit leads or coordinates)."""
        t = Task.__table__.c  # Core columns: no ORM row processing for ten thousand rows
        query = self._scope(
            select(
                t.id,
                t.code,
                t.title,
                t.group_id,
                t.lead_unit_id,
                t.deadline,
                t.expected_output,
                t.target_value,
                t.target_unit,
                t.target_label,
                t.position,
            ).where(self._open_at(at)),
            unit_id,
        ).order_by(t.position, t.id)
        return [TaskRecord(*row) for row in await self.session.execute(query)]

    async def coordinating(self, at: datetime, unit_id: int | None = None) -> list[tuple[int, int]]:
        """(task id, coordinating unit id) for the same tasks, in their listed order."""
        tu = TaskUnit.__table__.c  # Core columns, as in tasks()
        query = self._scope(
            select(tu.task_id, tu.unit_id).join(Task, Task.id == tu.task_id).where(self._open_at(at)),
            unit_id,
        ).order_by(tu.task_id, tu.position)
        return [(row[0], row[1]) for row in await self.session.execute(query)]

    def task_ids(self, at: datetime, unit_id: int | None = None) -> Select[Any]:
        """The query selecting the ids of the same tasks as tasks() (for
        ReportRepository.lead_progress, which gives each one's lead-unit state)."""
        return self._scope(select(Task.id).where(self._open_at(at)), unit_id)

    async def completed_at(self, at: datetime, unit_id: int | None = None) -> dict[int, datetime]:
        """When each task (of those tasks() gives) was completed, as of the moment: the same
        definition as ReportRepository.lead_progress (its lead unit's latest report says done;
        since that report's status_since), reading only that, for the previous cut-off's
        statuses, where the report texts are not needed."""
        latest_id = ReportRepository.latest_lead_column("id", at)
        base = select(Task.id.label("task_id"), latest_id.label("report_id")).where(
            Task.id.in_(self.task_ids(at, unit_id))
        )
        pr = ProgressReport.__table__.c
        sub = base.subquery()
        query = select(sub.c.task_id, pr.status_since).join(
            ProgressReport.__table__, and_(pr.id == sub.c.report_id, pr.status == "done")
        )
        return {row[0]: row[1] for row in await self.session.execute(query)}

    async def units_reporting(self, period: str, unit_id: int | None = None) -> set[int]:
        """The units that sent at least one report in the period (on tasks in scope)."""
        query = select(distinct(ProgressReport.unit_id)).where(ProgressReport.period == period)
        if self.programme_id is not None:
            query = query.where(
                ProgressReport.task_id.in_(select(Task.id).where(Task.programme_id == self.programme_id))
            )
        if unit_id is not None:
            query = query.where(ProgressReport.unit_id == unit_id)
        return set(await self.session.scalars(query))

    async def units(self, ids: Sequence[int]) -> dict[int, UnitRecord]:
        found: dict[int, UnitRecord] = {}
        ids = sorted(set(ids))
        for start in range(0, len(ids), 500):
            rows = await self.session.execute(
                select(Unit.id, Unit.code, Unit.name).where(Unit.id.in_(ids[start : start + 500]))
            )
            found.update((row[0], UnitRecord(*row)) for row in rows)
        return found

    async def unit_by_code(self, code: str) -> UnitRecord | None:
        row = (
            await self.session.execute(select(Unit.id, Unit.code, Unit.name).where(Unit.code == code))
        ).first()
        return UnitRecord(*row) if row else None

    async def groups(self) -> list[GroupRecord]:
        query = select(TaskGroup.id, TaskGroup.code, TaskGroup.title, TaskGroup.position)
        if self.programme_id is not None:
            query = query.where(TaskGroup.programme_id == self.programme_id)
        rows = await self.session.execute(query.order_by(TaskGroup.position, TaskGroup.id))
        return [GroupRecord(*row) for row in rows]

    async def created_between(
        self, start: datetime, end: datetime, unit_id: int | None = None
    ) -> list[tuple[str, str]]:
        query = self._scope(
            select(Task.code, Task.title).where(Task.created_at > start, Task.created_at <= end), unit_id
        ).order_by(Task.position, Task.id)
        return [(row[0], row[1]) for row in await self.session.execute(query)]

    async def closed_between(
        self, start: datetime, end: datetime, unit_id: int | None = None
    ) -> list[ClosedTask]:
        query = self._scope(
            select(Task.code, Task.title, Task.lead_unit_id, Task.closed_at, Task.close_reason).where(
                Task.closed_at > start, Task.closed_at <= end
            ),
            unit_id,
        ).order_by(Task.position, Task.id)
        return [ClosedTask(r[0], r[1], r[2], r[3], r[4] or "") for r in await self.session.execute(query)]

    async def task_audit(self, start: datetime, end: datetime) -> list[TaskAudit]:
        """Audited changes to tasks in the span (imports, admin edits), oldest first."""
        rows = await self.session.execute(
            select(
                AuditEntry.at, AuditEntry.action, AuditEntry.entity_id, AuditEntry.before, AuditEntry.after
            )
            .where(AuditEntry.entity == "task", AuditEntry.at > start, AuditEntry.at <= end)
            .order_by(AuditEntry.at, AuditEntry.id)
        )
        return [TaskAudit(*row) for row in rows]
