"""Issue 16: a weekly report in six taps and one sentence. Taps are counted as a person makes
them (a command or a button is a tap; a sentence is a typed answer)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.services.report_data import ReportBuilder
from bot.services.reporting import ReportInput
from storage.models import Membership, OutboxMessage, ProgressReport, Task, TaskGroup, Unit, User
from tests.support.botapi import SentMessage
from tests.support.harness import Harness

HN = ZoneInfo("Asia/Ho_Chi_Minh")
FOCAL, OTHER = 811, 812


def hanoi(*args: int) -> datetime:
    return datetime(*args, tzinfo=HN).astimezone(UTC)  # type: ignore[misc]


@dataclass
class Person:
    """A focal point who counts their taps and typed answers."""

    bot: Harness
    user_id: int
    taps: int = 0
    typed: int = 0
    last: list[SentMessage] = field(default_factory=list)

    async def command(self, text: str) -> SentMessage:
        self.taps += 1
        self.last = await self.bot.send(self.user_id, text)
        return self.last[-1]

    async def type(self, text: str) -> SentMessage:
        self.typed += 1
        self.last = await self.bot.send(self.user_id, text)
        return self.last[-1]

    async def tap(self, message: SentMessage, label: str) -> SentMessage | None:
        self.taps += 1
        self.last = await self.bot.press(self.user_id, message.message_id, message.button_data(label))
        return self.last[-1] if self.last else None


@pytest.fixture
async def bot(harness: Harness) -> Harness:
    """A unit TST with one focal point and two tasks, T.1 due 15/3/2024 and T.2 later."""
    harness.services.pacer.private_interval = 0.0
    async with harness.services.db.transaction() as session:
        unit = Unit(code="TST", name="Phòng Thử nghiệm")
        session.add(unit)
        await session.flush()
        for telegram_id, name in ((FOCAL, "Lan"), (OTHER, "Hoa")):
            user = User(telegram_id=telegram_id, first_name=name)
            session.add(user)
            await session.flush()
            if telegram_id == FOCAL:
                session.add(Membership(user_id=user.id, unit_id=unit.id, role="focal"))
        group_id, programme_id = (
            await session.execute(select(TaskGroup.id, TaskGroup.programme_id).limit(1))
        ).one()
        for code, deadline in (("T.1", date(2024, 3, 15)), ("T.2", date(2024, 12, 31))):
            session.add(
                Task(
                    programme_id=programme_id,
                    code=code,
                    group_id=group_id,
                    title=f"Nhiệm vụ {code}",
                    lead_unit_id=unit.id,
                    deadline=deadline,
                )
            )
    harness.api.user(FOCAL, "Lan")
    harness.api.user(OTHER, "Hoa")
    return harness


async def ids(bot: Harness) -> tuple[int, int, int]:
    """(unit id, T.1's id, T.2's id)."""
    async with bot.services.db.reader() as session:
        unit = await session.scalar(select(Unit.id).where(Unit.code == "TST"))
        rows = dict(
            (await session.execute(select(Task.code, Task.id).where(Task.code.in_(["T.1", "T.2"])))).all()
        )
    assert unit is not None
    return unit, rows["T.1"], rows["T.2"]


async def nudge(bot: Harness, at: datetime) -> SentMessage:
    """Time passes to `at`, when T.1's 7-day nudge is due; returns it."""
    bot.clock.set(at)
    await bot.services.nudges.plan()
    await bot.dispatch()
    sent = bot.api.sent(FOCAL)[-1]
    assert "T.1" in (sent.plain_text or "")
    return sent


async def the_report(bot: Harness) -> ProgressReport:
    async with bot.services.db.reader() as session:
        return (await session.scalars(select(ProgressReport).order_by(ProgressReport.id.desc()))).first()  # type: ignore[return-value]


async def test_the_common_report_from_report_is_five_taps_and_one_sentence(bot: Harness) -> None:
    bot.clock.set(hanoi(2024, 3, 6, 10, 0))
    lan = Person(bot, FOCAL)
    tasks = await lan.command("/report")
    status = await lan.tap(tasks, "T.1 · Nhiệm vụ T.1")
    assert status is not None
    percent = await lan.tap(status, "Đang thực hiện")
    assert percent is not None
    results = await lan.tap(percent, "50%")
    assert results is not None
    summary = await lan.type("Đã hoàn thành dự thảo")
    assert "Kiểm tra lại" in (summary.plain_text or "")
    receipt = await lan.tap(summary, "Gửi")
    assert receipt is not None and (receipt.plain_text or "").startswith("✅ Đã ghi nhận báo cáo")
    assert (lan.taps, lan.typed) == (5, 1)
    assert lan.taps <= 6
    report = await the_report(bot)
    assert (report.status, report.percent, report.results) == ("in_progress", 50, "Đã hoàn thành dự thảo")
    assert not report.unchanged
    # Several tasks in a row: the receipt offers the unit's next task still unreported.
    status = await lan.tap(receipt, "Báo cáo tiếp T.2")
    assert status is not None and "T.2" in (status.plain_text or "")


async def test_from_a_nudge_it_is_four_taps_and_one_sentence(bot: Harness) -> None:
    sent = await nudge(bot, hanoi(2024, 3, 6, 9, 0))
    lan = Person(bot, FOCAL)
    status = await lan.tap(sent, "Báo cáo ngay")
    assert status is not None and "Tình trạng thực hiện?" in (status.plain_text or "")
    percent = await lan.tap(status, "Đang thực hiện")
    results = await lan.tap(percent, "75%")  # type: ignore[arg-type]
    summary = await lan.type("Đã trình dự thảo")
    assert results is not None
    receipt = await lan.tap(summary, "Gửi")
    assert receipt is not None and "T.1" in (receipt.plain_text or "")
    assert (lan.taps, lan.typed) == (4, 1)
    assert lan.taps <= 5


async def test_stuck_still_asks_for_the_difficulties(bot: Harness) -> None:
    sent = await nudge(bot, hanoi(2024, 3, 6, 9, 0))
    lan = Person(bot, FOCAL)
    status = await lan.tap(sent, "Báo cáo ngay")
    percent = await lan.tap(status, "Gặp vướng mắc")  # type: ignore[arg-type]
    await lan.tap(percent, "25%")  # type: ignore[arg-type]
    ask = await lan.type("Một phần")
    assert "bắt buộc" in (ask.plain_text or "")
    again = await lan.command("/skip")
    assert "cần nêu khó khăn" in (again.plain_text or "")
    summary = await lan.type("Thiếu kinh phí")
    await lan.tap(summary, "Gửi")
    report = await the_report(bot)
    assert (report.status, report.difficulties) == ("stuck", "Thiếu kinh phí")


async def test_no_change_is_one_tap_from_a_nudge(bot: Harness) -> None:
    unit, task, _ = await ids(bot)
    # The unit's report of the previous period (22/2 17:00 to 29/2 17:00).
    await bot.services.reporting.submit(
        ReportInput(task, unit, None, "in_progress", 40, "Đang lấy ý kiến", "Chậm", "Gia hạn"),
        at=hanoi(2024, 2, 26, 10, 0),
    )
    sent = await nudge(bot, hanoi(2024, 3, 6, 9, 0))
    lan = Person(bot, FOCAL)
    receipt = await lan.tap(sent, "Không thay đổi")
    assert receipt is not None
    assert "không thay đổi so với kỳ trước" in (receipt.plain_text or "")
    assert "Đang thực hiện, 40%" in (receipt.plain_text or "")
    assert lan.taps <= 2
    report = await the_report(bot)
    assert report.unchanged and report.period == "2024-W10"
    assert (report.status, report.percent, report.results) == ("in_progress", 40, "Đang lấy ý kiến")
    assert (report.difficulties, report.proposals, report.revision) == ("Chậm", "Gia hạn", 1)
    # Managers see it as reported: the consolidated data says so, marked unchanged.
    rules = bot.services.reporting.periods
    data = await ReportBuilder(bot.services.db, rules, HN).build(
        rules.period_at(hanoi(2024, 3, 6, 12, 0)), as_of=hanoi(2024, 3, 6, 12, 0)
    )
    line = next(line for line in data.tasks if line.code == "T.1")
    assert line.reported_this_period and line.unchanged
    # A second tap files nothing more (not a correction nobody made).
    (again,) = await bot.press(FOCAL, sent.message_id, sent.button_data("Không thay đổi"))
    assert "đã báo cáo nhiệm vụ T.1 trong kỳ 2024-W10" in (again.plain_text or "")
    assert (await the_report(bot)).revision == 1
    # A correction through /report is no longer an unchanged copy.
    status = await lan.command("/report T.1")
    percent = await lan.tap(status, "Đang thực hiện")
    await lan.tap(percent, "50%")  # type: ignore[arg-type]
    summary = await lan.type("Đã xong")
    await lan.tap(summary, "Gửi")
    report = await the_report(bot)
    assert (report.revision, report.percent, report.unchanged) == (2, 50, False)


async def test_no_change_needs_a_report_to_copy_and_the_callers_task(bot: Harness) -> None:
    unit, task, other = await ids(bot)
    bot.clock.set(hanoi(2024, 3, 6, 10, 0))
    (help_,) = await bot.send(FOCAL, "/help")
    (refused,) = await bot.press(FOCAL, help_.message_id, f"rp:same:{task}", check=False)
    assert "chưa có báo cáo trước về nhiệm vụ T.1" in (refused.plain_text or "")
    assert await the_report(bot) is None
    # Someone who is not the unit's focal point is refused and nothing is written.
    await bot.services.reporting.submit(
        ReportInput(other, unit, None, "in_progress", 10, "x"), at=hanoi(2024, 2, 26, 10, 0)
    )
    (hello,) = await bot.send(OTHER, "/help")
    assert await bot.press(OTHER, hello.message_id, f"rp:same:{other}", check=False) == []
    assert "không hợp lệ" in (bot.api.answered_callbacks[-1].text or "")
    assert (await the_report(bot)).period == "2024-W09"


async def test_no_change_from_the_task_list(bot: Harness) -> None:
    unit, task, _ = await ids(bot)
    await bot.services.reporting.submit(
        ReportInput(task, unit, None, "not_started", 0, "Chưa bắt đầu"), at=hanoi(2024, 2, 26, 10, 0)
    )
    bot.clock.set(hanoi(2024, 3, 6, 10, 0))
    lan = Person(bot, FOCAL)
    tasks = await lan.command("/tasks")
    labels = [b["text"] for b in tasks.buttons]
    assert "Không thay đổi T.1" in labels and "Không thay đổi T.2" not in labels  # T.2: nothing to copy
    receipt = await lan.tap(tasks, "Không thay đổi T.1")
    assert receipt is not None and "không thay đổi" in (receipt.plain_text or "")
    assert lan.taps == 2
    assert [b["text"] for b in receipt.buttons] == ["Báo cáo tiếp T.2"]


async def test_a_nudge_about_a_report_under_way_waits_until_it_is_sent(bot: Harness) -> None:
    bot.clock.set(hanoi(2024, 3, 6, 8, 0))
    lan = Person(bot, FOCAL)
    status = await lan.command("/report T.1")
    before = len(bot.api.sent(FOCAL))
    # 9:00: T.1's nudge is due, but Lan is answering questions on T.1: it waits.
    bot.clock.set(hanoi(2024, 3, 6, 9, 0))
    await bot.services.nudges.plan()
    await bot.dispatch()
    assert len(bot.api.sent(FOCAL)) == before
    async with bot.services.db.reader() as session:
        (row,) = list(await session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "nudge")))
    assert row.state == "pending" and "held" in (row.last_error or "")
    percent = await lan.tap(status, "Đang thực hiện")
    summary = await lan.tap(percent, "25%")  # type: ignore[arg-type]
    summary = await lan.type("Bắt đầu")
    await lan.tap(summary, "Gửi")
    # Once the report is sent, the nudge goes out at its next try.
    bot.clock.set(hanoi(2024, 3, 6, 9, 5))
    await bot.dispatch()
    assert "còn 7 ngày làm việc" in (bot.api.sent(FOCAL)[-1].plain_text or "")


async def test_a_nudge_about_another_task_is_not_held(bot: Harness) -> None:
    bot.clock.set(hanoi(2024, 3, 6, 8, 0))
    await bot.send(FOCAL, "/report T.2")
    sent = await nudge(bot, hanoi(2024, 3, 6, 9, 0))
    assert "còn 7 ngày làm việc" in (sent.plain_text or "")


async def test_a_dropped_report_releases_the_nudge_it_held(bot: Harness) -> None:
    bot.clock.set(hanoi(2024, 3, 6, 8, 0))
    await bot.send(FOCAL, "/report T.1")
    before = len(bot.api.sent(FOCAL))
    bot.clock.set(hanoi(2024, 3, 6, 9, 0))
    await bot.services.nudges.plan()
    await bot.dispatch()
    assert len(bot.api.sent(FOCAL)) == before
    await bot.send(FOCAL, "/cancel")
    bot.clock.advance(timedelta(minutes=3))
    await bot.dispatch()
    assert "còn 7 ngày làm việc" in (bot.api.sent(FOCAL)[-1].plain_text or "")
