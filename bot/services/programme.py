"""The programme: what a plan file would change, and importing it in one transaction."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.plan_worker import parse_plan_isolated
from bot.services.plans import DEFAULT_LIMITS, Plan, PlanError, PlanLimits, TaskRow
from storage.db import Database
from storage.models import Task, TaskGroup, TaskUnit, Unit
from storage.repositories.audit import AuditRepository
from storage.repositories.tasks import TaskRepository
from storage.repositories.units import UnitRepository

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Change:
    kind: str  # unit, group, task
    code: str
    action: str  # new, changed, unchanged
    fields: tuple[tuple[str, Any, Any], ...] = ()


@dataclass
class ImportResult:
    changes: list[Change] = field(default_factory=list)
    errors: list[PlanError] = field(default_factory=list)
    applied: bool = False

    def count(self, kind: str, action: str) -> int:
        return sum(1 for c in self.changes if c.kind == kind and c.action == action)

    @property
    def touched(self) -> int:
        return sum(1 for c in self.changes if c.action != "unchanged")


def _task_fields(task: Task) -> dict[str, Any]:
    return {
        "group": task.group.code,
        "title": task.title,
        "description": task.description,
        "legal_source": task.legal_source,
        "lead_unit": task.lead_unit.code,
        "coordinating_units": tuple(tu.unit.code for tu in task.coordinating),
        "deadline": task.deadline,
        "expected_output": task.expected_output,
        "target_value": task.target_value,
        "target_unit": task.target_unit,
        "target_label": task.target_label,
    }


def _row_fields(row: TaskRow) -> dict[str, Any]:
    return {
        "group": row.group,
        "title": row.title,
        "description": row.description,
        "legal_source": row.legal_source,
        "lead_unit": row.lead,
        "coordinating_units": row.coordinating,
        "deadline": row.deadline,
        "expected_output": row.expected_output,
        "target_value": row.target_value,
        "target_unit": row.target_unit,
        "target_label": row.target_label,
    }


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (v.isoformat() if isinstance(v, date) else list(v) if isinstance(v, tuple) else v)
        for k, v in values.items()
    }


def _diff(old: dict[str, Any], new: dict[str, Any]) -> tuple[tuple[str, Any, Any], ...]:
    return tuple((k, old[k], new[k]) for k in new if old.get(k) != new[k])


class ProgrammeService:
    def __init__(self, db: Database, limits: PlanLimits = DEFAULT_LIMITS) -> None:
        self.db = db
        self.limits = limits

    async def read_plan(self, data: bytes, filename: str) -> Plan:
        """Parse a plan file, knowing which units and groups the database already has."""
        async with self.db.reader() as session:
            units = {u.code for u in await UnitRepository(session).all(active_only=False)}
            groups = {g.code for g in await TaskRepository(session).groups()}
        # In a bounded worker process: a hostile file costs neither memory nor the event loop.
        return await parse_plan_isolated(
            data, filename, known_units=units, known_groups=groups, limits=self.limits
        )

    async def preview(self, plan: Plan) -> ImportResult:
        """What importing the plan would change; writes nothing."""
        if not plan.ok:
            return ImportResult(errors=list(plan.errors))
        async with self.db.reader() as session:
            return await self._changes(session, plan)

    async def apply(
        self,
        plan: Plan,
        *,
        actor: str = "cli",
        actor_telegram_id: int | None = None,
        progress: Progress | None = None,
    ) -> ImportResult:
        """Import the plan in one transaction: all of it, or (with any error) nothing."""
        if not plan.ok:
            return ImportResult(errors=list(plan.errors))
        async with self.db.transaction() as session:
            result = await self._changes(session, plan)
            await self._write(session, plan, result, actor, actor_telegram_id, progress)
            result.applied = True
        return result

    async def _changes(self, session: AsyncSession, plan: Plan) -> ImportResult:
        result = ImportResult()
        units = await UnitRepository(session).by_codes(u.code for u in plan.units)
        for row in plan.units:
            unit = units.get(row.code)
            new = {"name": row.name, "parent": row.parent}
            if unit is None:
                result.changes.append(Change("unit", row.code, "new"))
                continue
            old = {"name": unit.name, "parent": unit.parent.code if unit.parent else None}
            fields = _diff(old, new)
            result.changes.append(Change("unit", row.code, "changed" if fields else "unchanged", fields))
        tasks_repo = TaskRepository(session)
        groups = await tasks_repo.groups_by_codes(g.code for g in plan.groups)
        for group_row in plan.groups:
            group = groups.get(group_row.code)
            if group is None:
                result.changes.append(Change("group", group_row.code, "new"))
            elif group.title != group_row.title:
                result.changes.append(
                    Change("group", group_row.code, "changed", (("title", group.title, group_row.title),))
                )
            else:
                result.changes.append(Change("group", group_row.code, "unchanged"))
        tasks = await tasks_repo.by_codes(t.code for t in plan.tasks)
        for task_row in plan.tasks:
            task = tasks.get(task_row.code)
            if task is None:
                result.changes.append(Change("task", task_row.code, "new"))
                continue
            fields = _diff(_task_fields(task), _row_fields(task_row))
            result.changes.append(Change("task", task_row.code, "changed" if fields else "unchanged", fields))
        return result

    async def _write(
        self,
        session: AsyncSession,
        plan: Plan,
        result: ImportResult,
        actor: str,
        actor_telegram_id: int | None,
        progress: Progress | None,
    ) -> None:
        audit = AuditRepository(session)
        unit_repo = UnitRepository(session)
        task_repo = TaskRepository(session)
        referenced = {u.code for u in plan.units} | {u.parent for u in plan.units if u.parent}
        for row in plan.tasks:
            referenced.add(row.lead)
            referenced.update(row.coordinating)
        units = await unit_repo.by_codes(referenced)
        for unit_row in plan.units:
            unit = units.get(unit_row.code)
            if unit is None:
                unit = Unit(code=unit_row.code, name=unit_row.name)
                session.add(unit)
                units[unit.code] = unit
            unit.name = unit_row.name
        await session.flush()
        for unit_row in plan.units:
            units[unit_row.code].parent_id = units[unit_row.parent].id if unit_row.parent else None

        groups = await task_repo.groups_by_codes(
            {g.code for g in plan.groups} | {t.group for t in plan.tasks}
        )
        for group_row in plan.groups:
            group = groups.get(group_row.code)
            if group is None:
                group = TaskGroup(code=group_row.code, title=group_row.title, position=group_row.position)
                session.add(group)
                groups[group.code] = group
            group.title = group_row.title
        await session.flush()

        tasks = await task_repo.by_codes(t.code for t in plan.tasks)
        changes = {(c.kind, c.code): c for c in result.changes}
        total = len(plan.tasks)
        for done, row in enumerate(plan.tasks, start=1):
            change = changes[("task", row.code)]
            if change.action == "unchanged":
                if progress and (done % 100 == 0 or done == total):
                    progress(done, total)
                continue
            task = tasks.get(row.code)
            before = _jsonable(_task_fields(task)) if task else None
            if task is None:
                task = Task(code=row.code, coordinating=[], deadline_version=1)
                session.add(task)
            elif task.deadline != row.deadline:
                task.deadline_version += 1
            task.group = groups[row.group]
            task.title = row.title
            task.description = row.description
            task.legal_source = row.legal_source
            task.lead_unit = units[row.lead]
            task.deadline = row.deadline
            task.expected_output = row.expected_output
            task.target_value = row.target_value
            task.target_unit = row.target_unit
            task.target_label = row.target_label
            task.position = row.position
            # Keep the rows of units that stay: a delete and re-insert of the same pair in one
            # flush would trip the (task, unit) unique constraint.
            kept = {tu.unit.code: tu for tu in task.coordinating}
            coordinating = []
            for i, code in enumerate(row.coordinating):
                task_unit = kept.get(code) or TaskUnit(unit=units[code])
                task_unit.position = i
                coordinating.append(task_unit)
            task.coordinating = coordinating
            audit.record(
                "task.import." + change.action,
                actor=actor,
                actor_telegram_id=actor_telegram_id,
                entity="task",
                entity_id=row.code,
                before=before,
                after=_jsonable(_row_fields(row)),
            )
            if progress and (done % 100 == 0 or done == total):
                progress(done, total)
        audit.record(
            "plan.import",
            actor=actor,
            actor_telegram_id=actor_telegram_id,
            entity="plan",
            detail=(
                f"units new {result.count('unit', 'new')}, "
                f"groups new {result.count('group', 'new')}, "
                f"tasks new {result.count('task', 'new')}, "
                f"changed {result.count('task', 'changed')}, "
                f"unchanged {result.count('task', 'unchanged')}"
            ),
        )
