"""`tiendo demo`: the example programme, four simulated weeks of reports, every report format.

No Telegram at all: a fresh SQLite database in a temporary folder, the example programme
loaded, and four weeks of reports submitted through ReportingService with a FixedClock — some
tasks completed on time, some late, some stuck with proposals, a correction that takes a
completion back, and a few units that never report. The simulated weeks are the last two of
2024 and the first two of 2025, around the programme's 31/12/2024 deadlines.
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
from bot.services.report_render import FORMATS
from bot.services.reporting import ReportInput
from storage.db import Database
from storage.migrate import upgrade
from storage.repositories.tasks import TaskRepository

EXAMPLE = ROOT / "examples" / "programme-59-QD-BKHCN-2024.yaml"
# Mondays of the simulated weeks; the last period reported is the one holding the last Monday.
WEEKS = [date(2024, 12, 16), date(2024, 12, 23), date(2024, 12, 30), date(2025, 1, 6)]
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


async def simulate(services: Services) -> Period:
    """Load the example and submit four weeks of reports; returns the last simulated period."""
    config, db = services.config, services.db
    plan = await services.programme.read_plan(EXAMPLE.read_bytes(), EXAMPLE.name)
    await services.programme.apply(plan, actor="demo")
    rules = services.periods
    reporting = services.reporting
    async with db.reader() as session:
        tasks = await TaskRepository(session).all_open()
    rng = random.Random(59)
    leads = sorted({t.lead_unit.code for t in tasks})
    silent = set(rng.sample(leads, SILENT))
    dated = [t for t in tasks if t.deadline is not None]
    # The fate of each task with a deadline: completed on time, late, never (overdue) or stuck.
    fates = {t.id: ("on_time", "late", "open", "stuck")[i % 4] for i, t in enumerate(dated)}
    corrected = False
    for week, monday in enumerate(WEEKS):
        for task in tasks:
            lead = task.lead_unit
            if lead.code in silent:
                continue
            # Monday to Wednesday, office hours: inside the week's period (cut-off Thursday 17:00).
            when = _at(monday + timedelta(days=rng.randrange(3)), 8 + rng.randrange(9), config)
            fate = fates.get(task.id)
            status, percent = "in_progress", min(95, 20 * (week + 1) + rng.randrange(10))
            difficulties = proposals = ""
            if task.deadline is not None and task.deadline < date(2024, 12, 1):
                fate = fate or "open"  # the older deadlines have passed already
            if (fate == "on_time" and week >= 1) or (fate == "late" and week >= 3):
                status = "done"
            elif fate == "stuck" or (fate is None and rng.random() < 0.08):
                status, difficulties, proposals = "stuck", DIFFICULTIES, PROPOSALS
            elif week == 0 and rng.random() < 0.1:
                status, percent = "not_started", 0
            if rng.random() < 0.12 and status != "done" and fate is None:
                continue  # a unit that skipped this task this week
            await reporting.submit(
                ReportInput(
                    task_id=task.id,
                    unit_id=task.lead_unit_id,
                    reporter_user_id=None,
                    status=status,
                    percent=100 if status == "done" else percent,
                    results=RESULTS[week % len(RESULTS)].format(n=week + 1),
                    difficulties=difficulties,
                    proposals=proposals,
                    indicator_value=(task.target_value or 0) * (0.6 + 0.1 * week)
                    if task.target_value is not None
                    else None,
                ),
                at=when,
            )
            # One correction: a unit reports a task done, then takes it back the next day.
            if not corrected and week == 3 and fate == "open":
                await reporting.submit(
                    ReportInput(task.id, task.lead_unit_id, None, "done", 100, "Đã hoàn thành."),
                    at=when + timedelta(minutes=1),
                )
                await reporting.submit(
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
                corrected = True
            # Coordinating units report now and then.
            for coordinating in task.coordinating:
                if coordinating.unit.code not in silent and rng.random() < 0.3:
                    await reporting.submit(
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
    return rules.period_at(_at(WEEKS[-1], 12, config))


async def run_demo(config: Config, output: Path) -> DemoResult:
    with tempfile.TemporaryDirectory(prefix="tiendo-demo-") as folder:
        url = f"sqlite+aiosqlite:///{Path(folder) / 'demo.db'}"
        demo_config = config.with_overrides(source=None)
        clock = FixedClock(_at(WEEKS[0], 8, config))
        services = build_services(demo_config, clock=clock, db=Database(url))
        try:
            await upgrade(services.db)
            period = await simulate(services)
            clock.set(period.end + timedelta(hours=1))
            data = await services.digest.build(period)
            files = services.digest.write_files(data, output, formats=FORMATS)
        finally:
            await services.db.dispose()
    return DemoResult(period, list(files.values()))
