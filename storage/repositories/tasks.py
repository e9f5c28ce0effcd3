"""Task groups and tasks, with their coordinating units."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Select, bindparam, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload

from storage.models import ProgressReport, Task, TaskGroup, TaskUnit, table_of
from storage.statements import StatementRunner


class TaskRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def groups_by_codes(self, codes: Iterable[str]) -> dict[str, TaskGroup]:
        codes = list(set(codes))
        if not codes:
            return {}
        rows = await self.session.scalars(select(TaskGroup).where(TaskGroup.code.in_(codes)))
        return {group.code: group for group in rows}

    async def groups(self) -> list[TaskGroup]:
        return list(await self.session.scalars(select(TaskGroup).order_by(TaskGroup.position)))

    async def by_codes(self, codes: Iterable[str]) -> dict[str, Task]:
        codes = list(set(codes))
        if not codes:
            return {}
        found: dict[str, Task] = {}
        # Chunked: SQLite caps the number of bound parameters.
        for start in range(0, len(codes), 500):
            rows = await self.session.scalars(
                select(Task)
                .where(Task.code.in_(codes[start : start + 500]))
                .options(
                    selectinload(Task.coordinating).selectinload(TaskUnit.unit),
                    selectinload(Task.lead_unit),
                    selectinload(Task.group),
                )
            )
            found.update((task.code, task) for task in rows)
        return found

    async def by_code(self, code: str) -> Task | None:
        return (await self.by_codes([code])).get(code)

    async def all_open(self) -> list[Task]:
        rows = await self.session.scalars(
            select(Task)
            .where(Task.closed_at.is_(None))
            .options(
                selectinload(Task.coordinating).selectinload(TaskUnit.unit),
                selectinload(Task.lead_unit),
                selectinload(Task.group),
            )
            .order_by(Task.position, Task.id)
        )
        return list(rows)

    async def for_units(self, unit_ids: Iterable[int]) -> list[Task]:
        """Open tasks that any of these units leads or coordinates."""
        unit_ids = list(unit_ids)
        if not unit_ids:
            return []
        coordinated = select(TaskUnit.task_id).where(TaskUnit.unit_id.in_(unit_ids))
        rows = await self.session.scalars(
            select(Task)
            .where(Task.closed_at.is_(None), or_(Task.lead_unit_id.in_(unit_ids), Task.id.in_(coordinated)))
            .options(
                selectinload(Task.coordinating).selectinload(TaskUnit.unit),
                selectinload(Task.lead_unit),
                selectinload(Task.group),
            )
            .order_by(Task.position, Task.id)
        )
        return list(rows)

    async def open_id_by_code(self, code: str) -> int | None:
        return await self.session.scalar(select(Task.id).where(Task.code == code, Task.closed_at.is_(None)))

    async def views_for_units(
        self, unit_ids: Iterable[int], task_ids: Iterable[int] | None = None
    ) -> list[Task]:
        """Like for_units, loading only what a task list shows (lead unit, coordinating unit
        ids): this runs on every /report and /tasks."""
        unit_ids = list(unit_ids)
        if not unit_ids:
            return []
        coordinated = select(TaskUnit.task_id).where(TaskUnit.unit_id.in_(unit_ids))
        query = select(Task).where(
            Task.closed_at.is_(None), or_(Task.lead_unit_id.in_(unit_ids), Task.id.in_(coordinated))
        )
        if task_ids is not None:
            query = query.where(Task.id.in_(list(task_ids)))
        rows = await self.session.scalars(
            query.options(joinedload(Task.lead_unit), selectinload(Task.coordinating)).order_by(
                Task.position, Task.id
            )
        )
        return list(rows)

    async def counts(self) -> tuple[int, int]:
        """(groups, tasks) in the database."""
        groups = await self.session.scalar(select(func.count()).select_from(TaskGroup))
        tasks = await self.session.scalar(select(func.count()).select_from(Task))
        return int(groups or 0), int(tasks or 0)

    async def all(self) -> list[Task]:
        """Every task, closed ones included, in programme order."""
        rows = await self.session.scalars(
            select(Task)
            .options(
                selectinload(Task.coordinating).selectinload(TaskUnit.unit),
                selectinload(Task.lead_unit),
                selectinload(Task.group),
            )
            .order_by(Task.position, Task.id)
        )
        return list(rows)

    async def max_position(self) -> int:
        return int(await self.session.scalar(select(func.max(Task.position))) or 0)


_TASKS = table_of(Task)
_TASK_UNITS = table_of(TaskUnit)


def _report_task(by: str) -> Select[Any]:
    tasks = _TASKS
    return select(
        tasks.c.id,
        tasks.c.code,
        tasks.c.title,
        tasks.c.lead_unit_id,
        tasks.c.target_value,
        tasks.c.target_unit,
        tasks.c.target_label,
    ).where(tasks.c.closed_at.is_(None), tasks.c[by] == bindparam("value"))


_REPORT_TASK = {"id": _report_task("id"), "code": _report_task("code")}
_COORDINATING = (
    select(_TASK_UNITS.c.unit_id)
    .where(_TASK_UNITS.c.task_id == bindparam("task_id"))
    .order_by(_TASK_UNITS.c.position, _TASK_UNITS.c.id)
)


def report_task(
    runner: StatementRunner, task_id: int | None = None, code: str | None = None
) -> tuple[Any, list[int]] | None:
    """The open task's row (id, code, title, lead_unit_id, target_value, target_unit,
    target_label) by id or code, and its coordinating unit ids in order: plain rows, for the
    step that starts every report."""
    by, value = ("id", task_id) if task_id is not None else ("code", code)
    rows = runner.rows(_REPORT_TASK[by], {"value": value})
    if not rows:
        return None
    units = runner.rows(_COORDINATING, {"task_id": rows[0].id})
    return rows[0], [int(u) for (u,) in units]


def _next_unreported() -> Select[Any]:
    """The unit's open task (lead or coordinating) not completed (its lead unit's latest report
    does not say done) and not reported by the unit in the period, earliest deadline first."""
    tasks, units = _TASKS, _TASK_UNITS
    reported, latest = table_of(ProgressReport).alias("reported"), table_of(ProgressReport).alias("latest")
    unit: Any = bindparam("unit")
    lead_status = (
        select(latest.c.status)
        .where(latest.c.task_id == tasks.c.id, latest.c.unit_id == tasks.c.lead_unit_id)
        .order_by(latest.c.submitted_at.desc(), latest.c.id.desc())
        .limit(1)
        .correlate(tasks)
        .scalar_subquery()
    )
    return (
        select(tasks.c.id, tasks.c.code)
        .where(
            tasks.c.closed_at.is_(None),
            tasks.c.id != bindparam("after"),
            or_(
                tasks.c.lead_unit_id == unit,
                exists().where(units.c.task_id == tasks.c.id, units.c.unit_id == unit),
            ),
            ~exists().where(
                reported.c.task_id == tasks.c.id,
                reported.c.unit_id == unit,
                reported.c.period == bindparam("period"),
            ),
            func.coalesce(lead_status, "") != "done",
        )
        .order_by(tasks.c.deadline.is_(None), tasks.c.deadline, tasks.c.position, tasks.c.id)
        .limit(1)
    )


_NEXT_UNREPORTED = _next_unreported()


def next_unreported(runner: StatementRunner, unit_id: int, period: str, after: int) -> tuple[int, str] | None:
    """(id, code) of the unit's next task to report in the period (see _next_unreported)."""
    rows = runner.rows(_NEXT_UNREPORTED, {"unit": unit_id, "period": period, "after": after})
    return (int(rows[0][0]), str(rows[0][1])) if rows else None
