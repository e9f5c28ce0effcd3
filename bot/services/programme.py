"""Programmes: what a plan file would change inside its programme, importing it in one
transaction, and the programmes themselves (list, rename, close).

A plan file names its programme (YAML block `programme:`, XLSX sheet `programme`, or
`--programme CODE` for a CSV file); groups and tasks are matched by code inside that programme
only, so next year's programme can number its tasks 1.1, 2.1 … again without touching last
year's. Units are shared by every programme.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from typing import Any, cast

from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.config import WEEKDAYS, Config
from bot.services.periods import PeriodRule, period_rule
from bot.services.plan_worker import parse_plan_isolated
from bot.services.plans import (
    DEFAULT_LIMITS,
    PROGRAMME_CODE,
    GroupRow,
    Plan,
    PlanError,
    PlanLimits,
    ProgrammeRow,
    TaskRow,
    UnitRow,
)
from bot.services.status import STATUS_ORDER, StatusClass, classify_status, completion_rate, count_classes
from storage.db import Database
from storage.models import Programme, Task, TaskGroup, TaskUnit, Unit
from storage.repositories.audit import AuditRepository
from storage.repositories.programmes import ProgrammeRepository
from storage.repositories.reports import ReportRepository
from storage.repositories.tasks import TaskRepository
from storage.repositories.units import UnitRepository

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Change:
    kind: str  # programme, unit, group, task
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


_PROGRAMME_FIELDS = (
    "short_code",
    "title",
    "decision",
    "decision_date",
    "issuer",
    "starts_on",
    "ends_on",
    "period",
    "cutoff",
)


def _programme_fields(source: Programme | ProgrammeRow) -> dict[str, Any]:
    return {name: getattr(source, name) for name in _PROGRAMME_FIELDS}


def _diff(old: dict[str, Any], new: dict[str, Any]) -> tuple[tuple[str, Any, Any], ...]:
    return tuple((k, old[k], new[k]) for k in new if old.get(k) != new[k])


@dataclass
class _Write:
    """What one import writes, passed between its steps."""

    session: AsyncSession
    plan: Plan
    result: ImportResult
    actor: str
    actor_telegram_id: int | None
    progress: Progress | None
    programme: Programme | None = None
    units: dict[str, Unit] = field(default_factory=dict)
    groups: dict[str, TaskGroup] = field(default_factory=dict)

    def audit(self, action: str, **kwargs: Any) -> None:
        AuditRepository(self.session).record(
            action, actor=self.actor, actor_telegram_id=self.actor_telegram_id, **kwargs
        )

    def report_progress(self, done: int, total: int) -> None:
        if self.progress and (done % 100 == 0 or done == total):
            self.progress(done, total)


def _resolve_programme(
    plan: Plan, override: str | None, existing: dict[str, Programme], shorts: dict[str, str]
) -> None:
    """Settle which programme the plan goes into; every problem becomes a plan error."""
    block = plan.programme
    if override and block is not None and block.code != override:
        plan.errors.append(
            PlanError(block.where, "plan.programme_mismatch", {"code": block.code, "given": override})
        )
        return
    if block is None and override:
        block = plan.programme = ProgrammeRow(code=override)
    if block is None:
        plan.errors.append(PlanError(("file", 0), "plan.no_programme", {}))
        return
    known = existing.get(block.code)
    if known is None and not block.described:
        plan.errors.append(PlanError(block.where, "plan.unknown_programme", {"code": block.code}))
    elif known is not None and known.state == "closed":
        plan.errors.append(PlanError(block.where, "plan.programme_closed", {"code": block.code}))
    elif block.short_code and shorts.get(block.short_code, block.code) != block.code:
        plan.errors.append(
            PlanError(
                block.where,
                "plan.short_code_taken",
                {"code": block.short_code, "programme": shorts[block.short_code]},
            )
        )


def _check_groups(plan: Plan, known: set[str]) -> None:
    """Tasks may name a group of their programme that the file does not list."""
    listed = {g.code for g in plan.groups} | known
    for row in plan.tasks:
        if row.group not in listed:
            plan.errors.append(PlanError(row.where, "plan.unknown_group", {"code": row.group}))
    plan.errors.sort(key=lambda e: (e.where[1], e.key))


class ProgrammeService:
    def __init__(self, db: Database, limits: PlanLimits = DEFAULT_LIMITS) -> None:
        self.db = db
        self.limits = limits

    async def read_plan(self, data: bytes, filename: str, programme: str | None = None) -> Plan:
        """Parse a plan file and settle its programme: the file's own (`programme:` block or
        sheet) or `programme`, the code of an existing one. Units are shared; groups are
        those of the programme."""
        async with self.db.reader() as session:
            units = {u.code for u in await UnitRepository(session).all(active_only=False)}
            existing = {p.code: p for p in await ProgrammeRepository(session).all()}
            groups = await TaskRepository(session).group_codes_by_programme()
        every_group = set().union(*groups.values()) if groups else set()
        # In a bounded worker process: a hostile file costs neither memory nor the event loop.
        plan = await parse_plan_isolated(
            data, filename, known_units=units, known_groups=every_group, limits=self.limits
        )
        if plan.errors and not (plan.tasks or plan.units or plan.groups):
            return plan
        shorts = {p.short_code: p.code for p in existing.values()}
        _resolve_programme(plan, programme, existing, shorts)
        plan.errors.sort(key=lambda e: (e.where[1], e.key))
        if plan.ok and plan.programme is not None:
            target = existing.get(plan.programme.code)
            _check_groups(plan, groups.get(target.id, set()) if target else set())
        return plan

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
            await self._write(_Write(session, plan, result, actor, actor_telegram_id, progress))
            result.applied = True
        return result

    # --- what would change ---------------------------------------------------------------------

    async def _changes(self, session: AsyncSession, plan: Plan) -> ImportResult:
        result = ImportResult()
        assert plan.programme is not None
        programme = await ProgrammeRepository(session).by_code(plan.programme.code)
        result.changes.append(_programme_change(programme, plan.programme))
        programme_id = programme.id if programme else None
        await self._unit_changes(session, plan.units, result)
        tasks_repo = TaskRepository(session)
        groups: dict[str, TaskGroup] = {}
        tasks: dict[str, Task] = {}
        if programme_id is not None:  # a new programme has neither yet
            groups = await tasks_repo.groups_by_codes((g.code for g in plan.groups), programme_id)
            tasks = await tasks_repo.by_codes((t.code for t in plan.tasks), programme_id)
        for group_row in plan.groups:
            result.changes.append(_group_change(groups.get(group_row.code), group_row))
        for task_row in plan.tasks:
            task = tasks.get(task_row.code)
            if task is None:
                result.changes.append(Change("task", task_row.code, "new"))
                continue
            fields = _diff(_task_fields(task), _row_fields(task_row))
            result.changes.append(Change("task", task_row.code, "changed" if fields else "unchanged", fields))
        return result

    async def _unit_changes(self, session: AsyncSession, rows: list[UnitRow], result: ImportResult) -> None:
        units = await UnitRepository(session).by_codes(u.code for u in rows)
        for row in rows:
            unit = units.get(row.code)
            if unit is None:
                result.changes.append(Change("unit", row.code, "new"))
                continue
            old = {"name": unit.name, "parent": unit.parent.code if unit.parent else None}
            fields = _diff(old, {"name": row.name, "parent": row.parent})
            result.changes.append(Change("unit", row.code, "changed" if fields else "unchanged", fields))

    # --- writing -------------------------------------------------------------------------------

    async def _write(self, w: _Write) -> None:
        await self._write_programme(w)
        await self._write_units(w)
        await self._write_groups(w)
        await self._write_tasks(w)
        result = w.result
        w.audit(
            "plan.import",
            entity="programme",
            entity_id=w.plan.programme.code if w.plan.programme else "",
            detail=(
                f"units new {result.count('unit', 'new')}, "
                f"groups new {result.count('group', 'new')}, "
                f"tasks new {result.count('task', 'new')}, "
                f"changed {result.count('task', 'changed')}, "
                f"unchanged {result.count('task', 'unchanged')}"
            ),
        )

    async def _write_programme(self, w: _Write) -> None:
        row = w.plan.programme
        assert row is not None
        programme = await ProgrammeRepository(w.session).by_code(row.code)
        change = w.result.changes[0]
        if programme is None:
            programme = Programme(code=row.code, state="active")
            w.session.add(programme)
        if row.described and change.action != "unchanged":
            before = _jsonable(_programme_fields(programme)) if change.action == "changed" else None
            for name, value in _programme_fields(row).items():
                setattr(programme, name, value if value is not None or name in _NULLABLE else "")
            w.audit(
                "programme.import." + change.action,
                entity="programme",
                entity_id=row.code,
                before=before,
                after=_jsonable(_programme_fields(row)),
            )
        await w.session.flush()
        w.programme = programme

    async def _write_units(self, w: _Write) -> None:
        plan = w.plan
        referenced = {u.code for u in plan.units} | {u.parent for u in plan.units if u.parent}
        for row in plan.tasks:
            referenced.add(row.lead)
            referenced.update(row.coordinating)
        w.units = await UnitRepository(w.session).by_codes(referenced)
        for unit_row in plan.units:
            unit = w.units.get(unit_row.code)
            if unit is None:
                unit = Unit(code=unit_row.code, name=unit_row.name)
                w.session.add(unit)
                w.units[unit.code] = unit
            unit.name = unit_row.name
        await w.session.flush()
        for unit_row in plan.units:
            w.units[unit_row.code].parent_id = w.units[unit_row.parent].id if unit_row.parent else None

    async def _write_groups(self, w: _Write) -> None:
        assert w.programme is not None
        plan = w.plan
        w.groups = await TaskRepository(w.session).groups_by_codes(
            {g.code for g in plan.groups} | {t.group for t in plan.tasks}, w.programme.id
        )
        for group_row in plan.groups:
            group = w.groups.get(group_row.code)
            if group is None:
                group = TaskGroup(
                    programme_id=w.programme.id,
                    code=group_row.code,
                    title=group_row.title,
                    position=group_row.position,
                )
                w.session.add(group)
                w.groups[group.code] = group
            group.title = group_row.title
        await w.session.flush()

    async def _write_tasks(self, w: _Write) -> None:
        assert w.programme is not None
        tasks = await TaskRepository(w.session).by_codes((t.code for t in w.plan.tasks), w.programme.id)
        changes = {c.code: c for c in w.result.changes if c.kind == "task"}
        total = len(w.plan.tasks)
        for done, row in enumerate(w.plan.tasks, start=1):
            change = changes[row.code]
            if change.action != "unchanged":
                self._write_task(w, tasks.get(row.code), row, change)
            w.report_progress(done, total)

    def _write_task(self, w: _Write, task: Task | None, row: TaskRow, change: Change) -> None:
        assert w.programme is not None
        before = _jsonable(_task_fields(task)) if task else None
        if task is None:
            task = Task(programme_id=w.programme.id, code=row.code, coordinating=[], deadline_version=1)
            w.session.add(task)
        elif task.deadline != row.deadline:
            task.deadline_version += 1
        task.group = w.groups[row.group]
        task.title = row.title
        task.description = row.description
        task.legal_source = row.legal_source
        task.lead_unit = w.units[row.lead]
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
            task_unit = kept.get(code) or TaskUnit(unit=w.units[code])
            task_unit.position = i
            coordinating.append(task_unit)
        task.coordinating = coordinating
        w.audit(
            "task.import." + change.action,
            entity="task",
            entity_id=row.code,
            detail=w.programme.code,
            before=before,
            after=_jsonable(_row_fields(row)),
        )


_NULLABLE = {"decision_date", "starts_on", "ends_on", "period", "cutoff"}


def _programme_change(programme: Programme | None, row: ProgrammeRow) -> Change:
    if programme is None:
        return Change("programme", row.code, "new")
    if not row.described:
        return Change("programme", row.code, "unchanged")
    new = {k: (v if v is not None or k in _NULLABLE else "") for k, v in _programme_fields(row).items()}
    fields = _diff(_programme_fields(programme), new)
    return Change("programme", row.code, "changed" if fields else "unchanged", fields)


def _group_change(group: TaskGroup | None, row: GroupRow) -> Change:
    if group is None:
        return Change("group", row.code, "new")
    if group.title != row.title:
        return Change("group", row.code, "changed", (("title", group.title, row.title),))
    return Change("group", row.code, "unchanged")


def programme_cells(programme: Programme) -> list[Any]:
    """The programme as a row of the `programme` sheet (plans.PROGRAMME_COLUMNS), so that an
    export imports back into the same programme."""

    def day(value: date | None) -> str:
        return value.strftime("%d/%m/%Y") if value else ""

    return [
        programme.code,
        programme.short_code,
        programme.title,
        programme.decision,
        day(programme.decision_date),
        programme.issuer,
        day(programme.starts_on),
        day(programme.ends_on),
        programme.period or "",
        programme.cutoff or "",
    ]


def _plus_years(day: date | None, years: int) -> date | None:
    if day is None:
        return None
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def move_to_year(plan: Plan, year: int) -> Plan:
    """The plan with every date (decision, start, end, deadlines) moved by whole years so that
    its programme starts in `year`: to try an old example without years-old overdue tasks."""
    row = plan.programme
    first = (row.starts_on or row.decision_date) if row is not None else None
    if row is None or first is None:
        return plan
    years = year - first.year
    programme = dataclasses.replace(
        row,
        decision_date=_plus_years(row.decision_date, years),
        starts_on=_plus_years(row.starts_on, years),
        ends_on=_plus_years(row.ends_on, years),
    )
    tasks = [dataclasses.replace(t, deadline=_plus_years(t.deadline, years)) for t in plan.tasks]
    return dataclasses.replace(plan, programme=programme, tasks=tasks)


# --- the programmes themselves ------------------------------------------------------------------


@dataclass(frozen=True)
class ProgrammeInfo:
    """A programme as reports and lists show it (ReportData.programme, /programmes)."""

    id: int
    code: str
    short_code: str
    title: str
    decision: str
    decision_date: date | None
    issuer: str
    starts_on: date | None
    ends_on: date | None
    period: str | None
    cutoff: str | None
    state: str
    closed_at: datetime | None
    closing: dict[str, Any] | None
    tasks: int = 0
    open_tasks: int = 0

    @property
    def closed(self) -> bool:
        return self.state == "closed"

    @classmethod
    def of(cls, programme: Programme, counts: tuple[int, int] = (0, 0)) -> ProgrammeInfo:
        return cls(
            programme.id,
            programme.code,
            programme.short_code,
            programme.title,
            programme.decision,
            programme.decision_date,
            programme.issuer,
            programme.starts_on,
            programme.ends_on,
            programme.period,
            programme.cutoff,
            programme.state,
            programme.closed_at,
            programme.closing,
            *counts,
        )


class ProgrammeError(Exception):
    """A programme command that cannot be done; `key` names the catalog sentence."""

    def __init__(self, key: str, **params: Any) -> None:
        super().__init__(key)
        self.key = key
        self.params = params


def closing_figures(classes: list[StatusClass], day: date) -> dict[str, Any]:
    """The completion figures a programme is closed with (the final report's headline)."""
    counts = count_classes(classes)
    rate = completion_rate(counts)
    return {
        "day": day.isoformat(),
        "total": len(classes),
        **{status.value: counts[status] for status in STATUS_ORDER},
        "rate": round(rate, 4) if rate is not None else None,
    }


def programme_rule(programme: ProgrammeInfo, config: Config) -> PeriodRule:
    """The programme's reporting period rule; config.toml's [reporting] fills what it leaves."""
    rep = config.reporting
    period = programme.period or rep.period
    cutoff = (programme.cutoff or "").split()
    weekday, day, clock = rep.cutoff_weekday, rep.cutoff_day, rep.cutoff_time
    if programme.cutoff and period == "weekly" and cutoff[0].lower() in WEEKDAYS:
        weekday = cutoff[0].lower()
        clock = cutoff[1] if len(cutoff) > 1 else clock
    elif programme.cutoff and period != "weekly" and cutoff[0].isdigit():
        day = min(28, max(1, int(cutoff[0])))
        clock = cutoff[1] if len(cutoff) > 1 else clock
    # A plain dataclass (bot/config.py); with_overrides checks the copy.
    reporting = dataclasses.replace(
        cast(Any, rep), period=period, cutoff_weekday=weekday, cutoff_day=day, cutoff_time=clock
    )
    return period_rule(config.with_overrides(reporting=reporting))


class ProgrammeDirectory:
    """Lists, finds, renames and closes programmes; every change is audited."""

    def __init__(self, db: Database, clock: Clock, tz: tzinfo) -> None:
        self.db = db
        self.clock = clock
        self.tz = tz

    async def all(self, *, active_only: bool = False) -> list[ProgrammeInfo]:
        async with self.db.reader() as session:
            repo = ProgrammeRepository(session)
            counts = await repo.task_counts()
            return [
                ProgrammeInfo.of(p, counts.get(p.id, (0, 0))) for p in await repo.all(active_only=active_only)
            ]

    async def choose(self, code: str | None) -> ProgrammeInfo:
        """The programme a report asks for: by code or short code; without one, the only
        active programme. ProgrammeError("programme.unknown" / "programme.ambiguous")."""
        programmes = await self.all()
        if code:
            code = code.strip()
            found = [p for p in programmes if code in (p.code, p.short_code)]
            if not found:
                raise ProgrammeError("programme.unknown", code=code)
            return found[0]
        active = [p for p in programmes if not p.closed]
        if len(active) == 1:
            return active[0]
        if not active and len(programmes) == 1:
            return programmes[0]
        if not programmes:
            raise ProgrammeError("programme.none")
        raise ProgrammeError("programme.ambiguous", codes=", ".join(p.code for p in active or programmes))

    async def rename(
        self, old: str, new: str, *, actor: str = "cli", actor_telegram_id: int | None = None
    ) -> None:
        new = new.strip()
        if not PROGRAMME_CODE.match(new):
            raise ProgrammeError("programme.bad_code", code=new)
        async with self.db.transaction() as session:
            repo = ProgrammeRepository(session)
            programme = await repo.by_code(old)
            if programme is None:
                raise ProgrammeError("programme.unknown", code=old)
            if await repo.by_code(new) is not None:
                raise ProgrammeError("programme.code_taken", code=new)
            programme.code = new
            AuditRepository(session).record(
                "programme.rename",
                actor=actor,
                actor_telegram_id=actor_telegram_id,
                entity="programme",
                entity_id=new,
                before={"code": old},
                after={"code": new},
            )

    async def close(
        self, code: str, reason: str, *, actor: str = "cli", actor_telegram_id: int | None = None
    ) -> ProgrammeInfo:
        """Close the programme: its open tasks are closed with it (they stop nudging and leave
        every list; reports and /history keep them), and the completion figures on the
        closing day are kept with it (the final report)."""
        now = self.clock.now()
        day = now.astimezone(self.tz).date()
        async with self.db.transaction() as session:
            repo = ProgrammeRepository(session)
            programme = await repo.by_code(code.strip()) or await repo.by_short_code(code.strip())
            if programme is None:
                raise ProgrammeError("programme.unknown", code=code)
            if programme.state == "closed":
                raise ProgrammeError("programme.already_closed", code=programme.code)
            tasks = [t for t in await TaskRepository(session).all() if t.programme_id == programme.id]
            open_tasks = [t for t in tasks if t.closed_at is None]
            states = await ReportRepository(session).lead_progress(now, [t.id for t in open_tasks])
            classes = []
            for task in open_tasks:
                state = states.get(task.id)
                classes.append(
                    classify_status(task.deadline, state.completed_on(self.tz) if state else None, day)
                )
                task.closed_at = now
                task.close_reason = reason
            programme.state = "closed"
            programme.closed_at = now
            programme.closing = closing_figures(classes, day)
            AuditRepository(session).record(
                "programme.close",
                actor=actor,
                actor_telegram_id=actor_telegram_id,
                entity="programme",
                entity_id=programme.code,
                before={"state": "active"},
                after={"state": "closed", **programme.closing},
            )
            await session.flush()
            counts = await repo.task_counts()
            return ProgrammeInfo.of(programme, counts.get(programme.id, (0, 0)))
