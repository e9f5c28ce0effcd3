"""Aggregation against hand-computed expectations (see tests/report_fixture.py)."""

from __future__ import annotations

from datetime import date, timedelta

from bot.clock import FixedClock
from bot.config import Config
from bot.services.periods import period_rule
from bot.services.programme import ProgrammeService
from bot.services.report_data import Counts, ReportBuilder
from bot.services.reporting import ReportingService, ReportInput
from bot.services.status import StatusClass as S
from storage.db import Database
from storage.repositories.tasks import TaskRepository
from tests.report_fixture import load_fixture, local


async def build(db: Database, config: Config, unit: str | None = None, key: str = "2024-W05"):
    await load_fixture(db, config)
    rules = period_rule(config)
    return await ReportBuilder(db, rules, config.tz).build(rules.by_key(key), unit)


async def test_each_boundary_gets_its_class(db: Database, config: Config) -> None:
    data = await build(db, config)
    classes = {task.code: task.status for task in data.tasks}
    assert classes == {
        "T1": S.DONE_ON_TIME,  # completed on the deadline day
        "T2": S.DONE_LATE,  # completed the day after
        "T3": S.OPEN_WITHIN,  # due today (the period's last day), not completed
        "T4": S.OPEN_OVERDUE,  # due yesterday; a coordinating unit's "done" does not count
        "T5": S.OPEN_WITHIN,  # ongoing
        "T6": S.OPEN_OVERDUE,  # "done" corrected to "in progress"
        "T7": S.OPEN_WITHIN,  # ongoing, never reported
        "T8": S.DONE_ON_TIME,  # completed before this period
    }
    assert data.period == "2024-W05" and data.previous_period == "2024-W04"
    assert (data.start, data.end) == (date(2024, 1, 25), date(2024, 2, 1))
    assert data.totals == Counts(done_on_time=2, done_late=1, open_within=3, open_overdue=2)
    assert data.totals.total == 8
    assert data.totals.rate == 3 / 5
    t2 = next(t for t in data.tasks if t.code == "T2")
    assert t2.completed_on == date(2024, 1, 31) and t2.percent == 100


async def test_compliance_lists_the_unit_that_reported_nothing(db: Database, config: Config) -> None:
    data = await build(db, config)
    # E's only open task was completed before the period: E is not expected to report.
    assert [u.code for u in data.compliance.expected] == ["A", "B", "C", "D"]
    assert [u.code for u in data.compliance.reported] == ["A", "B", "C"]
    assert [u.code for u in data.compliance.silent] == ["D"]


async def test_groups_overdue_stuck_and_task_fields(db: Database, config: Config) -> None:
    data = await build(db, config)
    assert [(g.code, [t.code for t in g.tasks]) for g in data.groups] == [
        ("1", ["T1", "T2", "T6", "T8"]),
        ("2", ["T3", "T4", "T5", "T7"]),
    ]
    assert data.groups[0].counts == Counts(2, 1, 0, 1)
    assert [(u.unit.code, [t.code for t in u.tasks]) for u in data.overdue_by_unit] == [
        ("B", ["T4"]),
        ("C", ["T6"]),
    ]
    (stuck,) = data.stuck
    assert stuck.code == "T5" and stuck.proposals == "Đề nghị bổ sung <kinh phí> năm 2024"
    assert stuck.difficulties == "Thiếu kinh phí & nhân lực"
    t6 = next(t for t in data.tasks if t.code == "T6")
    assert (t6.target_value, t6.value, t6.percent, t6.report_status) == (85.0, 80.0, 90, "in_progress")
    assert t6.results == "Kết quả T6" and t6.reported_this_period
    t7 = next(t for t in data.tasks if t.code == "T7")
    assert (t7.report_status, t7.percent, t7.results, t7.reported_this_period) == (None, None, "", False)
    t4 = next(t for t in data.tasks if t.code == "T4")
    assert t4.coordinating == ("C",) and t4.lead.name == "Vụ Pháp chế <PC>"
    assert [(u.unit.code, u.counts.total) for u in data.unit_totals] == [
        ("A", 2),
        ("B", 2),
        ("C", 2),
        ("D", 1),
        ("E", 1),
    ]


async def test_changes_since_the_previous_period(db: Database, config: Config) -> None:
    data = await build(db, config)
    assert [(c.code, c.before, c.after) for c in data.changes.statuses] == [
        ("T1", S.OPEN_WITHIN, S.DONE_ON_TIME),
        ("T2", S.OPEN_WITHIN, S.DONE_LATE),
        ("T4", S.OPEN_WITHIN, S.OPEN_OVERDUE),
        ("T6", S.OPEN_WITHIN, S.OPEN_OVERDUE),
    ]
    assert [t.code for t in data.changes.new_tasks] == ["T7"]
    assert [t.code for t in data.changes.closed_tasks] == ["T9"]
    (deadline,) = data.changes.deadlines
    assert (deadline.code, deadline.before, deadline.after) == ("T3", date(2024, 2, 10), date(2024, 2, 1))


async def test_the_previous_period_is_evaluated_at_its_own_end(db: Database, config: Config) -> None:
    data = await build(db, config, key="2024-W04")
    classes = {task.code: task.status for task in data.tasks}
    assert classes["T8"] is S.DONE_ON_TIME and classes["T1"] is S.OPEN_WITHIN
    assert classes["T6"] is S.OPEN_WITHIN  # its deadline (29/1) was still ahead on 25/1
    assert "T9" in classes  # closed only later
    # T8 was reported on 18/1, before 2024-W04 began: nobody reported in that week.
    assert data.compliance.reported == []
    assert [u.code for u in data.compliance.silent] == ["A", "B", "C", "D", "E"]


async def test_a_unit_scope_holds_the_tasks_it_leads_or_coordinates(db: Database, config: Config) -> None:
    data = await build(db, config, unit="C")
    assert data.scope is not None and data.scope.code == "C"
    assert sorted(t.code for t in data.tasks) == ["T4", "T5", "T6"]
    assert data.totals == Counts(0, 0, 1, 2)
    assert [u.code for u in data.compliance.expected] == ["C"]
    assert data.compliance.silent == []


async def test_an_open_period_is_reported_as_of_now(db: Database, config: Config) -> None:
    await load_fixture(db, config)
    rules = period_rule(config)
    period = rules.by_key("2024-W05")
    data = await ReportBuilder(db, rules, config.tz).build(
        period, as_of=period.end - timedelta(days=2)
    )  # Tuesday 30/1
    classes = {task.code: task.status for task in data.tasks}
    assert classes["T1"] is S.DONE_ON_TIME
    assert classes["T2"] is S.OPEN_WITHIN  # its completion (31/1) has not happened yet
    assert classes["T4"] is S.OPEN_WITHIN


async def test_a_task_still_stuck_keeps_its_proposals_in_a_quiet_week(db: Database, config: Config) -> None:
    data = await build(db, config, key="2024-W06")
    (stuck,) = data.stuck
    assert stuck.code == "T5" and not stuck.reported_this_period
    assert (stuck.proposals, stuck.last_proposals) == ("", "Đề nghị bổ sung <kinh phí> năm 2024")
    # A completed both its tasks in 2024-W05: it is not expected to report any more.
    assert [u.code for u in data.compliance.silent] == ["B", "C", "D"]


CORRECTIONS_PLAN = """
programme: {code: TEST-1, title: "Chương trình thử", decision: "1/QĐ-TEST", issued: 2024-01-02}
units:
  - {code: A, name: "Vụ A"}
groups:
  - {code: "1", title: "Nhóm một"}
tasks:
  - {code: K1, group: "1", title: "Sửa lỗi gõ, vẫn hoàn thành", lead: A, deadline: 2024-02-05}
  - {code: K2, group: "1", title: "Hoàn thành sửa thành đang làm", lead: A, deadline: 2024-02-05}
  - {code: K3, group: "1", title: "Đang làm sửa thành hoàn thành", lead: A, deadline: 2024-02-05}
  - {code: K4, group: "1", title: "Hoàn thành tuần trước, tuần này nhắc lại", lead: A,
     deadline: 2024-02-05}
  - {code: K5, group: "1", title: "Tuần này đang làm, sửa lại thành hoàn thành", lead: A,
     deadline: 2024-02-05}
"""


async def test_a_correction_moves_the_completion_only_when_it_changes_the_status(
    db: Database, config: Config
) -> None:
    """Deadlines Monday 5/2/2024; 2024-W06 runs from Thu 1/2 17:00 to Thu 8/2 17:00, so a
    report on Tue 6/2 corrects that of Mon 5/2."""
    programme = ProgrammeService(db)
    plan = await programme.read_plan(CORRECTIONS_PLAN.encode(), "plan.yaml")
    assert plan.ok, plan.errors
    await programme.apply(plan)
    async with db.reader() as session:
        tasks = await TaskRepository(session).by_codes(["K1", "K2", "K3", "K4", "K5"])
    service = ReportingService(db, FixedClock(local(29)), period_rule(config))
    for code, status, at in (
        ("K1", "done", local(5, month=2)),
        ("K1", "done", local(6, month=2)),
        ("K2", "done", local(5, month=2)),
        ("K2", "in_progress", local(6, month=2)),
        ("K3", "in_progress", local(5, month=2)),
        ("K3", "done", local(6, month=2)),
        ("K4", "done", local(31)),
        ("K4", "done", local(6, month=2)),
        ("K5", "done", local(31)),
        ("K5", "in_progress", local(5, month=2)),
        ("K5", "done", local(6, month=2)),
    ):
        task = tasks[code]
        await service.submit(
            ReportInput(task.id, task.lead_unit_id, None, status, 60, f"{code} {status}"), at=at
        )
    rules = period_rule(config)
    data = await ReportBuilder(db, rules, config.tz).build(rules.by_key("2024-W06"))
    lines = {t.code: (t.status, t.completed_on, t.report_status) for t in data.tasks}
    assert lines == {
        "K1": (S.DONE_ON_TIME, date(2024, 2, 5), "done"),  # the correction kept "done"
        "K2": (S.OPEN_OVERDUE, None, "in_progress"),  # "done" corrected to in progress
        "K3": (S.DONE_LATE, date(2024, 2, 6), "done"),  # completed by the correction
        "K4": (S.DONE_ON_TIME, date(2024, 1, 31), "done"),  # "done" repeated a week later
        # Done in 2024-W05, reopened on 5/2 and completed again by the correction of 6/2.
        "K5": (S.DONE_LATE, date(2024, 2, 6), "done"),
    }
    assert data.totals == Counts(done_on_time=2, done_late=2, open_within=0, open_overdue=1)
    # The previous period, as of its end: K4 and K5 were done, the others not yet reported.
    before = await ReportBuilder(db, rules, config.tz).build(rules.by_key("2024-W05"))
    assert {t.code: t.completed_on for t in before.tasks} == {
        "K1": None,
        "K2": None,
        "K3": None,
        "K4": date(2024, 1, 31),
        "K5": date(2024, 1, 31),
    }
