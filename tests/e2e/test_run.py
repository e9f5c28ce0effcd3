"""`tiendo run` as a real process against the Bot API stand-in on 127.0.0.1."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE_PLAN
from tests.support.botapi import DEFAULT_TOKEN, BotAPIServer
from tests.support.process import BotProcess, free_port, webhook_config

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


def test_the_readme_run_command_loads_the_examples_and_runs_without_docstrings(
    server: BotAPIServer, tmp_path: Path
) -> None:
    """`./dev.sh run` sets up, loads the example programmes into an empty database and runs the
    bot with PYTHONOPTIMIZE=2 (about 7 MiB less: bench/footprint.py); `tiendo run` started
    without it says so in one INFO line."""
    bot = BotProcess(server, tmp_path, command=["bash", "dev.sh", "run"], lean=False)
    bot.start(timeout=180)  # the first install step may run here
    try:
        assert bot.process is not None
        environ = Path(f"/proc/{bot.process.pid}/environ").read_bytes().split(b"\0")
        assert b"PYTHONOPTIMIZE=2" in environ  # the bot's own process, not a shell around it
        assert len(bot.cli("programme", "list", "--codes").stdout.split()) == 2
        server.api.user(555, "Lan")
        server.api.send_text(555, "/start")
        server.api.wait_sent(555, 1, timeout=10)
        assert not any("PYTHONOPTIMIZE" in line for line in bot.log)  # no hint (it follows ready)
    finally:
        bot.stop()
    (tmp_path / "plain").mkdir()
    with BotProcess(server, tmp_path / "plain", lean=False) as plain:
        deadline = time.monotonic() + 10  # the hint follows the ready line
        while not (hints := [line for line in plain.log if "PYTHONOPTIMIZE=2 is not set" in line]):
            assert time.monotonic() < deadline, plain.log
            time.sleep(0.05)
        assert len(hints) == 1 and " INFO " in hints[0], plain.log


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
    # A sentence, no traceback (the only other line: the new database was migrated, at INFO).
    assert "Traceback" not in result.stderr and " ERROR " not in result.stderr, result.stderr
    assert "1:WRONG" not in result.stderr + result.stdout


def test_webhook_mode_registers_and_accepts_updates_with_the_secret(
    server: BotAPIServer, tmp_path: Path
) -> None:
    import json
    import urllib.error
    import urllib.request

    from bot.cli import _webhook_path
    from bot.config import load_config

    port = free_port()
    bot = BotProcess(server, tmp_path, extra_config=webhook_config(port))
    with bot:
        secret = _webhook_path(load_config(bot.config_path, env={"TELEGRAM_BOT_TOKEN": DEFAULT_TOKEN}))
        info = server.api.webhook_info()
        assert info["url"] == f"https://bot.example.gov.vn/telegram/{secret}"
        server.api.user(557, "Hà")
        update = {
            "update_id": 1,
            "message": {
                "message_id": 1,
                "date": 1700000000,
                "text": "/start",
                "entities": [{"offset": 0, "length": 6, "type": "bot_command"}],
                "chat": {"id": 557, "type": "private", "first_name": "Hà"},
                "from": {"id": 557, "is_bot": False, "first_name": "Hà"},
            },
        }

        def post(header: str) -> int:
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/telegram/{secret}",
                data=json.dumps(update).encode(),
                headers={"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": header},
            )
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    return response.status
            except urllib.error.HTTPError as exc:
                return exc.code

        assert post("wrong") == 403  # only Telegram knows the secret
        assert post(secret) == 200
        server.api.wait_sent(557, 1, timeout=10)
        assert "557" in server.api.sent(557)[0].plain_text
