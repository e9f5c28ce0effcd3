"""An admin runs the programme from chat against the real `tiendo run` process: imports the
plan, creates a unit and a task, invites a focal point who joins, assigns the task (the focal
point is told, with a Báo cáo button) and moves its deadline (the focal point is told again)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE_PLAN
from tests.support.botapi import BotAPIServer, FakeBotAPI, SentMessage
from tests.support.process import BotProcess

pytestmark = pytest.mark.slow

ADMIN = 900
FOCAL = 901


@pytest.fixture
def server() -> Iterator[BotAPIServer]:
    with BotAPIServer() as server:
        yield server


def ask(api: FakeBotAPI, user_id: int, text: str, answers: int = 1) -> list[SentMessage]:
    """A user writes; wait for the bot's answers and return them."""
    before = len(api.sent(user_id))
    api.send_text(user_id, text)
    return api.wait_sent(user_id, before + answers, timeout=15)[before:]


def test_admin_sets_up_a_task_and_the_focal_point_is_told(server: BotAPIServer, tmp_path: Path) -> None:
    api = server.api
    bot = BotProcess(server, tmp_path, extra_config="[nudges]\ndispatch_interval = 1\n")
    # [bot] is already written by BotProcess (data_dir): the admin goes into that table.
    bot.config_path.write_text(
        bot.config_path.read_text(encoding="utf-8").replace("[bot]\n", f"[bot]\nadmins = [{ADMIN}]\n"),
        encoding="utf-8",
    )
    api.user(ADMIN, "Quản trị")
    api.user(FOCAL, "Lan", username="lan")
    with bot:
        # The plan comes in through /import: preview first, written on Áp dụng.
        ask(api, ADMIN, "/import")
        before = len(api.sent(ADMIN))
        api.send_document(ADMIN, EXAMPLE_PLAN.name, EXAMPLE_PLAN.read_bytes(), "application/yaml")
        preview = api.wait_sent(ADMIN, before + 1, timeout=15)[-1]
        assert "Nhiệm vụ: mới 95" in (preview.plain_text or "")
        before = len(api.sent(ADMIN))
        api.press_button(ADMIN, preview.message_id, preview.button_data("Áp dụng"))
        (applied,) = api.wait_sent(ADMIN, before + 1, timeout=30)[before:]
        assert "Đã áp dụng: nhiệm vụ mới 95" in (applied.plain_text or "")

        (done,) = ask(api, ADMIN, "/unit_add TTS Trung tâm Số hóa")
        assert "TTS" in (done.plain_text or "")
        ask(api, ADMIN, "/task_add", answers=2)
        for answer in ("7", "7.50", "Số hóa hồ sơ lưu trữ", "VP", "-", "31/12/2099", "Kho số"):
            ask(api, ADMIN, answer)
        (confirm,) = ask(api, ADMIN, "-")
        api.press_button(ADMIN, confirm.message_id, confirm.button_data("Tạo"))
        api.wait_for(
            lambda: "Đã tạo" in (api.message(ADMIN, confirm.message_id).get("text") or ""), timeout=15
        )

        (invite,) = ask(api, ADMIN, "/invite TTS focal")
        link = (invite.plain_text or "").split()[-1]
        assert link.startswith("https://t.me/tiendo_test_bot?start=")
        (welcome,) = ask(api, FOCAL, f"/start {link.split('start=')[1]}")
        assert "Trung tâm Số hóa" in (welcome.plain_text or "")

        (assigned,) = ask(api, ADMIN, "/assign 7.50 TTS VP")
        assert "1 cán bộ đầu mối" in (assigned.plain_text or "")
        notice = api.wait_sent(FOCAL, 2, timeout=15)[-1]
        assert "7.50" in (notice.plain_text or "") and "31/12/2099" in (notice.plain_text or "")
        assert notice.button_data("Báo cáo").startswith("rp:start:")

        ask(api, ADMIN, "/deadline 7.50 2099-06-30")
        moved = api.wait_sent(FOCAL, 3, timeout=15)[-1]
        assert "31/12/2099 → 30/06/2099" in (moved.plain_text or "")

        audit = bot.cli("audit", "-n", "20").stdout
        assert "task.create" in audit and "task.assign" in audit and "task.deadline" in audit
    assert api.rejected == []
