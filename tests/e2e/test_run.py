"""`tiendo run` as a real process against the Bot API stand-in on 127.0.0.1."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE_PLAN
from tests.support.botapi import DEFAULT_TOKEN, BotAPIServer
from tests.support.process import BotProcess

pytestmark = pytest.mark.slow


@pytest.fixture
def server() -> Iterator[BotAPIServer]:
    with BotAPIServer() as server:
        yield server


def test_run_calls_getme_polls_and_answers_start(server: BotAPIServer, tmp_path: Path) -> None:
    api = server.api
    bot = BotProcess(server, tmp_path)
    assert bot.cli("import", str(EXAMPLE_PLAN)).returncode == 0
    with bot:
        ready = next(line for line in bot.log if "tiendo ready" in line)
        assert "@tiendo_test_bot" in ready
        assert DEFAULT_TOKEN not in "".join(bot.log)  # the token is never logged
        assert api.call_counts().get("getMe", 0) >= 1

        api.user(555, "Lan")
        api.send_text(555, "/start")
        (reply,) = api.wait_sent(555, 1, timeout=10)
        assert "555" in reply.plain_text  # an unknown user is shown their Telegram id

        # An invite made on the command line binds the user to the unit.
        out = bot.cli("invite", "VP", "--role", "focal").stdout.splitlines()
        api.send_text(555, f"/start {out[1]}")
        api.wait_sent(555, 2, timeout=10)
        assert "Văn phòng Bộ" in api.sent(555)[-1].plain_text
    assert api.rejected == []
    assert DEFAULT_TOKEN not in "".join(bot.log)


def test_run_stops_cleanly_on_sigterm_and_restarts_on_the_same_database(
    server: BotAPIServer, tmp_path: Path
) -> None:
    bot = BotProcess(server, tmp_path).start()
    assert bot.stop(signal.SIGTERM) == 0
    bot.start()
    server.api.user(556, "Minh")
    server.api.send_text(556, "/start")
    server.api.wait_sent(556, 1, timeout=10)
    bot.kill()


def test_run_with_a_wrong_token_says_so(server: BotAPIServer, tmp_path: Path) -> None:
    bot = BotProcess(server, tmp_path, env={"TELEGRAM_BOT_TOKEN": "1:WRONG"})
    result = bot.cli("run")
    assert result.returncode == 2
    assert "Unauthorized" in result.stderr
    assert "1:WRONG" not in result.stderr + result.stdout
