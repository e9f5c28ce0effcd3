"""Scope and safety: a focal point of unit A against unit B's tasks, through commands and
forged buttons; malformed, oversize and unknown callback data; group chats."""

from __future__ import annotations

import pytest

from bot.services.admin import Actor
from storage.db import Database
from tests.report_helpers import (
    audit_actions,
    drafts,
    join,
    last_answer,
    press,
    reports,
    to_results,
)
from tests.support.harness import Harness

A = 701  # focal point of TTRA
B = 702  # focal point of KHTC
LEADER_A = 703


async def task_id(harness: Harness, code: str) -> int:
    found = await harness.services.tasks.id_by_code(code)
    assert found is not None
    return found


@pytest.fixture
async def bot(harness: Harness) -> Harness:
    await join(harness, A, "TTRA")
    await join(harness, B, "KHTC")
    await join(harness, LEADER_A, "TTRA", role="leader")
    return harness


async def test_report_command_on_another_units_task_is_refused(bot: Harness, db: Database) -> None:
    (reply,) = await bot.send(A, "/report 1.1")  # led by KHTC, TTRA not involved
    assert "Không có nhiệm vụ mã" in (reply.plain_text or "")
    (reply,) = await bot.send(A, "/report 99.99")
    assert "Không có nhiệm vụ mã" in (reply.plain_text or "")
    assert await drafts(db) == 0
    assert (await audit_actions(db)).count("command.refused") == 2
    (reply,) = await bot.send(B, "/report 1.1")
    assert "Tình trạng" in (reply.plain_text or "")  # the lead unit's focal point may


async def test_history_of_another_units_task_shows_nothing(bot: Harness) -> None:
    (reply,) = await bot.send(A, "/history 1.1")
    assert "Không có nhiệm vụ mã" in (reply.plain_text or "")


@pytest.mark.parametrize(
    "forged",
    [
        "rp:start:{other}",
        "rp:start:999999",
        "rp:start:abc",
        "rp:t:{version}:{other}",
        "rp:t:{version}:999999",
        "rp:s:{version}:finished",
        "rp:p:{version}:150",
        "rp:zz",
        "rp:s:1:2:3",
        "rp:t:{version}:abc",
        "rp:pg:{version}:x",
        "garbage",
        "tk:pg:x",
        "lg:fr",
        "x" * 65,
        "rp:start:" + "9" * 60,
    ],
)
async def test_forged_buttons_are_refused_audited_and_change_nothing(
    bot: Harness, db: Database, forged: str
) -> None:
    (page,) = await bot.send(A, "/report")  # a message from the bot to press on
    draft = await bot.services.drafts.load(A, "report")
    assert draft is not None
    data = forged.format(other=await task_id(bot, "1.1"), version=draft.version)
    before = await audit_actions(db)
    assert await bot.press(A, page.message_id, data, check=False) == []
    answer = last_answer(bot) or ""
    assert "không hợp lệ" in answer or "đã cũ" in answer
    after = await audit_actions(db)
    if "đã cũ" not in answer:
        assert after[len(before) :] == ["callback.refused"]
    assert await reports(db) == 0
    same = await bot.services.drafts.load(A, "report")
    assert same is not None and same.data == draft.data


async def test_forged_status_step_button_for_status_of_other_kind(bot: Harness, db: Database) -> None:
    (ask,) = await bot.send(A, "/report 5.9")
    draft = await bot.services.drafts.load(A, "report")
    assert draft is not None
    # A percent button while the status is asked: out of date, nothing stored.
    assert await bot.press(A, ask.message_id, f"rp:p:{draft.version}:50", check=False) == []
    same = await bot.services.drafts.load(A, "report")
    assert same == draft


async def test_leader_can_look_but_not_report(bot: Harness) -> None:
    (tasks,) = await bot.send(LEADER_A, "/tasks")
    assert "5.14" in (tasks.plain_text or "") and tasks.buttons[0]["text"] in ("▶", "◀")
    (reply,) = await bot.send(LEADER_A, "/report 5.14")
    assert "Chỉ cán bộ đầu mối" in (reply.plain_text or "")
    ta = await task_id(bot, "5.14")
    assert await bot.press(LEADER_A, tasks.message_id, f"rp:start:{ta}", check=False) == []
    assert "không hợp lệ" in (last_answer(bot) or "")


async def test_unit_b_cannot_use_unit_a_report_button(bot: Harness, db: Database) -> None:
    (tasks,) = await bot.send(A, "/tasks")
    data = tasks.buttons[0]["callback_data"]
    (own,) = await bot.send(B, "/tasks")
    assert await bot.press(B, own.message_id, data, check=False) == []
    assert "không hợp lệ" in (last_answer(bot) or "")
    assert await drafts(db) == 0


async def test_group_chats_are_asked_to_talk_privately(bot: Harness) -> None:
    bot.api.group(-100123)
    before = len(bot.api.sent(-100123))
    await bot._process(bot.api.send_text(A, "/tasks", chat_type="supergroup", chat_id=-100123))
    (reply,) = bot.api.sent(-100123)[before:]
    assert "nhắn riêng" in (reply.plain_text or "")
    assert "5.14" not in (reply.plain_text or "")


async def test_unknown_user_cannot_report(bot: Harness) -> None:
    (reply,) = await bot.send(799, "/report 5.14")
    assert "chưa có quyền" in (reply.plain_text or "")
    (reply,) = await bot.send(799, "/tasks")
    assert "chưa thuộc đơn vị" in (reply.plain_text or "")


async def test_a_report_button_after_a_submitted_report_is_out_of_date(bot: Harness) -> None:
    (ask,) = await bot.send(A, "/report 5.9")
    await press(bot, A, ask, "Đã hoàn thành")
    (summary,) = await bot.send(A, "Xong")
    await press(bot, A, summary, "Gửi")
    assert await press(bot, A, summary, "Gửi") == []
    assert "đã cũ" in (last_answer(bot) or "")


async def test_someone_removed_from_their_unit_is_refused_at_the_next_step(
    bot: Harness, db: Database
) -> None:
    (ask,) = await bot.send(A, "/report 5.9")
    await bot.services.admin.revoke(Actor(1000), str(A))
    (refused,) = await press(bot, A, ask, "Đang thực hiện")
    assert "không còn là đầu mối" in (refused.plain_text or "")
    assert refused.buttons == []
    assert await drafts(db) == 0  # nothing of the answer was stored, the draft is closed
    assert "report.refused" in await audit_actions(db)
    # The conversation is over: the old button changes nothing, and no report can be sent.
    assert await press(bot, A, ask, "Đang thực hiện") == []
    assert "cũ" in (last_answer(bot) or "") or "không hợp lệ" in (last_answer(bot) or "")
    assert await reports(db) == 0


async def test_a_typed_answer_after_the_unit_changed_is_refused(bot: Harness, db: Database) -> None:
    results = await to_results(bot, A, "5.9")
    assert "kết quả" in (results.plain_text or "").lower()
    # Moved to another unit: still a focal point, but 5.9 is no longer their unit's task.
    await bot.services.admin.revoke(Actor(1000), str(A))
    await join(bot, A, "KHTC")
    (refused,) = await bot.send(A, "Đã xong dự thảo")
    assert "không còn là đầu mối" in (refused.plain_text or "")
    assert await drafts(db) == 0
    (answer,) = await bot.send(A, "/skip")  # no report under way any more, and told so
    assert "Không có báo cáo nào đang làm dở" in (answer.plain_text or "")


async def test_every_step_of_a_report_in_scope_is_stored(bot: Harness, db: Database) -> None:
    """The scope check lets the focal point of a coordinating unit through, at every step."""
    # 1.3 is led by KHTC; TTRA, A's unit, only coordinates it.
    (ask,) = await bot.send(A, "/report 1.3")
    assert "Tình trạng" in (ask.plain_text or "")
    (percent,) = await press(bot, A, ask, "Đang thực hiện")
    assert "phần trăm" in (percent.plain_text or "").lower()
    draft = await bot.services.drafts.load(A, "report")
    assert draft is not None
    assert (draft.data["task_code"], draft.data["status"]) == ("1.3", "in_progress")
    (results,) = await press(bot, A, percent, "75%")
    assert "kết quả" in (results.plain_text or "").lower()
    draft = await bot.services.drafts.load(A, "report")
    assert draft is not None and draft.data["percent"] == 75
    await bot.send(A, "Đã phối hợp rà soát hồ sơ")
    draft = await bot.services.drafts.load(A, "report")
    assert draft is not None and draft.data["results"] == "Đã phối hợp rà soát hồ sơ"
    assert "report.refused" not in await audit_actions(db)
