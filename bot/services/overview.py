"""Manager views and exports: every open task in its Government status class (from its lead
unit's reports), overdue tasks by lead unit, statistics per group and unit, and the XLSX/CSV
export that re-imports as a plan file."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from bot.clock import Clock
from bot.config import Config
from bot.services.plans import PROGRAMME_COLUMNS, PROGRESS_COLUMNS, TASK_COLUMNS
from bot.services.programme import programme_cells
from bot.services.report_worker import workbook_apart
from bot.services.status import (
    STATUS_ORDER,
    StatusClass,
    classify_status,
    completion_rate,
    count_classes,
    end_of_day,
)
from storage.db import Database
from storage.models import ProgressReport, Task
from storage.repositories.programmes import ProgrammeRepository
from storage.repositories.reports import ReportRepository
from storage.repositories.tasks import TaskRepository
from storage.repositories.units import UnitRepository


@dataclass(frozen=True)
class TaskStatus:
    code: str
    title: str
    group: str
    lead: str
    lead_name: str
    deadline: date | None
    status: StatusClass
    completed_on: date | None
    task_id: int = 0
    programme_id: int = 0


@dataclass
class StatsRow:
    key: str
    label: str
    counts: dict[StatusClass, int] = field(default_factory=lambda: dict.fromkeys(STATUS_ORDER, 0))

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def rate(self) -> float | None:
        return completion_rate(self.counts)


@dataclass(frozen=True)
class Stats:
    today: date
    total: StatsRow
    groups: list[StatsRow]
    units: list[StatsRow]


@dataclass(frozen=True)
class OverdueUnit:
    code: str
    name: str
    tasks: list[TaskStatus]


def _safe_cell(value: Any) -> Any:
    """Text that a spreadsheet would run as a formula is written as text."""
    if isinstance(value, str) and value[:1] in ("=", "+", "@"):
        return "'" + value
    return value


class OverviewService:
    def __init__(self, db: Database, clock: Clock, config: Config) -> None:
        self.db = db
        self.clock = clock
        self.config = config

    def today(self) -> date:
        return self.clock.now().astimezone(self.config.tz).date()

    def _local_day(self, at: datetime) -> date:
        return at.astimezone(self.config.tz).date()

    async def statuses(self, today: date | None = None, programme_id: int | None = None) -> list[TaskStatus]:
        """Every open task's status class on `today` (of one programme, or all), from its lead
        unit's reports."""
        today = today or self.today()
        async with self.db.reader() as session:
            tasks = await TaskRepository(session).all_open()
            if programme_id is not None:
                tasks = [t for t in tasks if t.programme_id == programme_id]
            lead = await ReportRepository(session).lead_progress(
                end_of_day(today, self.config.tz), [t.id for t in tasks]
            )
        result = []
        for task in tasks:
            progress = lead.get(task.id)
            done = progress.completed_on(self.config.tz) if progress else None
            result.append(
                TaskStatus(
                    task.code,
                    task.title,
                    task.group.code,
                    task.lead_unit.code,
                    task.lead_unit.name,
                    task.deadline,
                    classify_status(task.deadline, done, today),
                    done,
                    task.id,
                    task.programme_id,
                )
            )
        return result

    async def stats(self, today: date | None = None, programme_id: int | None = None) -> Stats:
        today = today or self.today()
        statuses = await self.statuses(today, programme_id)
        async with self.db.reader() as session:
            group_titles = {g.code: g.title for g in await TaskRepository(session).groups(programme_id)}
        groups: dict[str, StatsRow] = {code: StatsRow(code, title) for code, title in group_titles.items()}
        units: dict[str, StatsRow] = {}
        for status in statuses:
            groups.setdefault(status.group, StatsRow(status.group, status.group))
            units.setdefault(status.lead, StatsRow(status.lead, status.lead_name))
            groups[status.group].counts[status.status] += 1
            units[status.lead].counts[status.status] += 1
        total = StatsRow("", "", count_classes(s.status for s in statuses))
        return Stats(
            today, total, [g for g in groups.values() if g.total], sorted(units.values(), key=lambda u: u.key)
        )

    async def overdue(self, today: date | None = None, programme_id: int | None = None) -> list[OverdueUnit]:
        """Overdue tasks by lead unit, oldest deadline first (units too)."""
        statuses = await self.statuses(today, programme_id)
        late = [s for s in statuses if s.status is StatusClass.OPEN_OVERDUE]
        by_unit: dict[str, list[TaskStatus]] = defaultdict(list)
        for status in late:
            by_unit[status.lead].append(status)
        units = [
            OverdueUnit(
                code, tasks[0].lead_name, sorted(tasks, key=lambda s: (s.deadline or date.max, s.code))
            )
            for code, tasks in by_unit.items()
        ]
        return sorted(units, key=lambda u: (u.tasks[0].deadline or date.max, u.code))

    # --- export ----------------------------------------------------------------------------

    async def export_xlsx(self, programme_id: int | None = None) -> bytes:
        """One programme (by default the active one issued last) as a plan workbook: the
        programme, units, its groups and every task with its latest progress."""
        async with self.db.reader() as session:
            repo = TaskRepository(session)
            programme_id = programme_id or await repo.current_programme_id()
            programme = await ProgrammeRepository(session).by_id(programme_id) if programme_id else None
            units = await UnitRepository(session).all(active_only=False)
            unit_codes = {u.id: u.code for u in units}
            groups = await repo.groups(programme_id)
            tasks = [t for t in await repo.all() if t.programme_id == programme_id]
            latest = await ReportRepository(session).latest_for_tasks(t.id for t in tasks)
        statuses = {s.task_id: s for s in await self.statuses()}
        programme_rows = (
            [[_safe_cell(v) for v in programme_cells(programme)]] if programme is not None else []
        )
        sheets: list[tuple[str, list[list[Any]]]] = [
            ("programme", [list(PROGRAMME_COLUMNS), *programme_rows]),
            (
                "units",
                [["code", "name", "parent"]]
                + [[u.code, u.name, unit_codes.get(u.parent_id or 0, "")] for u in units],
            ),
            ("groups", [["code", "title"]] + [[_safe_cell(g.code), _safe_cell(g.title)] for g in groups]),
            (
                "tasks",
                [list(TASK_COLUMNS + PROGRESS_COLUMNS)]
                + [
                    [
                        _safe_cell(v)
                        for v in self._task_row(t, latest.get(t.id), statuses.get(t.id), unit_codes)
                    ]
                    for t in tasks
                ],
            ),
        ]
        # Written by openpyxl in a child process: it never stays in the bot.
        return await workbook_apart(sheets)

    def _task_row(
        self, task: Task, report: ProgressReport | None, status: TaskStatus | None, unit_codes: dict[int, str]
    ) -> list[Any]:
        plan = {
            "group": task.group.code,
            "group_title": task.group.title,
            "code": task.code,
            "title": task.title,
            "description": task.description,
            "legal_source": task.legal_source,
            "lead_unit": task.lead_unit.code,
            "coordinating_units": "; ".join(tu.unit.code for tu in task.coordinating),
            "deadline": task.deadline.strftime("%d/%m/%Y") if task.deadline else "",
            "expected_output": task.expected_output,
            "target_value": task.target_value,
            "target_unit": task.target_unit or "",
            "target_label": task.target_label or "",
        }
        progress = {
            "status_class": "closed" if task.closed_at else (status.status.value if status else ""),
            "progress_status": report.status if report else "",
            "progress_percent": report.percent if report else None,
            "progress_period": report.period if report else "",
            "progress_unit": unit_codes.get(report.unit_id, "") if report else "",
            "progress_reported_on": self._local_day(report.submitted_at).strftime("%d/%m/%Y")
            if report
            else "",
            "progress_results": report.results if report else "",
            "closed_reason": task.close_reason or "",
        }
        return [plan[c] for c in TASK_COLUMNS] + [progress[c] for c in PROGRESS_COLUMNS]

    async def export_reports_csv(self) -> bytes:
        """Every report (its latest revision) as UTF-8 CSV with a BOM, for Excel."""
        async with self.db.reader() as session:
            reports = await ReportRepository(session).everything()
            tasks = {t.id: t.code for t in await TaskRepository(session).all()}
            units = {u.id: u.code for u in await UnitRepository(session).all(active_only=False)}
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(
            [
                "task",
                "unit",
                "period",
                "revision",
                "status",
                "percent",
                "results",
                "difficulties",
                "proposals",
                "indicator_value",
                "evidence_ref",
                "submitted_at",
            ]
        )
        for report in reports:
            writer.writerow(
                [
                    _safe_cell(v)
                    for v in (
                        tasks.get(report.task_id, ""),
                        units.get(report.unit_id, ""),
                        report.period,
                        report.revision,
                        report.status,
                        report.percent,
                        report.results,
                        report.difficulties,
                        report.proposals,
                        "" if report.indicator_value is None else report.indicator_value,
                        report.evidence_ref,
                        report.submitted_at.astimezone(self.config.tz).isoformat(timespec="minutes"),
                    )
                ]
            )
        return ("\ufeff" + out.getvalue()).encode("utf-8")
