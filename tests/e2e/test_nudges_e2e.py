"""The real `tiendo run` process sends a due nudge, is killed twice, and the user has it once."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.support.botapi import BotAPIServer
from tests.support.process import BotProcess

pytestmark = pytest.mark.slow

# The process runs on the system clock: make every moment a working slot. Public holidays are
# days off whatever [work] days says, so the days around today are declared working days too
# (on 1 January or at Tết the nudge would otherwise wait for the next working day).
ALWAYS_WORKING = """
[work]
days = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
start = "00:00"
end = "23:59"
working_weekend_days = {around_today}
[nudges]
send_at = "00:00"
period_reminders = []
dispatch_interval = 1
plan_interval = 60
"""


@pytest.fixture
def server() -> Iterator[BotAPIServer]:
    with BotAPIServer() as server:
        yield server


def test_a_due_nudge_arrives_exactly_once_across_kills(server: BotAPIServer, tmp_path: Path) -> None:
    api = server.api
    today = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date()
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        'programme: {code: TEST-1, title: "Chương trình thử"}\n'
        'units:\n  - {code: TST, name: "Phòng Thử nghiệm"}\n'
        'groups:\n  - {code: "1", title: "Nhóm một"}\n'
        "tasks:\n"
        f'  - {{code: "1.1", group: "1", title: "Việc đến hạn", lead: TST, '
        f"deadline: {today.isoformat()}}}\n",
        encoding="utf-8",
    )
    around_today = [(today + timedelta(days=delta)).isoformat() for delta in range(-10, 11)]
    extra = ALWAYS_WORKING.replace("{around_today}", json.dumps(around_today))
    bot = BotProcess(server, tmp_path, extra_config=extra)
    assert bot.cli("import", str(plan)).returncode == 0
    code = bot.cli("invite", "TST", "--role", "focal").stdout.splitlines()[1]
    api.user(901, "Lan")
    with bot:
        api.send_text(901, f"/start {code}")
        (welcome,) = api.wait_sent(901, 1, timeout=10)
        assert "Phòng Thử nghiệm" in (welcome.plain_text or "")
        # Killed before the next planning run: the start-up planning finds the nudge due.
        bot.restart()
        nudge = api.wait_sent(901, 2, timeout=20)[1]
        assert "Hôm nay là hạn" in (nudge.plain_text or "")
        assert nudge.button_data("Báo cáo ngay").startswith("rp:start:")
        time.sleep(0.5)  # let the dispatcher record it as sent before the next kill
        for _ in range(2):
            bot.restart()  # SIGKILL, then start again: start-up planning and dispatching run
            time.sleep(2)
    nudges = [m for m in api.sent(901) if "Hôm nay là hạn" in (m.plain_text or "")]
    assert len(nudges) == 1
    assert api.rejected == []
