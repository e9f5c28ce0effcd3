"""The consolidated report's content, computed once per period and scope into plain data.

Every format (chat digest, Word, spreadsheet, chart, HTML, JSON) renders the same ReportData.
A task's status class is evaluated on the local date of the period's end, from its lead unit's
reports up to that moment (bot/services/status.py).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.services.periods import Period, PeriodRule, previous
from bot.services.status import STATUS_ORDER, StatusClass, classify_status, completion_rate
from storage.db import Database
from storage.repositories.reportdata import ReportDataRepository, UnitRecord
from storage.repositories.reports import LeadProgress, ReportRepository


@dataclass(frozen=True)
class ProgrammeRef:
    """The programme a report covers, and the decision it implements ("Thực hiện Quyết định
    số 59/QĐ-BKHCN ngày 19/01/2024 …")."""

    code: str
    short_code: str
    title: str
    decision: str
    decision_date: date | None
    issuer: str
    state: str = "active"
    closed_at: datetime | None = None
    # The completion figures at closing (bot/services/programme.py closing_figures).
    closing: dict[str, Any] | None = None

    @property
    def closed(self) -> bool:
        return self.state == "closed"


@dataclass(frozen=True)
class UnitRef:
    code: str
    name: str


@dataclass(frozen=True)
class Counts:
    done_on_time: int = 0
    done_late: int = 0
    open_within: int = 0
    open_overdue: int = 0

    @classmethod
    def of(cls, classes: list[StatusClass]) -> Counts:
        tally = dict.fromkeys(STATUS_ORDER, 0)
        for status in classes:
            tally[status] += 1
        return cls(*(tally[s] for s in STATUS_ORDER))

    def get(self, status: StatusClass) -> int:
        return int(getattr(self, status.value))

    @property
    def total(self) -> int:
        return self.done_on_time + self.done_late + self.open_within + self.open_overdue

    @property
    def completed(self) -> int:
        return self.done_on_time + self.done_late

    @property
    def due(self) -> int:
        return self.completed + self.open_overdue

    @property
    def rate(self) -> float | None:
        """Completed over the tasks that have come due (the Government's completion rate)."""
        return completion_rate({s: self.get(s) for s in STATUS_ORDER})

    @property
    def overdue_share(self) -> float | None:
        return self.open_overdue / self.due if self.due else None


@dataclass(frozen=True)
class TaskLine:
    code: str
    title: str
    group_code: str
    lead: UnitRef
    coordinating: tuple[str, ...]
    deadline: date | None
    status: StatusClass
    completed_on: date | None
    report_status: str | None  # the lead unit's latest report: not_started/in_progress/done/stuck
    percent: int | None
    reported_this_period: bool
    results: str  # this period's, from the lead unit's report
    difficulties: str
    proposals: str
    # From the lead unit's latest report, whatever its period (what a stuck task is stuck on).
    last_difficulties: str
    last_proposals: str
    expected_output: str
    target_value: float | None
    target_unit: str | None
    target_label: str | None
    value: float | None  # the latest reported value of the target


@dataclass(frozen=True)
class GroupSection:
    code: str
    title: str
    counts: Counts
    tasks: list[TaskLine]


@dataclass(frozen=True)
class UnitTasks:
    unit: UnitRef
    tasks: list[TaskLine]


@dataclass(frozen=True)
class UnitTotals:
    unit: UnitRef
    counts: Counts


@dataclass(frozen=True)
class Compliance:
    expected: list[UnitRef]
    reported: list[UnitRef]
    silent: list[UnitRef]


@dataclass(frozen=True)
class StatusChange:
    code: str
    title: str
    before: StatusClass
    after: StatusClass


@dataclass(frozen=True)
class DeadlineChange:
    code: str
    title: str
    before: date | None
    after: date | None


@dataclass(frozen=True)
class TaskRef:
    code: str
    title: str


@dataclass(frozen=True)
class Changes:
    statuses: list[StatusChange] = field(default_factory=list)
    new_tasks: list[TaskRef] = field(default_factory=list)
    closed_tasks: list[TaskRef] = field(default_factory=list)
    deadlines: list[DeadlineChange] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.statuses or self.new_tasks or self.closed_tasks or self.deadlines)


@dataclass(frozen=True)
class ReportData:
    period: str
    previous_period: str
    start: date  # local date of the previous cut-off
    end: date  # local date of the cut-off: statuses are evaluated on this day
    scope: UnitRef | None  # None: the whole programme
    totals: Counts
    compliance: Compliance
    groups: list[GroupSection]
    overdue_by_unit: list[UnitTasks]
    stuck: list[TaskLine]
    changes: Changes
    unit_totals: list[UnitTotals]
    # None: every task in the database (a database without programmes).
    programme: ProgrammeRef | None = None

    @property
    def tasks(self) -> list[TaskLine]:
        return [task for group in self.groups for task in group.tasks]


class UnknownScope(LookupError):
    """No unit has this code."""


def _local_day(moment: datetime, tz: ZoneInfo) -> date:
    return moment.astimezone(tz).date()


def _parse_day(value: object) -> date | None:
    if isinstance(value, str) and value:
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None


class ReportBuilder:
    def __init__(self, db: Database, periods: PeriodRule, tz: ZoneInfo) -> None:
        self.db = db
        self.periods = periods
        self.tz = tz

    def _completed_on(self, state: LeadProgress | None) -> date | None:
        return state.completed_on(self.tz) if state else None

    def _classify(self, deadline: date | None, state: LeadProgress | None, day: date) -> StatusClass:
        return classify_status(deadline, self._completed_on(state), day)

    async def build(
        self,
        period: Period,
        unit_code: str | None = None,
        *,
        as_of: datetime | None = None,
        programme: ProgrammeRef | None = None,
        programme_id: int | None = None,
    ) -> ReportData:
        """Compute the report for the period: the whole programme, or one unit's tasks.

        A period still open is reported as of `as_of` (now): statuses are those of today. A
        closed programme is reported as it stood just before it was closed (its open tasks
        were closed with it)."""
        before = previous(self.periods, period)
        moment = min(period.end, as_of) if as_of is not None else period.end
        if programme is not None and programme.closed_at is not None:
            moment = min(moment, programme.closed_at - timedelta(microseconds=1))
        end_day = _local_day(moment, self.tz)
        prev_day = _local_day(before.end, self.tz)
        # Whole-programme queries: in the driver's thread, so chats are served meanwhile.
        with self.db.offloaded():
            data = await self._build(period, before, moment, end_day, prev_day, unit_code, programme_id)
        return dataclasses.replace(data, programme=programme)

    async def _build(
        self,
        period: Period,
        before: Period,
        moment: datetime,
        end_day: date,
        prev_day: date,
        unit_code: str | None,
        programme_id: int | None = None,
    ) -> ReportData:
        async with self.db.reader() as session:
            repo = ReportDataRepository(session, programme_id)
            scope: UnitRecord | None = None
            if unit_code is not None:
                scope = await repo.unit_by_code(unit_code)
                if scope is None:
                    raise UnknownScope(unit_code)
            unit_id = scope.id if scope else None
            tasks = await repo.tasks(moment, unit_id)
            coordinating = await repo.coordinating(moment, unit_id)
            reports = ReportRepository(session)
            states = await reports.lead_progress(moment, repo.task_ids(moment, unit_id))
            prev_states = await reports.lead_progress(before.end, repo.task_ids(before.end, unit_id))
            reporting = await repo.units_reporting(period.key, unit_id)
            groups = await repo.groups()
            created = await repo.created_between(period.start, moment, unit_id)
            closed = await repo.closed_between(period.start, moment, unit_id)
            audit = await repo.task_audit(period.start, moment)
            coord_by_task: dict[int, list[int]] = defaultdict(list)
            for task_id, coord_unit in coordinating:
                coord_by_task[task_id].append(coord_unit)
            unit_ids = {t.lead_unit_id for t in tasks} | {u for _, u in coordinating}
            unit_ids |= {c.lead_unit_id for c in closed}
            units = await repo.units(list(unit_ids))

        def ref(unit_id: int) -> UnitRef:
            unit = units[unit_id]
            return UnitRef(unit.code, unit.name)

        group_codes = {g.id: g.code for g in groups}
        lines: list[TaskLine] = []
        by_group: dict[int, list[TaskLine]] = defaultdict(list)
        by_lead: dict[int, list[TaskLine]] = defaultdict(list)
        expected: set[int] = set()
        status_changes: list[StatusChange] = []
        in_scope_codes = set()
        for task in tasks:
            state = states.get(task.id)
            status = self._classify(task.deadline, state, end_day)
            this_period = state is not None and state.period == period.key
            line = TaskLine(
                code=task.code,
                title=task.title,
                group_code=group_codes.get(task.group_id, ""),
                lead=ref(task.lead_unit_id),
                coordinating=tuple(units[u].code for u in coord_by_task.get(task.id, ())),
                deadline=task.deadline,
                status=status,
                completed_on=self._completed_on(state),
                report_status=state.status if state else None,
                percent=state.percent if state else None,
                reported_this_period=this_period,
                results=state.results if state and this_period else "",
                difficulties=state.difficulties if state and this_period else "",
                proposals=state.proposals if state and this_period else "",
                last_difficulties=state.difficulties if state else "",
                last_proposals=state.proposals if state else "",
                expected_output=task.expected_output,
                target_value=task.target_value,
                target_unit=task.target_unit,
                target_label=task.target_label,
                value=state.indicator_value if state else None,
            )
            lines.append(line)
            in_scope_codes.add(task.code)
            by_group[task.group_id].append(line)
            by_lead[task.lead_unit_id].append(line)
            before_status = self._classify(task.deadline, prev_states.get(task.id), prev_day)
            # A task completed before this period began needs no report in it.
            if not before_status.completed:
                expected.add(task.lead_unit_id)
                expected.update(coord_by_task.get(task.id, ()))
            if before_status is not status:
                status_changes.append(StatusChange(task.code, task.title, before_status, status))

        if scope is not None:
            expected &= {scope.id}
        expected_refs = sorted((ref(u) for u in expected), key=lambda r: r.code)
        reported_codes = {units[u].code for u in expected & reporting}
        compliance = Compliance(
            expected=expected_refs,
            reported=[r for r in expected_refs if r.code in reported_codes],
            silent=[r for r in expected_refs if r.code not in reported_codes],
        )
        sections = [
            GroupSection(g.code, g.title, Counts.of([t.status for t in by_group[g.id]]), by_group[g.id])
            for g in groups
            if by_group.get(g.id)
        ]
        overdue = [
            UnitTasks(ref(unit_id), [t for t in group if t.status is StatusClass.OPEN_OVERDUE])
            for unit_id, group in by_lead.items()
        ]
        overdue = sorted((u for u in overdue if u.tasks), key=lambda u: (-len(u.tasks), u.unit.code))
        unit_totals = sorted(
            (
                UnitTotals(ref(unit_id), Counts.of([t.status for t in group]))
                for unit_id, group in by_lead.items()
            ),
            key=lambda u: u.unit.code,
        )
        deadlines = []
        titles = {line.code: line.title for line in lines}
        for entry in audit:
            if entry.code not in in_scope_codes or not entry.before or not entry.after:
                continue
            old, new = entry.before.get("deadline"), entry.after.get("deadline")
            if "deadline" in entry.after and old != new:
                deadlines.append(
                    DeadlineChange(entry.code, titles[entry.code], _parse_day(old), _parse_day(new))
                )
        changes = Changes(
            statuses=status_changes,
            new_tasks=[TaskRef(code, title) for code, title in created],
            closed_tasks=[TaskRef(c.code, c.title) for c in closed],
            deadlines=deadlines,
        )
        return ReportData(
            period=period.key,
            previous_period=before.key,
            start=_local_day(period.start, self.tz),
            end=end_day,
            scope=UnitRef(scope.code, scope.name) if scope else None,
            totals=Counts.of([line.status for line in lines]),
            compliance=compliance,
            groups=sections,
            overdue_by_unit=overdue,
            stuck=[line for line in lines if line.report_status == "stuck"],
            changes=changes,
            unit_totals=unit_totals,
        )
