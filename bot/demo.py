"""`tiendo demo`: two programmes, the year rollover, four simulated weeks, every report format.

No Telegram at all: a fresh SQLite database in a temporary folder, the 2024 example programme
and the next year's (its content assumed, as its file says) loaded, and four weeks of reports
submitted through ReportingService with a FixedClock. The simulated weeks are the last two of
2024 and the first two of 2025: in the first three the 2024 programme's units report (some
tasks completed on time, some late, some stuck with proposals, a correction that takes a
completion back, a few units that never report); at the first cut-off of 2025 the 2024
programme is closed (its completion figures kept), and in the fourth week the units report on
the 2025 programme, whose tasks carry the same codes 1.1, 2.1 … Each programme's report is
written in every format.
"""

from __future__ import annotations

import random
import tempfile
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from bot.clock import FixedClock
from bot.config import ROOT, Config
from bot.services.container import Services, build_services
from bot.services.periods import Period
from bot.services.programme import ProgrammeService
from bot.services.report_render import FORMATS
from bot.services.reporting import ReportingService, ReportInput
from handlers.wording import TelegramWording
from storage.db import Database
from storage.migrate import upgrade
from storage.models import Task
from storage.repositories.programmes import ProgrammeRepository
from storage.repositories.tasks import TaskRepository

EXAMPLE = ROOT / "examples" / "programme-59-QD-BKHCN-2024.yaml"
NEXT_YEAR = ROOT / "examples" / "programme-12-QD-BKHCN-2025.yaml"
# Mondays of the simulated weeks; the last period reported is the one holding the last Monday.
WEEKS = [date(2024, 12, 16), date(2024, 12, 23), date(2024, 12, 30), date(2025, 1, 6)]
# The 2024 programme is reported in the first three weeks and closed at the next cut-off.
OLD_WEEKS = 3
SILENT = 3  # units that never report

RESULTS = [
    "Đã tổ chức họp với các đơn vị liên quan và hoàn thiện dự thảo lần {n}.",
    "Đã gửi lấy ý kiến các Bộ, ngành; tổng hợp được {n} ý kiến góp ý.",
    "Đang rà soát, chỉnh lý hồ sơ theo ý kiến của Lãnh đạo Bộ (bước {n}).",
]
DIFFICULTIES = "Chưa nhận đủ ý kiến góp ý của các địa phương; kinh phí năm 2025 chưa được giao."
PROPOSALS = "Đề nghị Văn phòng Bộ đôn đốc các đơn vị gửi ý kiến trước ngày 10/01/2025 & bố trí kinh phí."


@dataclass(frozen=True)
class DemoResult:
    period: Period
    paths: list[Path]


def _at(day: date, hour: int, config: Config) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=config.tz).astimezone(UTC)


@dataclass
class _Week:
    """One simulated week of one programme's reports."""

    reporting: ReportingService
    rng: random.Random
    config: Config
    index: int  # 0 .. the programme's weeks
    monday: date
    silent: set[str]
    fates: dict[int, str]
    corrected: bool = False


async def _load(db: Database, service: ProgrammeService, path: Path) -> list[Task]:
    plan = await service.read_plan(path.read_bytes(), path.name)
    await service.apply(plan, actor="demo")
    assert plan.programme is not None
    async with db.reader() as session:
        programme = await ProgrammeRepository(session).by_code(plan.programme.code)
        assert programme is not None
        return [t for t in await TaskRepository(session).all_open() if t.programme_id == programme.id]


def _fates(tasks: list[Task]) -> dict[int, str]:
    """The fate of each task with a deadline: completed on time, late, never (overdue) or stuck."""
    dated = [t for t in tasks if t.deadline is not None]
    return {t.id: ("on_time", "late", "open", "stuck")[i % 4] for i, t in enumerate(dated)}


def _status(week: _Week, task: Task) -> tuple[str, str | None, int]:
    """(status, fate, percent) of the task's lead report this week."""
    rng, fate = week.rng, week.fates.get(task.id)
    status, percent = "in_progress", min(95, 20 * (week.index + 1) + rng.randrange(10))
    if task.deadline is not None and task.deadline < WEEKS[0] - timedelta(days=15):
        fate = fate or "open"  # the older deadlines have passed already
    if (fate == "on_time" and week.index >= 1) or (fate == "late" and week.index >= 2):
        status = "done"
    elif fate == "stuck" or (fate is None and rng.random() < 0.08):
        status = "stuck"
    elif week.index == 0 and rng.random() < 0.1:
        status, percent = "not_started", 0
    return status, fate, percent


async def _report_task(week: _Week, task: Task) -> None:
    rng = week.rng
    # Monday to Wednesday, office hours: inside the week's period (cut-off Thursday 17:00).
    when = _at(week.monday + timedelta(days=rng.randrange(3)), 8 + rng.randrange(9), week.config)
    status, fate, percent = _status(week, task)
    if rng.random() < 0.12 and status != "done" and fate is None:
        return  # a unit that skipped this task this week
    stuck = status == "stuck"
    await week.reporting.submit(
        ReportInput(
            task_id=task.id,
            unit_id=task.lead_unit_id,
            reporter_user_id=None,
            status=status,
            percent=100 if status == "done" else percent,
            results=RESULTS[week.index % len(RESULTS)].format(n=week.index + 1),
            difficulties=DIFFICULTIES if stuck else "",
            proposals=PROPOSALS if stuck else "",
            indicator_value=(task.target_value or 0) * (0.6 + 0.1 * week.index)
            if task.target_value is not None
            else None,
        ),
        at=when,
    )
    if not week.corrected and week.index == OLD_WEEKS - 1 and fate == "open":
        await _correction(week, task, when)
    await _coordinating(week, task, when, percent)


async def _correction(week: _Week, task: Task, when: datetime) -> None:
    """A unit reports a task done, then takes it back the next minute."""
    await week.reporting.submit(
        ReportInput(task.id, task.lead_unit_id, None, "done", 100, "Đã hoàn thành."),
        at=when + timedelta(minutes=1),
    )
    await week.reporting.submit(
        ReportInput(
            task.id,
            task.lead_unit_id,
            None,
            "in_progress",
            90,
            "Đính chính: còn chờ ký ban hành <văn bản> & công bố.",
        ),
        at=when + timedelta(minutes=2),
    )
    week.corrected = True


async def _coordinating(week: _Week, task: Task, when: datetime, percent: int) -> None:
    """Coordinating units report now and then."""
    for coordinating in task.coordinating:
        if coordinating.unit.code not in week.silent and week.rng.random() < 0.3:
            await week.reporting.submit(
                ReportInput(
                    task.id,
                    coordinating.unit_id,
                    None,
                    "in_progress",
                    percent,
                    "Đã gửi ý kiến phối hợp cho đơn vị chủ trì.",
                ),
                at=when,
            )


async def _report_weeks(
    reporting: ReportingService, config: Config, tasks: list[Task], mondays: list[date], rng: random.Random
) -> None:
    leads = sorted({t.lead_unit.code for t in tasks})
    silent = set(rng.sample(leads, SILENT))
    fates = _fates(tasks)
    corrected = False
    for index, monday in enumerate(mondays):
        week = _Week(reporting, rng, config, index, monday, silent, fates, corrected)
        for task in tasks:
            if task.lead_unit.code not in silent:
                await _report_task(week, task)
        corrected = week.corrected


async def simulate(services: Services) -> Period:
    """Load both programmes, report on the 2024 one for three weeks, close it at the first
    cut-off of 2025, report on the 2025 one in the fourth week; returns the last period."""
    config, db, clock = services.config, services.db, services.clock
    assert isinstance(clock, FixedClock)
    old = await _load(db, services.programme, EXAMPLE)
    new = await _load(db, services.programme, NEXT_YEAR)
    rules, reporting = services.periods, services.reporting
    rng = random.Random(59)
    await _report_weeks(reporting, config, old, WEEKS[:OLD_WEEKS], rng)
    # Closed just before the first cut-off of 2025: its final report is that period's.
    clock.set(rules.period_at(_at(WEEKS[OLD_WEEKS - 1], 12, config)).end - timedelta(hours=1))
    await services.digest.programmes.close(EXAMPLE_CODE, "Chương trình năm 2024 kết thúc", actor="demo")
    await _report_weeks(reporting, config, new, WEEKS[OLD_WEEKS:], rng)
    return rules.period_at(_at(WEEKS[-1], 12, config))


EXAMPLE_CODE = "QD-59-BKHCN-2024"


async def run_demo(config: Config, output: Path) -> DemoResult:
    with tempfile.TemporaryDirectory(prefix="tiendo-demo-") as folder:
        url = f"sqlite+aiosqlite:///{Path(folder) / 'demo.db'}"
        demo_config = config.with_overrides(source=None)
        clock = FixedClock(_at(WEEKS[0], 8, config))
        services = build_services(demo_config, wording=TelegramWording, clock=clock, db=Database(url))
        try:
            await upgrade(services.db)
            period = await simulate(services)
            clock.set(period.end + timedelta(hours=1))
            data_service = services.digest
            paths: list[Path] = []
            for programme in await data_service.programmes.all():
                shown = data_service.period(None, programme) if programme.closed else period
                data = await data_service.build(shown, programme=programme)
                paths += data_service.write_files(data, output, formats=FORMATS).values()
        finally:
            await services.db.dispose()
    return DemoResult(period, paths)
