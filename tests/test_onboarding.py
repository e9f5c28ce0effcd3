"""/start with invites, /start for known and unknown people, /help and the command menus."""

from __future__ import annotations

from datetime import date, timedelta

from storage.db import Database
from storage.models import Membership
from tests.report_helpers import count, join
from tests.support.harness import Harness


async def test_a_good_invite_binds_and_greets_with_unit_and_commands(harness: Harness, db: Database) -> None:
    (reply,) = await join(harness, 601, "TTRA", name="Lan")
    text = reply.plain_text or ""
    assert text.startswith("Xin chào Lan! Bạn là cán bộ đầu mối của Thanh tra Bộ.")
    assert "9 nhiệm vụ" in text and "/report" in text and "/tasks" in text
    assert await count(db, Membership) == 1
    menu = [c["command"] for c in harness.api.commands({"type": "chat", "chat_id": 601})]
    assert menu == ["start", "help", "lang", "report", "cancel", "tasks", "history", "extend"]


async def test_used_expired_and_unknown_codes_bind_nothing(harness: Harness, db: Database) -> None:
    invite = await harness.services.invites.create("VP", "focal", timedelta(days=1))
    await harness.send(601, f"/start {invite.code}")
    (used,) = await harness.send(602, f"/start {invite.code}")
    assert "đã được dùng" in (used.plain_text or "")
    old = await harness.services.invites.create("VP", "focal", timedelta(hours=1))
    harness.clock.advance(timedelta(hours=2))
    (expired,) = await harness.send(603, f"/start {old.code}")
    assert "hết hạn" in (expired.plain_text or "")
    (unknown,) = await harness.send(604, "/start khong-co-ma-nay")
    assert "không đúng" in (unknown.plain_text or "")
    assert await count(db, Membership) == 1
    for user in (602, 603, 604):
        (reply,) = await harness.send(user, "/start")
        assert str(user) in (reply.plain_text or "")  # still unknown: shown their id


async def test_known_user_gets_their_summary_and_leader_menu(harness: Harness) -> None:
    await join(harness, 605, "VP", role="leader", name="Hùng")
    (reply,) = await harness.send(605, "/start")
    text = reply.plain_text or ""
    assert "lãnh đạo đơn vị của Văn phòng Bộ" in text and "nhiệm vụ" in text
    menu = [c["command"] for c in harness.api.commands({"type": "chat", "chat_id": 605})]
    assert "tasks" in menu and "report" not in menu
    (help_,) = await harness.send(605, "/help")
    assert "/tasks — " in (help_.plain_text or "") and "/report" not in (help_.plain_text or "")


async def test_help_for_someone_unknown(harness: Harness) -> None:
    (reply,) = await harness.send(606, "/help")
    text = reply.plain_text or ""
    assert "/start" in text and "/report" not in text and "đường dẫn mời" in text


async def test_tasks_lists_overdue_first_with_report_buttons(harness: Harness) -> None:
    await join(harness, 607, "VP")
    harness.clock.advance(timedelta(days=340))  # 2025-01: the 2024 deadlines have passed
    (reply,) = await harness.send(607, "/tasks")
    text = reply.plain_text or ""
    assert "Chưa hoàn thành, quá hạn" in text.split("\n\n")[1]
    person = await harness.services.people.person(607)
    views = await harness.services.tasks.for_person(person, date(2025, 1, 6))
    kinds = [v.status.value for v in views]
    assert kinds == sorted(kinds, key=["open_overdue", "open_within", "done_late", "done_on_time"].index)
    assert kinds[0] == "open_overdue" and "open_within" in kinds
    assert reply.buttons[0]["callback_data"].startswith("rp:start:")
    assert reply.buttons[-1]["text"] == "▶"
    await harness.press(607, reply.message_id, reply.buttons[-1]["callback_data"])
    assert "trang 2/" in (harness.api.sent(607)[-1].plain_text or "")
    # The button opens the report on that task.
    (ask,) = await harness.press(607, reply.message_id, reply.buttons[0]["callback_data"])
    assert "Tình trạng thực hiện?" in (ask.plain_text or "")
