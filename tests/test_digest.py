"""/digest, /subscribe, /unsubscribe and the scheduled digest, through the in-process bot."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.config import Config
from bot.services.digest import closed_period, last_occurrence
from bot.services.periods import period_rule
from bot.services.report_data import ReportBuilder
from storage.db import Database
from storage.repositories.units import UnitRepository
from storage.repositories.users import UserRepository
from tests.support.harness import Harness

MANAGER, LEADER, FOCAL, STRANGER, ADMIN = 7001, 7002, 7003, 7004, 7005


async def add_person(
    harness: Harness,
    telegram_id: int,
    name: str,
    *,
    role: str | None = None,
    unit: str | None = None,
    unit_role: str = "focal",
) -> None:
    harness.api.user(telegram_id, name)
    async with harness.services.db.transaction() as session:
        users = UserRepository(session)
        user = await users.upsert(telegram_id, name, None, None)
        if role:
            await users.grant_role(user, role)
        if unit:
            found = await UnitRepository(session).by_code(unit)
            assert found is not None
            await users.add_membership(user, found, unit_role)


def kinds(messages: list) -> list[str]:
    return [m.method for m in messages]


async def test_digest_on_demand_for_a_manager(harness: Harness) -> None:
    await add_person(harness, MANAGER, "Hùng", role="manager")
    replies = await harness.send(MANAGER, "/digest 2024-W05")
    assert kinds(replies) == ["sendMessage", "sendPhoto", "sendDocument", "sendDocument"]
    # The current period, so far: as of now (Wednesday 31/1).
    assert replies[0].plain_text.startswith("Báo cáo tiến độ tuần từ 25/01 đến 31/01/2024\n")
    assert len(replies[0].plain_text) <= 1200  # one phone screen; the detail is in the files
    assert "Tổng số 95 nhiệm vụ" in replies[0].plain_text
    names = [m.document["file_name"] for m in replies[2:]]
    assert names == ["tiendo-2024-2024-W05.docx", "tiendo-2024-2024-W05.xlsx"]


async def test_digest_for_a_leader_is_their_unit_and_refused_to_others(harness: Harness) -> None:
    await add_person(harness, LEADER, "Mai", unit="PC", unit_role="leader")
    replies = await harness.send(LEADER, "/digest")
    assert "Vụ Pháp chế" in replies[0].plain_text
    assert replies[2].document["file_name"] == "tiendo-2024-2024-W05-PC.docx"
    harness.api.user(STRANGER, "Lạ")
    (refusal,) = await harness.send(STRANGER, "/digest")
    assert "dành cho lãnh đạo" in refusal.plain_text
    await add_person(harness, MANAGER, "Hùng", role="manager")
    (bad,) = await harness.send(MANAGER, "/digest tuần-trước")
    assert "/digest 2024-W05" in bad.plain_text


async def test_subscribe_and_unsubscribe(harness: Harness) -> None:
    await add_person(harness, ADMIN, "Quân", role="admin")
    assert "Đã đăng ký" in (await harness.send(ADMIN, "/subscribe"))[0].plain_text
    assert "đã đăng ký" in (await harness.send(ADMIN, "/subscribe"))[0].plain_text
    assert "Đã dừng" in (await harness.send(ADMIN, "/unsubscribe"))[0].plain_text
    assert "chưa đăng ký" in (await harness.send(ADMIN, "/unsubscribe"))[0].plain_text
    harness.api.user(STRANGER, "Lạ")
    assert "chưa có quyền" in (await harness.send(STRANGER, "/subscribe"))[0].plain_text


async def test_a_focal_point_cannot_subscribe_to_other_units_data(harness: Harness) -> None:
    await add_person(harness, FOCAL, "Lan", unit="VP")
    (reply,) = await harness.send(FOCAL, "/subscribe")
    assert "chỉ gửi cho lãnh đạo Bộ và quản trị viên" in reply.plain_text
    assert await harness.services.digest.unsubscribe(FOCAL) is False  # nothing was stored


async def test_scheduled_digest_goes_once_to_managers_subscribers_and_leaders(harness: Harness) -> None:
    await add_person(harness, MANAGER, "Hùng", role="manager")
    await add_person(harness, ADMIN, "Quân", role="admin")
    await add_person(harness, LEADER, "Mai", unit="PC", unit_role="leader")
    await harness.send(ADMIN, "/subscribe")
    # Friday 2/2/2024 16:30 in Hà Nội: the schedule (Friday 16:00) has passed for 2024-W05.
    harness.clock.set(datetime(2024, 2, 2, 9, 30, tzinfo=UTC))
    assert await harness.services.digest.run_due() == ["all", "unit:PC"]
    assert await harness.services.digest.run_due() == []  # once per period
    await harness.dispatch()
    for chat in (MANAGER, ADMIN):
        sent = harness.api.sent(chat)[-4:]
        assert kinds(sent) == ["sendMessage", "sendPhoto", "sendDocument", "sendDocument"]
        assert "tuần từ 25/01 đến 01/02/2024" in sent[0].plain_text
        assert sent[2].caption == "Báo cáo tuần từ 25/01 đến 01/02/2024 (Word)"
    leader = harness.api.sent(LEADER)
    assert kinds(leader) == ["sendMessage", "sendPhoto", "sendDocument", "sendDocument"]
    assert "Vụ Pháp chế" in leader[0].plain_text
    assert leader[2].document["file_name"] == "tiendo-2024-2024-W05-PC.docx"
    # Unsubscribed people get nothing next week; managers still do.
    await harness.send(ADMIN, "/unsubscribe")
    before = len(harness.api.sent(ADMIN))
    harness.clock.set(datetime(2024, 2, 9, 9, 30, tzinfo=UTC))
    assert await harness.services.digest.run_due() == ["all", "unit:PC"]
    await harness.dispatch()
    assert len(harness.api.sent(ADMIN)) == before
    assert "tuần từ 01/02 đến 08/02/2024" in harness.api.sent(MANAGER)[-4].plain_text


async def test_a_digest_nobody_receives_is_recorded_without_building_the_report(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At start-up a bot without managers or subscribers does not build a report for nobody."""

    async def build(*args: object, **kwargs: object) -> None:
        raise AssertionError("a report was built for nobody")

    monkeypatch.setattr(ReportBuilder, "build", build)
    harness.clock.set(datetime(2024, 2, 2, 9, 30, tzinfo=UTC))
    assert await harness.services.digest.run_due() == ["all"]
    assert await harness.services.digest.run_due() == []  # the period is done all the same


def test_the_due_period_is_the_last_one_closed_when_the_schedule_passed(config: Config) -> None:
    rules = period_rule(config)
    friday = datetime(2024, 2, 2, 9, 30, tzinfo=UTC)  # 16:30 local
    assert last_occurrence("friday 16:00", friday, config) == datetime(2024, 2, 2, 9, 0, tzinfo=UTC)
    before = datetime(2024, 2, 2, 8, 30, tzinfo=UTC)  # 15:30 local: last week's run
    assert last_occurrence("friday 16:00", before, config) == datetime(2024, 1, 26, 9, 0, tzinfo=UTC)
    assert closed_period(rules, last_occurrence("friday 16:00", friday, config)).key == "2024-W05"
    assert closed_period(rules, last_occurrence("friday 16:00", before, config)).key == "2024-W04"
    # Down from Friday noon to Monday: the Friday run is caught up at start-up, for 2024-W05.
    monday = datetime(2024, 2, 5, 2, 0, tzinfo=UTC)
    assert closed_period(rules, last_occurrence("friday 16:00", monday, config)).key == "2024-W05"
    # A schedule exactly at the cut-off reports the period it closes.
    cutoff = rules.by_key("2024-W05").end
    assert closed_period(rules, cutoff).key == "2024-W05"


async def test_digest_files_are_written_in_the_data_folder(harness: Harness, db: Database) -> None:
    await add_person(harness, MANAGER, "Hùng", role="manager")
    harness.clock.set(datetime(2024, 2, 2, 9, 30, tzinfo=UTC))
    await harness.services.digest.run_due()
    folder = harness.services.config.data_path / "reports" / "2024-W05" / "all" / "vi"
    assert sorted(p.name for p in folder.iterdir()) == [
        "tiendo-2024-2024-W05.docx",
        "tiendo-2024-2024-W05.png",
        "tiendo-2024-2024-W05.xlsx",
    ]
