"""The consolidated report's content, computed once per period and scope into plain data.

Every format (chat digest, Word, spreadsheet, chart, HTML, JSON) renders the same ReportData.
A task's status class is evaluated on the local date of the period's end, from its lead unit's
reports up to that moment (bot/services/status.py).
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.periods import Period, PeriodRule, following, previous
from bot.services.status import STATUS_ORDER, StatusClass, classify_status, completion_rate
from storage.db import Database
from storage.repositories.reportdata import (
    ClosedTask,
    GroupRecord,
    ReportDataRepository,
    TaskAudit,
    TaskRecord,
    UnitRecord,
)
from storage.repositories.reports import LeadProgress, ReportRepository


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
    # The lead unit said "no change since the last period" (its latest report).
    unchanged: bool = False


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
class ProgrammeRef:
    """The programme a report covers, and the decision it implements ("Thực hiện Quyết định
    số 59/QĐ-BKHCN ngày 19/01/2024 …"); the programme record fills it (same shape as the
    programmes work's ProgrammeRef)."""

    code: str
    short_code: str
    title: str
    decision: str  # "59/QĐ-BKHCN"
    decision_date: date | None
    issuer: str  # who issued the decision: "Bộ trưởng Bộ Khoa học và Công nghệ"
    state: str = "active"
    closed_at: datetime | None = None
    # The completion figures at closing.
    closing: dict[str, Any] | None = None

    @property
    def closed(self) -> bool:
        return self.state == "closed"


@dataclass(frozen=True)
class Issue:
    """One difficulty or proposal as written (de-duplicated), and the tasks that raised it."""

    text: str
    codes: tuple[str, ...]


@dataclass(frozen=True)
class ProposalGroup:
    addressee: str  # "" when the proposal names no body
    items: list[Issue]


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
    # The same tasks' statuses at the previous cut-off (what "since last period" compares).
    previous_totals: Counts = field(default_factory=Counts)
    # Difficulties of the open tasks, grouped and de-duplicated (II. of the report).
    shortcomings: list[Issue] = field(default_factory=list)
    # Proposals, de-duplicated and grouped by the body they are addressed to (IV.).
    proposals: list[ProposalGroup] = field(default_factory=list)
    # Open tasks coming due after the cut-off, up to priorities_until (III.).
    priorities: list[TaskLine] = field(default_factory=list)
    priorities_until: date | None = None
    # None: every task in the database (a database without programmes).
    programme: ProgrammeRef | None = None

    def __repr__(self) -> str:
        # Short: the generated repr of ten thousand task lines takes seconds, and Python 3.11's
        # asyncio.run computes it when it returns the report (it reprs its SIGINT handler,
        # which holds the main task and so its result).
        return f"ReportData(period={self.period!r}, scope={self.scope!r}, tasks={self.totals.total})"

    @property
    def tasks(self) -> list[TaskLine]:
        return [task for group in self.groups for task in group.tasks]

    @property
    def merged_proposals(self) -> list[Issue]:
        """Every distinct proposal, whatever its addressee, the most often raised first."""
        items = [item for group in self.proposals for item in group.items]
        return sorted(items, key=lambda item: -len(item.codes))

    @property
    def targets(self) -> list[TaskLine]:
        """Tasks with a numeric target, for the targets-against-values parts."""
        return [task for group in self.groups for task in group.tasks if task.target_value is not None]


class UnknownScope(LookupError):
    """No unit has this code."""


# How far ahead "III. next period's priorities" looks: the next period, at least this long.
PRIORITY_HORIZON = timedelta(days=30)
# A proposal names its addressee between "Đề nghị" and the verb: "Đề nghị Văn phòng Bộ đôn đốc…".
_PROPOSAL = re.compile(
    r"^\s*(?:đề nghị|kiến nghị|đề xuất)\s+(?P<who>.+?)\s+(?="
    r"đôn đốc|bố trí|bổ sung|xem xét|chỉ đạo|cho phép|hướng dẫn|phê duyệt|giao |cấp |hỗ trợ|"
    r"ban hành|sớm|tổ chức|quan tâm|có ý kiến|cho ý kiến|điều chỉnh|gia hạn|thẩm định|trình |"
    r"ưu tiên|tạo điều kiện|phối hợp|chủ trì|cung cấp|báo cáo|xử lý|giải quyết|tháo gỡ)",
    re.IGNORECASE,
)
_CLAUSES = re.compile(r"[;\n]+|(?<=[^\d\s])\.\s+")


def _local_day(moment: datetime, tz: ZoneInfo) -> date:
    return moment.astimezone(tz).date()


def _parse_day(value: object) -> date | None:
    if isinstance(value, str) and value:
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None


def _sentence(text: str) -> str:
    """One clause as a sentence: trimmed, first letter capital, no closing punctuation (the
    templates add it, so a text that already ends with "." is never doubled)."""
    text = " ".join(text.split()).strip(" .;,-–•")
    return text[:1].upper() + text[1:] if text else ""


def _key(text: str) -> str:
    return unicodedata.normalize("NFC", text).casefold()


def _merge(entries: list[tuple[str, str]]) -> list[Issue]:
    """(text, task code) pairs into issues: one per distinct text (case-insensitive), in the
    order first seen, each with the codes of the tasks that raised it."""
    merged: dict[str, tuple[str, list[str]]] = {}
    for text, code in entries:
        key = _key(text)
        if key not in merged:
            merged[key] = (text, [])
        codes = merged[key][1]
        if not codes or codes[-1] != code:
            codes.append(code)
    return [Issue(text, tuple(codes)) for text, codes in merged.values()]


def shortcomings(lines: list[TaskLine]) -> list[Issue]:
    """The difficulties of the open tasks, split into clauses, grouped and de-duplicated; the
    most widespread first."""
    entries = [
        (_sentence(clause), line.code)
        for line in lines
        if line.last_difficulties and not line.status.completed
        for clause in _CLAUSES.split(line.last_difficulties)
        if _sentence(clause)
    ]
    return sorted(_merge(entries), key=lambda issue: -len(issue.codes))


def addressee(proposal: str) -> str:
    """The body a proposal is addressed to ("" when it names none)."""
    match = _PROPOSAL.match(proposal)
    if match is None:
        return ""
    who = match.group("who").strip(" ,:")
    return who if who[:1].isupper() and len(who) <= 80 else ""


def proposals(lines: list[TaskLine]) -> list[ProposalGroup]:
    """The open tasks' proposals, de-duplicated and grouped by addressee (named ones first)."""
    by_addressee: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for line in lines:
        if line.last_proposals and not line.status.completed:
            text = _sentence(line.last_proposals)
            if text:
                by_addressee[addressee(text)].append((text, line.code))
    return [
        ProposalGroup(who, _merge(by_addressee[who]))
        for who in sorted(by_addressee, key=lambda who: (who == "", _key(who)))
    ]


def priorities(lines: list[TaskLine], after: date, until: date) -> list[TaskLine]:
    """Open tasks whose deadline falls after the cut-off and by `until`, soonest first."""
    due = [
        line
        for line in lines
        if not line.status.completed and line.deadline is not None and after < line.deadline <= until
    ]
    return sorted(due, key=lambda line: (line.deadline, line.code))


@dataclass(frozen=True)
class _Window:
    """The moments one report is computed for."""

    period: Period
    before: Period
    moment: datetime  # the period's end, or now while it is open
    end_day: date
    prev_day: date
    until: date  # the priorities' horizon


@dataclass
class _Loaded:
    """What the report reads from the database, in one read transaction."""

    scope: UnitRecord | None
    tasks: list[TaskRecord]
    coordinating: dict[int, list[int]]
    states: dict[int, LeadProgress]
    prev_completed: dict[int, datetime]  # task id: completed at, as of the previous cut-off
    reporting: set[int]
    groups: list[GroupRecord]
    created: list[tuple[str, str]]
    closed: list[ClosedTask]
    audit: list[TaskAudit]
    units: dict[int, UnitRecord]
    refs: dict[int, UnitRef] = field(default_factory=dict)
    group_codes: dict[int, str] = field(default_factory=dict)


@dataclass
class _Lines:
    """Every task's line, and the tallies taken while making them."""

    lines: list[TaskLine] = field(default_factory=list)
    previous: list[StatusClass] = field(default_factory=list)
    by_group: dict[int, list[TaskLine]] = field(default_factory=lambda: defaultdict(list))
    by_lead: dict[int, list[TaskLine]] = field(default_factory=lambda: defaultdict(list))
    expected: set[int] = field(default_factory=set)
    status_changes: list[StatusChange] = field(default_factory=list)


async def _load(
    session: AsyncSession, window: _Window, unit_code: str | None, programme_id: int | None = None
) -> _Loaded:
    repo = ReportDataRepository(session, programme_id)
    scope: UnitRecord | None = None
    if unit_code is not None:
        scope = await repo.unit_by_code(unit_code)
        if scope is None:
            raise UnknownScope(unit_code)
    unit_id = scope.id if scope else None
    moment, period = window.moment, window.period
    tasks = await repo.tasks(moment, unit_id)
    coordinating = await repo.coordinating(moment, unit_id)
    reports = ReportRepository(session)
    states = await reports.lead_progress(moment, repo.task_ids(moment, unit_id))
    prev_completed = await repo.completed_at(window.before.end, unit_id)
    coord_by_task: dict[int, list[int]] = defaultdict(list)
    for task_id, coord_unit in coordinating:
        coord_by_task[task_id].append(coord_unit)
    closed = await repo.closed_between(period.start, moment, unit_id)
    unit_ids = {t.lead_unit_id for t in tasks} | {u for _, u in coordinating}
    unit_ids |= {c.lead_unit_id for c in closed}
    loaded = _Loaded(
        scope=scope,
        tasks=tasks,
        coordinating=coord_by_task,
        states=states,
        prev_completed=prev_completed,
        reporting=await repo.units_reporting(period.key, unit_id),
        groups=await repo.groups(),
        created=await repo.created_between(period.start, moment, unit_id),
        closed=closed,
        audit=await repo.task_audit(period.start, moment),
        units=await repo.units(list(unit_ids)),
    )
    loaded.refs = {uid: UnitRef(unit.code, unit.name) for uid, unit in loaded.units.items()}
    loaded.group_codes = {g.id: g.code for g in loaded.groups}
    return loaded


def _task_line(
    task: TaskRecord,
    state: LeadProgress | None,
    status: StatusClass,
    loaded: _Loaded,
    *,
    period: str,
    tz: ZoneInfo,
) -> TaskLine:
    this_period = state is not None and state.period == period
    units = loaded.units
    return TaskLine(
        code=task.code,
        title=task.title,
        group_code=loaded.group_codes.get(task.group_id, ""),
        lead=loaded.refs[task.lead_unit_id],
        coordinating=tuple(units[u].code for u in loaded.coordinating.get(task.id, ())),
        deadline=task.deadline,
        status=status,
        completed_on=state.completed_on(tz) if state else None,
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
        unchanged=bool(getattr(state, "unchanged", False)),
    )


def _task_lines(loaded: _Loaded, window: _Window, tz: ZoneInfo) -> _Lines:
    out = _Lines()
    for task in loaded.tasks:
        state = loaded.states.get(task.id)
        completed = state.completed_on(tz) if state else None
        status = classify_status(task.deadline, completed, window.end_day)
        line = _task_line(task, state, status, loaded, period=window.period.key, tz=tz)
        out.lines.append(line)
        out.by_group[task.group_id].append(line)
        out.by_lead[task.lead_unit_id].append(line)
        prev = loaded.prev_completed.get(task.id)
        before = classify_status(task.deadline, prev.astimezone(tz).date() if prev else None, window.prev_day)
        out.previous.append(before)
        # A task completed before this period began needs no report in it.
        if not before.completed:
            out.expected.add(task.lead_unit_id)
            out.expected.update(loaded.coordinating.get(task.id, ()))
        if before is not status:
            out.status_changes.append(StatusChange(task.code, task.title, before, status))
    return out


def _compliance(loaded: _Loaded, expected: set[int]) -> Compliance:
    if loaded.scope is not None:
        expected = expected & {loaded.scope.id}
    expected_refs = sorted((loaded.refs[u] for u in expected), key=lambda r: r.code)
    reported_codes = {loaded.units[u].code for u in expected & loaded.reporting}
    return Compliance(
        expected=expected_refs,
        reported=[r for r in expected_refs if r.code in reported_codes],
        silent=[r for r in expected_refs if r.code not in reported_codes],
    )


def _sections(loaded: _Loaded, by_group: dict[int, list[TaskLine]]) -> list[GroupSection]:
    return [
        GroupSection(g.code, g.title, Counts.of([t.status for t in by_group[g.id]]), by_group[g.id])
        for g in loaded.groups
        if by_group.get(g.id)
    ]


def _overdue(loaded: _Loaded, by_lead: dict[int, list[TaskLine]]) -> list[UnitTasks]:
    overdue = [
        UnitTasks(loaded.refs[unit_id], [t for t in group if t.status is StatusClass.OPEN_OVERDUE])
        for unit_id, group in by_lead.items()
    ]
    return sorted((u for u in overdue if u.tasks), key=lambda u: (-len(u.tasks), u.unit.code))


def _unit_totals(loaded: _Loaded, by_lead: dict[int, list[TaskLine]]) -> list[UnitTotals]:
    totals = (
        UnitTotals(loaded.refs[unit_id], Counts.of([t.status for t in group]))
        for unit_id, group in by_lead.items()
    )
    return sorted(totals, key=lambda u: u.unit.code)


def _deadline_changes(audit: list[TaskAudit], titles: dict[str, str]) -> list[DeadlineChange]:
    changes = []
    for entry in audit:
        if entry.code not in titles or not entry.before or not entry.after:
            continue
        old, new = entry.before.get("deadline"), entry.after.get("deadline")
        if "deadline" in entry.after and old != new:
            changes.append(DeadlineChange(entry.code, titles[entry.code], _parse_day(old), _parse_day(new)))
    return changes


def _changes(loaded: _Loaded, lines: _Lines) -> Changes:
    titles = {line.code: line.title for line in lines.lines}
    return Changes(
        statuses=lines.status_changes,
        new_tasks=[TaskRef(code, title) for code, title in loaded.created],
        closed_tasks=[TaskRef(c.code, c.title) for c in loaded.closed],
        deadlines=_deadline_changes(loaded.audit, titles),
    )


def assemble(loaded: _Loaded, window: _Window, tz: ZoneInfo) -> ReportData:
    """The report from what was read: plain computation, no database."""
    lines = _task_lines(loaded, window, tz)
    scope = loaded.scope
    return ReportData(
        period=window.period.key,
        previous_period=window.before.key,
        start=_local_day(window.period.start, tz),
        end=window.end_day,
        scope=UnitRef(scope.code, scope.name) if scope else None,
        totals=Counts.of([line.status for line in lines.lines]),
        compliance=_compliance(loaded, lines.expected),
        groups=_sections(loaded, lines.by_group),
        overdue_by_unit=_overdue(loaded, lines.by_lead),
        stuck=[line for line in lines.lines if line.report_status == "stuck"],
        changes=_changes(loaded, lines),
        unit_totals=_unit_totals(loaded, lines.by_lead),
        previous_totals=Counts.of(lines.previous),
        shortcomings=shortcomings(lines.lines),
        proposals=proposals(lines.lines),
        priorities=priorities(lines.lines, window.end_day, window.until),
        priorities_until=window.until,
    )


class ReportBuilder:
    def __init__(self, db: Database, periods: PeriodRule, tz: ZoneInfo) -> None:
        self.db = db
        self.periods = periods
        self.tz = tz

    def window(self, period: Period, as_of: datetime | None = None) -> _Window:
        before = previous(self.periods, period)
        moment = min(period.end, as_of) if as_of is not None else period.end
        end_day = _local_day(moment, self.tz)
        next_end = _local_day(following(self.periods, period).end, self.tz)
        return _Window(
            period=period,
            before=before,
            moment=moment,
            end_day=end_day,
            prev_day=_local_day(before.end, self.tz),
            until=max(next_end, end_day + PRIORITY_HORIZON),
        )

    async def build(
        self,
        period: Period,
        unit_code: str | None = None,
        *,
        as_of: datetime | None = None,
        programme: ProgrammeRef | None = None,
        programme_id: int | None = None,
    ) -> ReportData:
        """Compute the report for the period: the whole programme (one programme's tasks with
        programme_id), or one unit's tasks.

        A period still open is reported as of `as_of` (now): statuses are those of today. A
        closed programme is reported as it stood just before it was closed (its open tasks
        were closed with it)."""
        if programme is not None and programme.closed_at is not None:
            closing = programme.closed_at - timedelta(microseconds=1)
            as_of = min(as_of, closing) if as_of is not None else closing
        window = self.window(period, as_of)
        # Whole-programme queries: in the driver's thread, so chats are served meanwhile.
        with self.db.offloaded():
            async with self.db.reader() as session:
                loaded = await _load(session, window, unit_code, programme_id)
        return dataclasses.replace(assemble(loaded, window, self.tz), programme=programme)
