"""What a person sees of the programme's tasks: their units' tasks with the Government status
class, the last report and whether they may report on it. Plain data for handlers, the
reminders and the digest."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.services.people import Person
from bot.services.status import StatusClass, classify_status, end_of_day
from storage.db import Database
from storage.models import Programme, ProgressReport, Task
from storage.repositories.programmes import ProgrammeRepository
from storage.repositories.reports import LeadProgress, ReportRepository
from storage.repositories.tasks import TaskRepository, report_tasks, split_code

# Overdue first, then open within the deadline, then completed.
_ORDER = {
    StatusClass.OPEN_OVERDUE: 0,
    StatusClass.OPEN_WITHIN: 1,
    StatusClass.DONE_LATE: 2,
    StatusClass.DONE_ON_TIME: 3,
}


@dataclass(frozen=True)
class TaskView:
    task_id: int
    code: str
    title: str
    deadline: date | None
    lead_unit_id: int
    lead_unit_code: str
    status: StatusClass
    # The unit the caller reports for on this task (lead if theirs, else coordinating); None
    # when the caller may only look (a leader).
    unit_id: int | None
    unit_code: str
    lead: bool  # the caller's unit leads this task
    target_value: float | None = None
    target_unit: str | None = None
    target_label: str | None = None
    last_report_on: date | None = None
    last_percent: int | None = None
    last_status: str | None = None
    last_period: str | None = None  # the period of the caller's units' last report
    # With several active programmes: the task's programme (short code, title), and `code`
    # is shown as "<short code>:<code>" (what /report takes); both empty with one.
    programme: str = ""
    programme_title: str = ""

    @property
    def can_report(self) -> bool:
        return self.unit_id is not None

    @property
    def has_target(self) -> bool:
        return self.target_value is not None


@dataclass(frozen=True)
class OpenTask:
    """An open task as the step that starts a report needs it: its units in order."""

    id: int
    code: str
    title: str
    lead_unit_id: int
    coordinating: tuple[int, ...]
    target_value: float | None
    target_unit: str | None
    target_label: str | None
    short_code: str = ""  # its programme's ("2025" in "2025:1.1")


@dataclass(frozen=True)
class ReportableTask:
    """A task the caller may report on, and the unit they report for."""

    task_id: int
    code: str
    title: str
    unit_id: int
    target_value: float | None
    target_unit: str | None
    target_label: str | None

    @property
    def has_target(self) -> bool:
        return self.target_value is not None


def _by_programme(
    views: list[TaskView], programme_of: dict[int, int], active: list[Programme]
) -> list[TaskView]:
    """Several active programmes: the latest issued first, each task's code shown with its
    programme's short code ("2025:1.1"), overdue first within each."""
    order = {p.id: i for i, p in enumerate(reversed(active))}
    by_id = {p.id: p for p in active}
    labelled = []
    for view in views:
        programme = by_id.get(programme_of.get(view.task_id, 0))
        if programme is not None:
            view = replace(
                view,
                code=f"{programme.short_code}:{view.code}",
                programme=programme.short_code,
                programme_title=programme.title,
            )
        labelled.append(view)
    labelled.sort(
        key=lambda v: (
            order.get(programme_of.get(v.task_id, 0), len(order)),
            _ORDER[v.status],
            v.deadline or date.max,
            v.code,
        )
    )
    return labelled


class TaskService:
    def __init__(self, db: Database, tz: ZoneInfo) -> None:
        self.db = db
        self.tz = tz

    def _local_day(self, moment: datetime) -> date:
        return moment.astimezone(self.tz).date()

    async def for_person(
        self, person: Person, today: date, *, task_ids: list[int] | None = None
    ) -> list[TaskView]:
        """The open tasks of the person's units, overdue first, then by deadline and code."""
        all_units = person.unit_ids()
        if not all_units:
            return []
        focal = person.unit_ids("focal")
        codes = {u.unit_id: u.unit_code for u in person.units}
        async with self.db.reader() as session:
            tasks = await TaskRepository(session).views_for_units(all_units, task_ids)
            reports = ReportRepository(session)
            ids = [t.id for t in tasks]
            lead = await reports.lead_progress(end_of_day(today, self.tz), ids)
            own = await reports.latest_for_tasks(ids, all_units)
            active = await ProgrammeRepository(session).all(active_only=True)
        views = [
            self._view(task, lead.get(task.id), own.get(task.id), all_units, focal, codes, today)
            for task in tasks
        ]
        if len(active) < 2:
            views.sort(key=lambda v: (_ORDER[v.status], v.deadline or date.max, v.code))
            return views
        return _by_programme(views, {t.id: t.programme_id for t in tasks}, active)

    def _view(
        self,
        task: Task,
        lead: LeadProgress | None,
        last: ProgressReport | None,
        all_units: set[int],
        focal: set[int],
        codes: dict[int, str],
        today: date,
    ) -> TaskView:
        status = classify_status(task.deadline, lead.completed_on(self.tz) if lead else None, today)
        coordinating = [c.unit_id for c in task.coordinating]
        mine_lead = task.lead_unit_id in all_units
        candidates = [task.lead_unit_id, *coordinating]
        reporting = next((u for u in candidates if u in focal), None)
        shown = (
            reporting
            if reporting is not None
            else next((u for u in candidates if u in all_units), task.lead_unit_id)
        )
        # The last report of the caller's own units (its latest correction's time).
        return TaskView(
            task_id=task.id,
            code=task.code,
            title=task.title,
            deadline=task.deadline,
            lead_unit_id=task.lead_unit_id,
            lead_unit_code=task.lead_unit.code,
            status=status,
            unit_id=reporting,
            unit_code=codes.get(shown, ""),
            lead=mine_lead,
            target_value=task.target_value,
            target_unit=task.target_unit,
            target_label=task.target_label,
            last_report_on=self._local_day(last.submitted_at) if last else None,
            last_percent=last.percent if last else None,
            last_status=last.status if last else None,
            last_period=last.period if last else None,
        )

    async def reportable(self, person: Person, today: date) -> list[TaskView]:
        """The tasks the person may report on (focal point of the lead or a coordinating unit)."""
        return [v for v in await self.for_person(person, today) if v.can_report]

    async def lookup(self, task_id: int | None = None, code: str | None = None) -> OpenTask | None:
        """The open task, by id or code (see reportable_for); None when a bare code names
        tasks of several active programmes (see matching)."""
        found = await self.matching(task_id, code)
        return found[0] if len(found) == 1 else None

    async def matching(self, task_id: int | None = None, code: str | None = None) -> list[OpenTask]:
        """The open tasks by id or code: more than one when a bare code ("1.1") is used by
        several active programmes."""
        found = await self.db.read_statements(lambda runner: report_tasks(runner, task_id, code))
        return [
            OpenTask(
                row.id,
                row.code,
                row.title,
                row.lead_unit_id,
                tuple(coordinating),
                row.target_value,
                row.target_unit,
                row.target_label,
                row.short_code or "",
            )
            for row, coordinating in found
        ]

    @staticmethod
    def reportable_for(person: Person, found: OpenTask | None) -> ReportableTask | None:
        """The looked-up task if the person is a focal point of its lead or a coordinating
        unit; None for another unit's, a closed or an unknown task."""
        focal = person.unit_ids("focal")
        if found is None or not focal:
            return None
        unit_id = next((u for u in [found.lead_unit_id, *found.coordinating] if u in focal), None)
        if unit_id is None:
            return None
        return ReportableTask(
            found.id,
            found.code,
            found.title,
            unit_id,
            found.target_value,
            found.target_unit,
            found.target_label,
        )

    async def for_report(
        self, person: Person, task_id: int | None = None, code: str | None = None
    ) -> ReportableTask | None:
        return self.reportable_for(person, await self.lookup(task_id, code))

    async def id_by_code(self, code: str) -> int | None:
        async with self.db.reader() as session:
            return await TaskRepository(session).open_id_by_code(code)


@dataclass(frozen=True)
class RevisionView:
    revision: int
    submitted_at: datetime
    status: str
    percent: int
    results: str


@dataclass(frozen=True)
class ReportView:
    report_id: int
    task_code: str
    task_title: str
    unit_code: str
    period: str
    status: str
    percent: int
    results: str
    difficulties: str
    proposals: str
    submitted_at: datetime
    revision: int
    files: int
    revisions: tuple[RevisionView, ...]


def _match_code(tasks: Any, typed: str) -> int | None:
    """The task a typed code names among these: "2025:1.1", or "1.1" (an open task first)."""
    short, code = split_code(typed)
    found = [t for t in tasks if t.code == code and (short is None or t.programme.short_code == short)]
    found.sort(key=lambda t: (t.closed_at is not None, -t.id))
    return found[0].id if found else None


class HistoryService:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def recent(
        self, person: Person, task_code: str | None = None, limit: int = 10
    ) -> list[ReportView] | None:
        """The latest reports of the person's units (None: no such task among theirs)."""
        units = person.unit_ids()
        codes = {u.unit_id: u.unit_code for u in person.units}
        async with self.db.reader() as session:
            # Closed tasks too (a closed programme's): their reports stay readable.
            tasks = {t.id: t for t in await TaskRepository(session).for_units(units, include_closed=True)}
            task_id = None
            if task_code is not None:
                task_id = _match_code(tasks.values(), task_code)
                if task_id is None:
                    return None
            reports = await ReportRepository(session).recent(units, task_id, limit)
            views = []
            for r in reports:
                task = tasks.get(r.task_id)
                views.append(
                    ReportView(
                        r.id,
                        task.code if task else "?",
                        task.title if task else "",
                        codes.get(r.unit_id, ""),
                        r.period,
                        r.status,
                        r.percent,
                        r.results,
                        r.difficulties,
                        r.proposals,
                        r.submitted_at,
                        r.revision,
                        len(r.attachments),
                        tuple(
                            RevisionView(v.revision, v.submitted_at, v.status, v.percent, v.results)
                            for v in r.revisions
                        ),
                    )
                )
            return views
