"""Deadline nudges and period reminders, with an injected clock: each offset, shifts out of
weekends and holidays, snooze, cancellation, crash and downtime recovery, collapsing."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, select, update

from bot.config import Config
from bot.services.reporting import ReportInput
from storage.models import Membership, OutboxMessage, Task, TaskGroup, TaskUnit, Unit, User
from tests.support.harness import Harness

HN = ZoneInfo("Asia/Ho_Chi_Minh")
FOCAL, LEADER, OTHER = 801, 802, 803


def hanoi(*args: int) -> datetime:
    return datetime(*args, tzinfo=HN).astimezone(UTC)  # type: ignore[misc]


@pytest.fixture
async def bot(harness: Harness) -> Harness:
    """The harness with a unit TST (a focal point and a leader) and no pacing delays."""
    harness.services.pacer.private_interval = 0.0
    async with harness.services.db.transaction() as session:
        unit = Unit(code="TST", name="Phòng Thử nghiệm")
        session.add(unit)
        await session.flush()
        for telegram_id, role, name in ((FOCAL, "focal", "Lan"), (LEADER, "leader", "Minh")):
            user = User(telegram_id=telegram_id, first_name=name)
            session.add(user)
            await session.flush()
            session.add(Membership(user_id=user.id, unit_id=unit.id, role=role))
        session.add(User(telegram_id=OTHER, first_name="Hoa"))
    for telegram_id, name in ((FOCAL, "Lan"), (LEADER, "Minh"), (OTHER, "Hoa")):
        harness.api.user(telegram_id, name)
    return harness


async def add_task(bot: Harness, deadline: date | None, code: str = "T.1") -> int:
    async with bot.services.db.transaction() as session:
        unit_id = await session.scalar(select(Unit.id).where(Unit.code == "TST"))
        group_id, programme_id = (
            await session.execute(select(TaskGroup.id, TaskGroup.programme_id).limit(1))
        ).one()
        task = Task(
            programme_id=programme_id,
            code=code,
            group_id=group_id,
            title=f"Nhiệm vụ <thử> {code}",
            lead_unit_id=unit_id,
            deadline=deadline,
        )
        session.add(task)
        await session.flush()
        return task.id


async def tick(bot: Harness, at: datetime, *, periods: bool = False) -> None:
    """Time passes to `at`; the planning job (deadline nudges, and period reminders if asked)
    and the dispatcher run."""
    bot.clock.set(at)
    await bot.services.nudges.plan()
    if periods:
        await bot.services.nudges.plan_period_reminders()
    await bot.dispatch()


def texts(bot: Harness, chat: int) -> list[str]:
    return [m.plain_text or "" for m in bot.api.sent(chat)]


async def outbox_rows(bot: Harness, kind: str | None = None) -> list[OutboxMessage]:
    async with bot.services.db.reader() as session:
        query = select(OutboxMessage).order_by(OutboxMessage.id)
        if kind:
            query = query.where(OutboxMessage.kind == kind)
        return list(await session.scalars(query))


async def unit_id(bot: Harness) -> int:
    async with bot.services.db.reader() as session:
        found = await session.scalar(select(Unit.id).where(Unit.code == "TST"))
        assert found is not None
        return found


async def test_each_offset_goes_out_once_at_its_working_time(bot: Harness) -> None:
    # Deadline Friday 15/3/2024: 7, 3 and 1 working days before are 6/3, 12/3 and 14/3;
    # overdue by 2, 4 and 6 working days on 19/3, 21/3 and 25/3.
    task_id = await add_task(bot, date(2024, 3, 15))
    await tick(bot, hanoi(2024, 3, 6, 8, 59))
    assert texts(bot, FOCAL) == []
    expected = [
        ((2024, 3, 6, 9, 0), "còn 7 ngày làm việc"),
        ((2024, 3, 12, 9, 0), "còn 3 ngày làm việc"),
        ((2024, 3, 14, 9, 0), "còn 1 ngày làm việc"),
        ((2024, 3, 15, 9, 0), "Hôm nay là hạn"),
        ((2024, 3, 19, 9, 0), "Quá hạn 2 ngày làm việc"),
        ((2024, 3, 21, 9, 0), "Quá hạn 4 ngày làm việc"),
        ((2024, 3, 25, 9, 0), "Quá hạn 6 ngày làm việc"),
    ]
    for count, (moment, words) in enumerate(expected, start=1):
        await tick(bot, hanoi(*moment))
        await tick(bot, hanoi(*moment) + timedelta(hours=3))  # planning again sends nothing
        assert len(texts(bot, FOCAL)) == count, moment
        assert words in texts(bot, FOCAL)[-1]
    last = bot.api.sent(FOCAL)[-1]
    assert "Nhiệm vụ <thử> T.1" in (last.plain_text or "")  # escaped HTML, shown as written
    assert "Phòng Thử nghiệm" in (last.plain_text or "") and "15/03/2024" in (last.plain_text or "")
    assert last.button_data("Báo cáo ngay") == f"rp:start:{task_id}"
    rows = {r.telegram_message_id: r for r in await outbox_rows(bot, "nudge")}
    assert last.button_data("Nhắc lại sau") == f"ng:snooze:{rows[last.message_id].id}"
    # Escalation: from 3 working days overdue the unit's leader is told too.
    assert [t.split(":")[0] for t in texts(bot, LEADER)] == ["⚠️ Báo cáo lãnh đạo đơn vị"] * 2
    assert "quá hạn 4 ngày làm việc" in texts(bot, LEADER)[0]
    keys = sorted(r.dedup_key for r in await outbox_rows(bot, "nudge"))
    assert any(k.startswith(f"nudge:{task_id}:v1:b7:") for k in keys)
    assert len(keys) == len(set(keys)) == 9  # 7 to the focal point, 2 to the leader


async def test_last_reported_percent_is_shown(bot: Harness) -> None:
    task_id = await add_task(bot, date(2024, 3, 15))
    bot.clock.set(hanoi(2024, 3, 1, 10, 0))
    await bot.services.reporting.submit(
        ReportInput(task_id, await unit_id(bot), None, "in_progress", 40, "đang làm")
    )
    await tick(bot, hanoi(2024, 3, 6, 9, 0))
    assert "Tiến độ báo cáo gần nhất: 40%" in texts(bot, FOCAL)[-1]


async def test_a_weekend_deadline_moves_to_monday(bot: Harness) -> None:
    nudges = bot.services.nudges
    saturday = date(2024, 3, 16)
    offset = nudges.current_offset(saturday, hanoi(2024, 3, 16, 12, 0))
    assert offset is not None and offset.name == "b1" and offset.slot == hanoi(2024, 3, 15, 9, 0)
    assert nudges.current_offset(saturday, hanoi(2024, 3, 18, 7, 59)).name == "b1"  # type: ignore[union-attr]
    offset = nudges.current_offset(saturday, hanoi(2024, 3, 18, 8, 0))
    assert offset is not None and offset.name == "d0" and offset.slot == hanoi(2024, 3, 18, 8, 0)
    await add_task(bot, saturday)
    await tick(bot, hanoi(2024, 3, 15, 9, 0))
    assert [t.split("\n")[0] for t in texts(bot, FOCAL)] == [
        "⏰ Nhắc việc: nhiệm vụ T.1 — Nhiệm vụ <thử> T.1"
    ]
    await tick(bot, hanoi(2024, 3, 16, 9, 0))  # the deadline, a Saturday: nothing goes out
    await tick(bot, hanoi(2024, 3, 17, 15, 0))
    assert len(texts(bot, FOCAL)) == 1
    await tick(bot, hanoi(2024, 3, 18, 8, 0))
    assert len(texts(bot, FOCAL)) == 2 and "Hôm nay là hạn" in texts(bot, FOCAL)[-1]


async def test_tet_2025_holds_nudges_until_work_resumes(bot: Harness) -> None:
    nudges = bot.services.nudges
    deadline = date(2025, 1, 31)  # the third day of Tết
    b1 = nudges.current_offset(deadline, hanoi(2025, 1, 24, 9, 0))
    assert b1 is not None and b1.name == "b1"  # the last working day before Tết
    d0 = nudges.current_offset(deadline, hanoi(2025, 2, 3, 8, 0))
    assert d0 is not None and d0.name == "d0" and d0.slot == hanoi(2025, 2, 3, 8, 0)
    assert nudges.current_offset(deadline, hanoi(2025, 2, 2, 23, 0)).name == "b1"  # type: ignore[union-attr]
    await add_task(bot, deadline)
    await tick(bot, hanoi(2025, 1, 24, 16, 59))
    assert len(texts(bot, FOCAL)) == 1
    await tick(bot, hanoi(2025, 1, 29, 9, 0))  # Mùng 1 Tết
    await tick(bot, hanoi(2025, 1, 31, 9, 0))  # the deadline, still Tết
    assert len(texts(bot, FOCAL)) == 1
    await tick(bot, hanoi(2025, 2, 3, 8, 0))
    assert len(texts(bot, FOCAL)) == 2 and "Hôm nay là hạn" in texts(bot, FOCAL)[-1]


async def test_reunification_day_moves_to_the_next_working_day(bot: Harness) -> None:
    nudges = bot.services.nudges
    offset = nudges.current_offset(date(2025, 4, 30), hanoi(2025, 5, 5, 8, 0))
    assert offset is not None and offset.name == "d0" and offset.slot == hanoi(2025, 5, 5, 8, 0)
    assert nudges.current_offset(date(2025, 4, 30), hanoi(2025, 5, 2, 9, 0)).name == "b1"  # type: ignore[union-attr]
    await add_task(bot, date(2025, 4, 30))
    await tick(bot, hanoi(2025, 4, 29, 9, 0))
    await tick(bot, hanoi(2025, 4, 30, 9, 0))
    await tick(bot, hanoi(2025, 5, 2, 9, 0))
    assert len(texts(bot, FOCAL)) == 1
    await tick(bot, hanoi(2025, 5, 5, 8, 0))
    assert "Hôm nay là hạn" in texts(bot, FOCAL)[-1]


async def test_a_swapped_working_saturday_counts(config: Config) -> None:
    from bot.services.container import build_services
    from handlers.wording import TelegramWording

    swapped = config.with_overrides(work={"working_weekend_days": ["2025-04-26"]})
    nudges = build_services(swapped, wording=TelegramWording).nudges
    offset = nudges.current_offset(date(2025, 4, 28), hanoi(2025, 4, 26, 9, 0))
    assert offset is not None and offset.name == "b1" and offset.slot == hanoi(2025, 4, 26, 9, 0)


async def test_snooze_reminds_again_one_working_day_later(bot: Harness) -> None:
    await add_task(bot, date(2024, 3, 15))
    await tick(bot, hanoi(2024, 3, 8, 10, 30))  # Friday: the 7-day nudge (due 6/3) goes out
    (nudge,) = bot.api.sent(FOCAL)
    await bot.press(FOCAL, nudge.message_id, nudge.button_data("Nhắc lại sau"))
    await bot.press(FOCAL, nudge.message_id, nudge.button_data("Nhắc lại sau"))  # twice: once
    answers = bot.api.answered_callbacks
    assert [a.text for a in answers] == ["Sẽ nhắc lại lúc 10:30 11/03/2024."] * 2
    await tick(bot, hanoi(2024, 3, 11, 10, 29))
    assert len(bot.api.sent(FOCAL)) == 1
    await tick(bot, hanoi(2024, 3, 11, 10, 30))
    assert len(bot.api.sent(FOCAL)) == 2
    assert bot.api.sent(FOCAL)[1].plain_text == nudge.plain_text
    assert len(await outbox_rows(bot, "nudge_snooze")) == 1


async def test_a_later_offset_supersedes_a_snoozed_nudge(bot: Harness) -> None:
    await add_task(bot, date(2024, 3, 15))
    await tick(bot, hanoi(2024, 3, 14, 9, 0))  # "1 working day left"
    (nudge,) = bot.api.sent(FOCAL)
    await bot.press(FOCAL, nudge.message_id, nudge.button_data("Nhắc lại sau"))  # to 15/3 9:00
    await tick(bot, hanoi(2024, 3, 15, 9, 0))  # the day's own nudge is due at the same time
    assert len(texts(bot, FOCAL)) == 2 and "Hôm nay là hạn" in texts(bot, FOCAL)[-1]
    assert [r.state for r in await outbox_rows(bot, "nudge_snooze")] == ["cancelled"]


async def test_snooze_refuses_forged_and_foreign_buttons(bot: Harness) -> None:
    await add_task(bot, date(2024, 3, 15))
    await tick(bot, hanoi(2024, 3, 6, 9, 0))
    (nudge,) = bot.api.sent(FOCAL)
    data = nudge.button_data("Nhắc lại sau")
    (reply,) = await bot.send(OTHER, "/start")
    await bot.press(OTHER, reply.message_id, data, check=False)  # someone else's nudge
    await bot.press(FOCAL, nudge.message_id, "ng:snooze:999999", check=False)
    await bot.press(FOCAL, nudge.message_id, "ng:snooze:x'; DROP", check=False)
    answers = bot.api.answered_callbacks
    assert [(a.text, a.show_alert) for a in answers] == [("Không hoãn được nhắc việc này.", True)] * 3
    assert await outbox_rows(bot, "nudge_snooze") == []


async def test_completion_cancels_what_is_pending(bot: Harness) -> None:
    task_id = await add_task(bot, date(2024, 3, 15))
    bot.clock.set(hanoi(2024, 3, 6, 9, 0))
    await bot.services.nudges.plan()  # planned, not sent yet
    await bot.services.reporting.submit(
        ReportInput(task_id, await unit_id(bot), None, "done", 100, "Đã xong")
    )
    assert [r.state for r in await outbox_rows(bot, "nudge")] == ["cancelled"]
    for day in (12, 15, 19, 21):
        await tick(bot, hanoi(2024, 3, day, 9, 0))
    assert texts(bot, FOCAL) == [] and texts(bot, LEADER) == []


async def test_a_deadline_change_cancels_and_replans(bot: Harness) -> None:
    task_id = await add_task(bot, date(2024, 3, 15))
    await tick(bot, hanoi(2024, 3, 14, 10, 0))  # the 1-day nudge goes out
    (nudge,) = bot.api.sent(FOCAL)
    await bot.press(FOCAL, nudge.message_id, nudge.button_data("Nhắc lại sau"))
    async with bot.services.db.transaction() as session:
        await session.execute(
            update(Task)
            .where(Task.id == task_id)
            .values(deadline=date(2024, 4, 15), deadline_version=Task.deadline_version + 1)
        )
    result = await bot.services.nudges.on_task_changed(task_id)
    assert result.cancelled == 1  # the snoozed repeat of the old deadline's nudge
    await tick(bot, hanoi(2024, 3, 15, 10, 0))
    await tick(bot, hanoi(2024, 3, 19, 10, 0))
    assert len(bot.api.sent(FOCAL)) == 1
    await tick(bot, hanoi(2024, 4, 4, 9, 0))  # 7 working days before 15/4 (Hùng Kings 18/4 aside)
    assert "15/04/2024" in texts(bot, FOCAL)[-1] and "còn 7 ngày" in texts(bot, FOCAL)[-1]
    assert any(f"nudge:{task_id}:v2:b7:" in r.dedup_key for r in await outbox_rows(bot, "nudge"))


async def test_closing_a_task_cancels_its_nudges(bot: Harness) -> None:
    task_id = await add_task(bot, date(2024, 3, 15))
    bot.clock.set(hanoi(2024, 3, 6, 9, 0))
    await bot.services.nudges.plan()
    async with bot.services.db.transaction() as session:
        await session.execute(update(Task).where(Task.id == task_id).values(closed_at=bot.clock.now()))
    await bot.services.nudges.on_task_changed(task_id)
    await bot.dispatch()
    assert texts(bot, FOCAL) == []


async def test_a_crash_between_claiming_and_sending_sends_once(bot: Harness) -> None:
    await add_task(bot, date(2024, 3, 15))
    bot.clock.set(hanoi(2024, 3, 6, 9, 0))
    await bot.services.nudges.plan()
    claimed = await bot.services.outbox.claim_due()  # ... and the process dies here
    assert [c.chat_id for c in claimed] == [FOCAL]
    await bot.services.nudges.plan()  # the restarted planner neither duplicates nor cancels
    assert await bot.services.outbox.release_claims() == 1  # start-up
    await bot.dispatch()
    await tick(bot, hanoi(2024, 3, 6, 11, 0))
    assert len(texts(bot, FOCAL)) == 1


async def test_downtime_catch_up_collapses_missed_nudges(bot: Harness) -> None:
    await add_task(bot, date(2024, 3, 15), "T.1")
    await add_task(bot, date(2024, 3, 20), "T.2")
    bot.clock.set(hanoi(2024, 3, 6, 9, 0))
    await bot.services.nudges.plan()  # T.1's 7-day nudge planned, then the bot goes down
    # Back up on 20/3 at 10:00: T.1 has missed 3/1-day, the day and overdue-2; T.2 its 7/3/1.
    await tick(bot, hanoi(2024, 3, 20, 10, 0))
    got = texts(bot, FOCAL)
    assert len(got) == 2
    assert any("T.1" in t and "Quá hạn 2 ngày" in t for t in got)
    assert any("T.2" in t and "Hôm nay là hạn" in t for t in got)
    states = [(r.dedup_key.split(":")[3], r.state) for r in await outbox_rows(bot, "nudge")]
    assert ("b7", "cancelled") in states
    await tick(bot, hanoi(2024, 3, 20, 15, 0))
    assert len(texts(bot, FOCAL)) == 2


async def test_nothing_goes_out_outside_working_hours(bot: Harness) -> None:
    await add_task(bot, date(2024, 3, 15))
    bot.clock.set(hanoi(2024, 3, 6, 9, 0))
    await bot.services.nudges.plan()
    bot.clock.set(hanoi(2024, 3, 6, 17, 30))  # planned, but the dispatcher ran late
    await bot.dispatch()
    assert texts(bot, FOCAL) == []
    bot.clock.set(hanoi(2024, 3, 7, 8, 0))
    await bot.dispatch()
    assert len(texts(bot, FOCAL)) == 1


async def test_forbidden_tells_the_leader_once(bot: Harness) -> None:
    await add_task(bot, date(2024, 3, 15), "T.1")
    await add_task(bot, date(2024, 3, 15), "T.2")
    bot.api.block(FOCAL)
    await tick(bot, hanoi(2024, 3, 6, 9, 0))
    await tick(bot, hanoi(2024, 3, 6, 9, 5))
    assert [r.state for r in await outbox_rows(bot, "nudge")] == ["failed", "failed"]
    (notice,) = texts(bot, LEADER)
    assert "Lan" in notice and "Phòng Thử nghiệm" in notice
    await tick(bot, hanoi(2024, 3, 12, 9, 0))  # unreachable: no more nudges are planned
    assert len(await outbox_rows(bot, "nudge")) == 2


async def test_retry_after_reschedules_only_that_nudge(bot: Harness) -> None:
    await add_task(bot, date(2024, 3, 15))
    await add_task(bot, date(2024, 3, 20), "T.2")
    bot.api.fail_next(FOCAL, "retry_after", retry_after=30, method="sendMessage")
    await tick(bot, hanoi(2024, 3, 21, 9, 0))  # overdue: focal (429, one of two) and leader
    assert len(texts(bot, LEADER)) == 1
    assert len(texts(bot, FOCAL)) == 1
    (waiting,) = [r for r in await outbox_rows(bot, "nudge") if r.state == "pending"]
    assert waiting.due_at == hanoi(2024, 3, 21, 9, 0, 30)
    await tick(bot, hanoi(2024, 3, 21, 9, 0, 30))
    assert len(texts(bot, FOCAL)) == 2


async def test_period_reminder_lists_unreported_tasks_once(bot: Harness) -> None:
    first = await add_task(bot, None, "T.1")
    await add_task(bot, date(2024, 12, 31), "T.2")
    bot.clock.set(hanoi(2024, 2, 1, 8, 0))
    await bot.services.reporting.submit(
        ReportInput(first, await unit_id(bot), None, "in_progress", 10, "đang làm")
    )
    await tick(bot, hanoi(2024, 2, 1, 8, 59), periods=True)
    assert texts(bot, FOCAL) == []
    await tick(bot, hanoi(2024, 2, 1, 9, 0), periods=True)
    await tick(bot, hanoi(2024, 2, 1, 11, 0), periods=True)
    (reminder,) = bot.api.sent(FOCAL)
    assert "Nhắc báo cáo kỳ 2024-W05" in (reminder.plain_text or "")
    assert "T.2" in (reminder.plain_text or "") and "T.1 " not in (reminder.plain_text or "")
    assert reminder.button_data("Báo cáo T.2").startswith("rp:start:")
    assert texts(bot, LEADER) == []


async def test_an_admin_deadline_change_cancels_the_planned_nudge_at_once(bot: Harness) -> None:
    """/deadline re-plans the task immediately: a reminder planned for the old deadline cannot
    slip out before the next planning run."""
    from bot.services.admin import Actor

    task_id = await add_task(bot, date(2024, 2, 2))  # Friday: one working day ahead on Thursday
    bot.clock.set(hanoi(2024, 2, 1, 9, 0))
    await bot.services.nudges.plan()
    (planned,) = [r for r in await outbox_rows(bot) if r.task_id == task_id]
    assert planned.state == "pending"
    await bot.services.admin.set_deadline(Actor(1000, "Quản trị"), "T.1", date(2024, 3, 29))
    rows = {r.dedup_key: r.state for r in await outbox_rows(bot) if r.kind != "notice"}
    assert rows[planned.dedup_key] == "cancelled"
    assert "pending" not in {state for key, state in rows.items() if ":v1:" in key}
    await bot.dispatch()
    (told,) = texts(bot, FOCAL)  # the deadline notice, and no reminder for the old deadline
    assert "29/03/2024" in told


@pytest.mark.parametrize(
    "first,then,nudged",
    [
        ("done", "done", False),  # a correction that keeps "done": still completed
        ("in_progress", "done", False),  # completed by the correction
        ("done", "in_progress", True),  # reopened by the correction: overdue nudges resume
    ],
)
async def test_a_corrected_report_decides_whether_the_task_is_nudged(
    bot: Harness, first: str, then: str, nudged: bool
) -> None:
    # Deadline Friday 15/3/2024; the report of Fri 15/3 is corrected on Mon 18/3 (both in the
    # period that ends Thursday 21/3 17:00).
    task_id = await add_task(bot, date(2024, 3, 15))
    await tick(bot, hanoi(2024, 3, 15, 9, 0))
    assert len(texts(bot, FOCAL)) == 1  # the deadline-day nudge
    for status, moment in ((first, hanoi(2024, 3, 15, 10, 0)), (then, hanoi(2024, 3, 18, 10, 0))):
        bot.clock.set(moment)
        receipt = await bot.services.reporting.submit(
            ReportInput(task_id, await unit_id(bot), None, status, 60, "Báo cáo")
        )
    assert receipt.is_correction
    for day in (19, 21, 25):
        await tick(bot, hanoi(2024, 3, day, 9, 0))
    later = texts(bot, FOCAL)[1:]
    if nudged:
        assert [t for t in later if "Quá hạn 2 ngày làm việc" in t] and len(later) == 3
    else:
        assert later == [] and texts(bot, LEADER) == []


# ---------------------------------------------------------------------- rendered when sent


async def test_a_nudge_sent_late_shows_the_task_as_it_is_when_sent(bot: Harness) -> None:
    task_id = await add_task(bot, date(2024, 3, 15))
    bot.clock.set(hanoi(2024, 3, 1, 10, 0))
    await bot.services.reporting.submit(
        ReportInput(task_id, await unit_id(bot), None, "in_progress", 40, "đang làm")
    )
    bot.clock.set(hanoi(2024, 3, 6, 9, 0))
    await bot.services.nudges.plan()  # planned with title, percent and unit as they are now
    async with bot.services.db.transaction() as session:
        await session.execute(update(Task).where(Task.id == task_id).values(title="Tên mới & <đã sửa>"))
        await session.execute(update(Unit).where(Unit.code == "TST").values(name="Phòng Mới"))
    bot.clock.set(hanoi(2024, 3, 7, 10, 0))
    await bot.services.reporting.submit(
        ReportInput(task_id, await unit_id(bot), None, "in_progress", 70, "gần xong")
    )
    await bot.dispatch()  # the dispatcher was late: the nudge shows what is true now
    (nudge,) = bot.api.sent(FOCAL)
    text = nudge.plain_text or ""
    assert "T.1 — Tên mới & <đã sửa>" in text and "Phòng Mới" in text
    assert "Tiến độ báo cáo gần nhất: 70%" in text and "còn 7 ngày làm việc" in text
    assert "Nhiệm vụ <thử>" not in text and "40%" not in text
    assert nudge.button_data("Báo cáo ngay") == f"rp:start:{task_id}"
    # Its snoozed repeat is rendered again when it goes out.
    await bot.press(FOCAL, nudge.message_id, nudge.button_data("Nhắc lại sau"))
    async with bot.services.db.transaction() as session:
        await session.execute(update(Task).where(Task.id == task_id).values(title="Lần ba"))
    await tick(bot, hanoi(2024, 3, 8, 10, 0))
    assert "T.1 — Lần ba" in texts(bot, FOCAL)[-1] and len(texts(bot, FOCAL)) == 2


@pytest.mark.parametrize("change", ["closed", "new deadline", "deleted"])
async def test_a_nudge_whose_task_changed_after_planning_is_not_sent(bot: Harness, change: str) -> None:
    """The task changed without a re-plan (another process, a direct edit): the dispatcher
    finds out when it renders the nudge, and cancels it."""
    task_id = await add_task(bot, date(2024, 3, 15))
    bot.clock.set(hanoi(2024, 3, 6, 9, 0))
    assert (await bot.services.nudges.plan()).planned == 1
    async with bot.services.db.transaction() as session:
        if change == "closed":
            await session.execute(update(Task).where(Task.id == task_id).values(closed_at=bot.clock.now()))
        elif change == "new deadline":
            await session.execute(
                update(Task)
                .where(Task.id == task_id)
                .values(deadline=date(2024, 4, 15), deadline_version=Task.deadline_version + 1)
            )
        else:
            await session.execute(delete(Task).where(Task.id == task_id))
    await bot.dispatch()
    assert texts(bot, FOCAL) == []
    states = [r.state for r in await outbox_rows(bot, "nudge")]
    assert states == ([] if change == "deleted" else ["cancelled"])


async def test_a_nudge_claimed_before_the_task_was_completed_is_not_sent(bot: Harness) -> None:
    """Completion cancels what is pending, but a nudge the dispatcher has already claimed is
    caught when it is rendered."""
    from bot.context import Context
    from bot.jobs import dispatch

    task_id = await add_task(bot, date(2024, 3, 15))
    bot.clock.set(hanoi(2024, 3, 6, 9, 0))
    await bot.services.nudges.plan()
    (claimed,) = await bot.services.outbox.claim_due()
    await bot.services.reporting.submit(
        ReportInput(task_id, await unit_id(bot), None, "done", 100, "Đã xong")
    )
    await dispatch._deliver(Context.from_application(bot.app), claimed, 0.0)
    assert texts(bot, FOCAL) == []
    assert [r.state for r in await outbox_rows(bot, "nudge")] == ["cancelled"]


async def test_a_period_reminder_lists_what_is_still_owed_when_sent(bot: Harness) -> None:
    first = await add_task(bot, None, "T.1")
    second = await add_task(bot, None, "T.2")
    bot.clock.set(hanoi(2024, 2, 1, 9, 0))  # Thursday: the reminder comes due
    assert (await bot.services.nudges.plan_period_reminders()).planned == 1
    await bot.services.reporting.submit(
        ReportInput(first, await unit_id(bot), None, "in_progress", 10, "đang làm")
    )
    await bot.dispatch()
    (reminder,) = bot.api.sent(FOCAL)
    text = reminder.plain_text or ""
    assert "T.2" in text and "T.1 " not in text
    assert [b["text"] for b in reminder.buttons] == ["Báo cáo T.2"]
    # Friday's reminder (the next period): planned, then everything is reported before it
    # goes out.
    bot.clock.set(hanoi(2024, 2, 2, 9, 0))
    assert (await bot.services.nudges.plan_period_reminders()).planned == 1
    for task_id in (first, second):
        await bot.services.reporting.submit(
            ReportInput(task_id, await unit_id(bot), None, "in_progress", 20, "đang làm")
        )
    await bot.dispatch()
    assert len(bot.api.sent(FOCAL)) == 1
    assert [r.state for r in await outbox_rows(bot, "period_reminder")] == ["sent", "cancelled"]


async def test_a_long_period_reminder_is_cut_at_thirty_tasks(bot: Harness) -> None:
    ids = [await add_task(bot, None, f"T.{n:02d}") for n in range(1, 36)]
    await tick(bot, hanoi(2024, 2, 1, 9, 0), periods=True)
    (reminder,) = bot.api.sent(FOCAL)
    lines = (reminder.plain_text or "").split("\n")
    assert len(lines) == 1 + 30 + 1 and lines[-1] == "… và 5 nhiệm vụ khác."
    assert [line.split(" — ")[0] for line in lines[1:4]] == ["• T.01", "• T.02", "• T.03"]
    assert [b["callback_data"] for b in reminder.buttons] == [f"rp:start:{i}" for i in ids[:6]]


async def test_a_nudge_planned_before_the_upgrade_is_sent_as_planned(bot: Harness) -> None:
    """Rows written by the planner that rendered text at planning carry their text: sent as
    they are."""
    task_id = await add_task(bot, date(2024, 3, 15))
    bot.clock.set(hanoi(2024, 3, 6, 9, 0))
    async with bot.services.db.transaction() as session:
        focal = await session.scalar(select(User.id).where(User.telegram_id == FOCAL))
        session.add(
            OutboxMessage(
                dedup_key=f"nudge:{task_id}:v1:b7:{focal}",
                kind="nudge",
                chat_id=FOCAL,
                user_id=focal,
                task_id=task_id,
                deadline_version=1,
                nudge_offset="b7",
                payload={
                    "text": "<b>Đã soạn</b> sẵn",
                    "buttons": [[["Nhắc lại sau", "ng:snooze:{outbox_id}"]]],
                },
                due_at=bot.clock.now(),
                created_at=bot.clock.now(),
            )
        )
    await tick(bot, hanoi(2024, 3, 6, 9, 0))
    (nudge,) = bot.api.sent(FOCAL)
    assert nudge.plain_text == "Đã soạn sẵn"
    (row,) = await outbox_rows(bot, "nudge")
    assert nudge.button_data("Nhắc lại sau") == f"ng:snooze:{row.id}"


async def test_migration_0008_keeps_nudges_sent_before_it_sent_once(bot: Harness) -> None:
    """Nudges and snoozed repeats planned before 0008 get their version and offset from their
    keys: planning after the upgrade does not send them again."""
    from storage.migrate import downgrade, upgrade

    task_id = await add_task(bot, date(2024, 3, 15))
    db = bot.services.db
    await downgrade(db, "0007")
    async with db.engine.begin() as conn:
        focal = await conn.scalar(select(User.id).where(User.telegram_id == FOCAL))
        for key, kind in (
            (f"nudge:{task_id}:v1:b7:{focal}", "nudge"),
            (f"snooze:{task_id}:v1:b7:1", "nudge_snooze"),
            ("notice:x", "notice"),
        ):
            await conn.exec_driver_sql(
                "INSERT INTO outbox (dedup_key, kind, chat_id, user_id, task_id, payload, "
                "due_at, state, attempts, created_at) VALUES "
                f"('{key}', '{kind}', {FOCAL}, {focal}, {task_id}, '{{\"text\": \"cũ\"}}', "
                "'2024-03-06 02:00:00.000000', 'sent', 1, '2024-03-06 02:00:00.000000')"
            )
    await upgrade(db)
    rows = {r.kind: (r.deadline_version, r.nudge_offset) for r in await outbox_rows(bot)}
    assert rows == {"nudge": (1, "b7"), "nudge_snooze": (1, "b7"), "notice": (None, None)}
    await tick(bot, hanoi(2024, 3, 8, 10, 0))  # b7 is still the current offset: sent already
    assert texts(bot, FOCAL) == [] and len(await outbox_rows(bot, "nudge")) == 1
    await tick(bot, hanoi(2024, 3, 12, 9, 0))
    assert "còn 3 ngày làm việc" in texts(bot, FOCAL)[-1]


async def test_coordinating_units_are_nudged_and_reminded_when_configured(bot: Harness) -> None:
    """[nudges] include_coordinating: a coordinating unit's focal points get the nudges and
    period reminders too; a leader of the lead unit who is a coordinating focal point gets the
    leader's nudge only once it escalates."""
    nudges = bot.services.nudges
    nudges.settings = dataclasses.replace(nudges.settings, include_coordinating=True)
    coordinator = 804
    async with bot.services.db.transaction() as session:
        unit = Unit(code="CRD", name="Phòng Phối hợp")
        session.add(unit)
        user = User(telegram_id=coordinator, first_name="Tú")
        session.add(user)
        await session.flush()
        leader = await session.scalar(select(User.id).where(User.telegram_id == LEADER))
        session.add_all(
            [
                Membership(user_id=user.id, unit_id=unit.id, role="focal"),
                Membership(user_id=leader, unit_id=unit.id, role="focal"),
            ]
        )
        crd = unit.id
    bot.api.user(coordinator, "Tú")
    task_id = await add_task(bot, date(2024, 3, 15))
    async with bot.services.db.transaction() as session:
        session.add(TaskUnit(task_id=task_id, unit_id=crd, position=0))
    await tick(bot, hanoi(2024, 3, 6, 9, 0))  # 7 days before: focal points of both units
    for chat in (FOCAL, coordinator, LEADER):
        (text,) = texts(bot, chat)
        assert text.startswith("⏰ Nhắc việc: nhiệm vụ T.1") and "Phòng Thử nghiệm" in text
    await tick(bot, hanoi(2024, 3, 21, 9, 0))  # 4 working days overdue: escalated
    assert "Quá hạn 4 ngày làm việc" in texts(bot, FOCAL)[-1]
    assert "Quá hạn 4 ngày làm việc" in texts(bot, coordinator)[-1]
    assert [t.split(":")[0] for t in texts(bot, LEADER)] == ["⏰ Nhắc việc", "⚠️ Báo cáo lãnh đạo đơn vị"]
    # Thursday 28/3: the period reminder lists the task for each unit that has not reported
    # this period (the lead unit has).
    bot.clock.set(hanoi(2024, 3, 25, 10, 0))
    await bot.services.reporting.submit(
        ReportInput(task_id, await unit_id(bot), None, "in_progress", 50, "đang làm")
    )
    await tick(bot, hanoi(2024, 3, 28, 9, 0), periods=True)
    reminders = {
        chat: [t for t in texts(bot, chat) if "Nhắc báo cáo kỳ" in t] for chat in (FOCAL, coordinator, LEADER)
    }
    assert reminders[FOCAL] == []
    assert len(reminders[coordinator]) == 1 and len(reminders[LEADER]) == 1
    assert "• T.1 — Nhiệm vụ <thử> T.1 (Phòng Phối hợp)" in reminders[coordinator][0]


async def test_a_large_backlog_is_planned_as_fast_as_it_can_be_sent(bot: Harness) -> None:
    # The outbox holds at most what the dispatcher sends before the next planning run
    # (max_per_second x plan_interval): here 3. Five overdue tasks: all five nudges go out,
    # each once, over two planning runs.
    nudges = bot.services.nudges
    nudges.queue_limit = 3
    for n in range(5):
        await add_task(bot, date(2024, 3, 13), code=f"T.{n}")  # due today: focal points only
    bot.clock.set(hanoi(2024, 3, 13, 10, 0))
    assert (await nudges.plan()).planned == 3
    assert (await nudges.plan()).planned == 0  # three are still waiting to be sent
    await bot.dispatch()
    assert len(texts(bot, FOCAL)) == 3
    assert (await nudges.plan()).planned == 2
    await bot.dispatch()
    assert (await nudges.plan()).planned == 0
    sent = texts(bot, FOCAL)
    assert len(sent) == 5
    assert sorted(next(c for c in (f"T.{n}" for n in range(5)) if c in t) for t in sent) == [
        f"T.{n}" for n in range(5)
    ]


async def test_start_up_answers_people_before_planning_ends_and_sends_no_superseded_nudge(
    bot: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At start-up the missed nudges are planned once updates flow, so nobody waits for the
    planning (seconds on a national install); the dispatcher starts only after it, so the
    nudges it supersedes are cancelled, never sent."""
    await add_task(bot, date(2024, 3, 15))
    bot.clock.set(hanoi(2024, 3, 6, 9, 0))
    await bot.services.nudges.plan()  # the 7-day nudge is planned, then the bot goes down
    bot.clock.set(hanoi(2024, 3, 14, 10, 0))  # back up the day before the deadline
    planner = bot.services.nudges
    plan = planner.plan
    go_on = asyncio.Event()

    async def slow_plan() -> object:
        await go_on.wait()
        return await plan()

    monkeypatch.setattr(planner, "plan", slow_plan)

    def nudges_sent() -> list[str]:
        return [text for text in texts(bot, FOCAL) if text.startswith("⏰")]

    job_queue = bot.app.job_queue
    assert job_queue is not None and bot.app.post_init is not None
    await job_queue.start()
    try:
        await asyncio.wait_for(bot.app.post_init(bot.app), timeout=10)  # does not wait for planning
        assert await bot.send(OTHER, "/help")  # answered while the planning is still under way
        bot.app.bot_data.kick_dispatcher()  # something queued meanwhile: the dispatcher waits
        await asyncio.sleep(1.0)
        assert texts(bot, FOCAL) == []
        go_on.set()
        for _ in range(100):
            if nudges_sent():
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # a second dispatcher run would send the superseded one
        got = nudges_sent()
        assert len(got) == 1 and "còn 1 ngày làm việc" in got[0], got
        states = {r.dedup_key.split(":")[3]: r.state for r in await outbox_rows(bot, "nudge")}
        assert states["b7"] == "cancelled"
    finally:
        go_on.set()  # the planning job must end for the job queue to stop
        await job_queue.stop()
