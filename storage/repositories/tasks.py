"""Task groups and tasks, with their coordinating units."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import BindParameter, Integer, Select, bindparam, exists, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload

from storage.models import Programme, ProgressReport, Task, TaskGroup, TaskUnit, table_of
from storage.statements import StatementRunner


class TaskRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def groups_by_codes(
        self, codes: Iterable[str], programme_id: int | None = None
    ) -> dict[str, TaskGroup]:
        """The programme's groups with these codes (any programme's with programme_id None)."""
        codes = list(set(codes))
        if not codes:
            return {}
        query = select(TaskGroup).where(TaskGroup.code.in_(codes))
        if programme_id is not None:
            query = query.where(TaskGroup.programme_id == programme_id)
        rows = await self.session.scalars(query)
        return {group.code: group for group in rows}

    async def groups(self, programme_id: int | None = None) -> list[TaskGroup]:
        query = select(TaskGroup).order_by(TaskGroup.programme_id, TaskGroup.position)
        if programme_id is not None:
            query = query.where(TaskGroup.programme_id == programme_id)
        return list(await self.session.scalars(query))

    async def current_programme_id(self) -> int | None:
        """The programme new tasks go into: the active one issued last."""
        return await self.session.scalar(
            select(Programme.id)
            .where(Programme.state == "active")
            .order_by(Programme.decision_date.desc().nulls_last(), Programme.id.desc())
            .limit(1)
        )

    async def group_codes_by_programme(self) -> dict[int, set[str]]:
        found: dict[int, set[str]] = {}
        for programme_id, code in await self.session.execute(select(TaskGroup.programme_id, TaskGroup.code)):
            found.setdefault(programme_id, set()).add(code)
        return found

    async def by_codes(self, codes: Iterable[str], programme_id: int | None = None) -> dict[str, Task]:
        """The programme's tasks with these codes (any programme's with programme_id None)."""
        codes = list(set(codes))
        if not codes:
            return {}
        found: dict[str, Task] = {}
        in_programme = Task.programme_id == programme_id if programme_id is not None else true()
        # Chunked: SQLite caps the number of bound parameters.
        for start in range(0, len(codes), 500):
            rows = await self.session.scalars(
                select(Task)
                .where(Task.code.in_(codes[start : start + 500]), in_programme)
                .options(
                    selectinload(Task.coordinating).selectinload(TaskUnit.unit),
                    selectinload(Task.lead_unit),
                    selectinload(Task.group),
                )
            )
            found.update((task.code, task) for task in rows)
        return found

    async def by_id(self, task_id: int) -> Task | None:
        rows = await self.session.scalars(
            select(Task)
            .where(Task.id == task_id)
            .options(
                selectinload(Task.coordinating).selectinload(TaskUnit.unit),
                selectinload(Task.lead_unit),
                selectinload(Task.group),
                selectinload(Task.programme),
            )
        )
        return rows.first()

    async def by_code(self, code: str) -> Task | None:
        """A task by the code a person typed: "1.1" when one programme has it (an active
        programme's first), or "2025:1.1" with the programme's short code; None otherwise."""
        ids = await self.session.scalars(_by_typed_code(code).limit(2))
        found = list(ids)
        return await self.by_id(found[0]) if len(found) == 1 else None

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

    async def for_units(self, unit_ids: Iterable[int], *, include_closed: bool = False) -> list[Task]:
        """Open tasks (or all) that any of these units leads or coordinates."""
        unit_ids = list(unit_ids)
        if not unit_ids:
            return []
        coordinated = select(TaskUnit.task_id).where(TaskUnit.unit_id.in_(unit_ids))
        query = select(Task).where(or_(Task.lead_unit_id.in_(unit_ids), Task.id.in_(coordinated)))
        if not include_closed:
            query = query.where(Task.closed_at.is_(None))
        rows = await self.session.scalars(
            query.options(
                selectinload(Task.coordinating).selectinload(TaskUnit.unit),
                selectinload(Task.lead_unit),
                selectinload(Task.group),
                selectinload(Task.programme),
            ).order_by(Task.position, Task.id)
        )
        return list(rows)

    async def open_id_by_code(self, code: str) -> int | None:
        found = list(
            await self.session.scalars(_by_typed_code(code).where(Task.closed_at.is_(None)).limit(2))
        )
        return found[0] if len(found) == 1 else None

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


def split_code(typed: str) -> tuple[str | None, str]:
    """ "2025:1.1" -> ("2025", "1.1"); "1.1" -> (None, "1.1")."""
    short, sep, code = typed.strip().rpartition(":")
    return (short.strip() or None, code.strip()) if sep else (None, typed.strip())


def _by_typed_code(typed: str) -> Select[Any]:
    """Task ids for a typed code. A bare code matching tasks of several programmes counts
    those of active programmes only (a closed programme's codes come back next year)."""
    short, code = split_code(typed)
    query = select(Task.id).join(Programme, Programme.id == Task.programme_id).where(Task.code == code)
    if short is not None:
        return query.where(Programme.short_code == short)
    in_active = (
        select(func.count())
        .select_from(Task)
        .join(Programme, Programme.id == Task.programme_id)
        .where(Task.code == code, Programme.state == "active")
        .scalar_subquery()
    )
    return query.where(or_(Programme.state == "active", in_active == 0))


_TASKS = table_of(Task)
_TASK_UNITS = table_of(TaskUnit)


_PROGRAMMES = table_of(Programme)


def _report_task(by: str) -> Select[Any]:
    tasks = _TASKS
    short_code = select(_PROGRAMMES.c.short_code).where(_PROGRAMMES.c.id == tasks.c.programme_id)
    return (
        select(
            tasks.c.id,
            tasks.c.code,
            tasks.c.title,
            tasks.c.lead_unit_id,
            tasks.c.target_value,
            tasks.c.target_unit,
            tasks.c.target_label,
            short_code.scalar_subquery().label("short_code"),
        )
        .where(tasks.c.closed_at.is_(None), tasks.c[by] == bindparam("value"))
        .order_by(tasks.c.id)
        .limit(10)
    )


_REPORT_TASK = {
    "id": _report_task("id"),
    "code": _report_task("code"),
    # "2025:1.1": the code inside the programme of that short code.
    "short": _report_task("code").where(
        _TASKS.c.programme_id
        == select(_PROGRAMMES.c.id).where(_PROGRAMMES.c.short_code == bindparam("short")).scalar_subquery()
    ),
}
_COORDINATING = (
    select(_TASK_UNITS.c.unit_id)
    .where(_TASK_UNITS.c.task_id == bindparam("task_id"))
    .order_by(_TASK_UNITS.c.position, _TASK_UNITS.c.id)
)


def report_tasks(
    runner: StatementRunner, task_id: int | None = None, code: str | None = None
) -> list[tuple[Any, list[int]]]:
    """The open tasks' rows (id, code, title, lead_unit_id, target_value, target_unit,
    target_label, short_code) by id or code, each with its coordinating unit ids in order:
    plain rows, for the step that starts every report. A bare code that several active
    programmes share gives each of their tasks (the caller picks the person's own)."""
    if task_id is not None:
        rows = runner.rows(_REPORT_TASK["id"], {"value": task_id})
    else:
        short, bare = split_code(code or "")
        if short is None:
            rows = runner.rows(_REPORT_TASK["code"], {"value": bare})
        else:
            rows = runner.rows(_REPORT_TASK["short"], {"value": bare, "short": short})
    return [(row, [int(u) for (u,) in runner.rows(_COORDINATING, {"task_id": row.id})]) for row in rows]


def _next_unreported() -> Select[Any]:
    """The unit's open task (lead or coordinating) not completed (its lead unit's latest report
    does not say done) and not reported by the unit in the period, earliest deadline first."""
    tasks, units = _TASKS, _TASK_UNITS
    reported, latest = table_of(ProgressReport).alias("reported"), table_of(ProgressReport).alias("latest")
    unit: BindParameter[int] = bindparam("unit", type_=Integer)
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
