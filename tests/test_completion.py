"""The one definition of when a task was completed (bot/services/status.py): the repository query
every view uses agrees with status.completed_on over random report histories with corrections,
and migration 0007 fills in status_since from the revisions of existing reports."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from bot.clock import FixedClock
from bot.config import Config
from bot.services.periods import period_rule
from bot.services.programme import ProgrammeService
from bot.services.reporting import ReportingService, ReportInput
from bot.services.status import completed_on
from storage.db import Database
from storage.migrate import current_revision, downgrade, head_revision, upgrade
from storage.models import REPORT_STATUSES, ProgressReport, ReportRevision
from storage.repositories.reports import ReportRepository
from storage.repositories.tasks import TaskRepository

TASKS = 30


async def random_histories(
    db: Database, config: Config, seed: int
) -> tuple[dict[int, list[tuple[datetime, str]]], list[datetime]]:
    """TASKS tasks led by A (B coordinates), each with random submissions over ten weeks, several
    often in one week (corrections). Returns each task's lead submissions (time, status) and
    the ends of the weeks."""
    codes = [f"R{i}" for i in range(TASKS)]
    plan_text = (
        "programme: {code: TEST-1, title: Thử}\n"
        "units:\n  - {code: A, name: A}\n  - {code: B, name: B}\n"
        "groups:\n  - {code: '1', title: Nhóm}\ntasks:\n"
        + "".join(
            f"  - {{code: {code}, group: '1', title: Việc {code}, lead: A,"
            f" coordinating: [B], deadline: ongoing}}\n"
            for code in codes
        )
    )
    programme = ProgrammeService(db)
    plan = await programme.read_plan(plan_text.encode(), "plan.yaml")
    assert plan.ok, plan.errors
    await programme.apply(plan)
    async with db.reader() as session:
        tasks = await TaskRepository(session).by_codes(codes)
    rules = period_rule(config)
    weeks = [rules.by_key(f"2024-W{w:02d}") for w in range(2, 12)]
    service = ReportingService(db, FixedClock(weeks[0].start), rules)
    rng = random.Random(seed)
    lead: dict[int, list[tuple[datetime, str]]] = {}
    for task in tasks.values():
        lead[task.id] = []
        # Half-hour offsets never fall on a cut-off (a whole hour).
        hours = sorted(rng.sample(range(10 * 7 * 24), rng.randrange(1, 10)))
        for hour in hours:
            at = weeks[0].start + timedelta(hours=hour, minutes=30)
            unit = task.lead_unit_id if rng.random() < 0.8 else task.coordinating[0].unit_id
            status = rng.choice((*REPORT_STATUSES, "done", "done"))
            await service.submit(ReportInput(task.id, unit, None, status, 50, "x"), at=at)
            if unit == task.lead_unit_id:
                lead[task.id].append((at, status))
    return lead, [week.end for week in weeks]


async def test_the_query_agrees_with_the_definition(db: Database, config: Config) -> None:
    lead, ends = await random_histories(db, config, seed=59)
    async with db.reader() as session:
        corrections = len(
            list(await session.scalars(select(ProgressReport.id).where(ProgressReport.revision > 1)))
        )
        for moment in ends:
            found = await ReportRepository(session).lead_progress(moment, list(lead))
            for task_id, submissions in lead.items():
                upto = [(at, status) for at, status in submissions if at <= moment]
                progress = found.get(task_id)
                assert (progress is not None) == bool(upto), (task_id, moment)
                assert (progress.completed_at if progress else None) == completed_on(upto), (
                    task_id,
                    moment,
                    upto,
                )
                if progress is not None:
                    assert progress.status == upto[-1][1]
                    assert progress.submitted_at == upto[-1][0]
    assert corrections > 10  # the histories did exercise corrections


async def test_migration_0007_fills_status_since_from_the_revisions(db: Database, config: Config) -> None:
    await random_histories(db, config, seed=7)
    async with db.reader() as session:
        kept = dict(
            (await session.execute(select(ProgressReport.id, ProgressReport.status_since))).tuples().all()
        )
        revisions = await session.scalar(select(func.count()).select_from(ReportRevision))
    # Back to 0006 (the column goes), then up again: the backfill recomputes every value.
    await downgrade(db, "0006")
    assert await current_revision(db) == "0006"
    await upgrade(db)
    assert await current_revision(db) == head_revision()
    async with db.reader() as session:
        again = dict(
            (await session.execute(select(ProgressReport.id, ProgressReport.status_since))).tuples().all()
        )
        # Neither migration copies the table (which would cascade to the revisions).
        assert await session.scalar(select(func.count()).select_from(ReportRevision)) == revisions
    assert again == kept and len(kept) > TASKS


async def test_reports_without_revisions_count_as_one_submission(db: Database, config: Config) -> None:
    """Rows written without revisions (bulk loads) are filled from the report itself."""
    await random_histories(db, config, seed=3)
    async with db.transaction() as session:
        await session.execute(update(ProgressReport).values(status_since=datetime(2000, 1, 1, tzinfo=UTC)))
    async with db.engine.begin() as conn:
        await conn.exec_driver_sql("DELETE FROM report_revisions")
    await downgrade(db, "0006")
    await upgrade(db)
    async with db.reader() as session:
        rows = (
            await session.execute(
                select(
                    ProgressReport.task_id,
                    ProgressReport.unit_id,
                    ProgressReport.submitted_at,
                    ProgressReport.status,
                    ProgressReport.status_since,
                ).order_by(ProgressReport.task_id, ProgressReport.unit_id, ProgressReport.submitted_at)
            )
        ).all()
    previous: tuple[int, int, str, datetime] | None = None
    for task_id, unit_id, at, status, since in rows:
        if previous and previous[:3] == (task_id, unit_id, status):
            assert since == previous[3]
        else:
            assert since == at
        previous = (task_id, unit_id, status, since)
