"""Several `tiendo run` processes on one database (bot/cluster.py).

PostgreSQL: two processes, 30 people reporting while nudges go out; the elected process is
killed with SIGKILL mid-run (bench/cluster.py drives it): no answer lost or doubled, no nudge
doubled or missed, and the other process leads within 15 s.
Webhook: two processes, updates posted to either, one killed: each update answered once.
SQLite: a second `tiendo run` on the same file is refused with one line and exit code 2.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.botapi import BotAPIServer
from tests.support.process import ROOT, BotProcess

pytestmark = pytest.mark.slow


@pytest.fixture
def server() -> Iterator[BotAPIServer]:
    with BotAPIServer() as server:
        yield server


def test_two_processes_survive_the_death_of_the_elected_one(e2e_engine: str, tmp_path: Path) -> None:
    if e2e_engine != "postgresql":
        pytest.skip("several processes share a PostgreSQL database (TIENDO_TEST_DATABASE_URL)")
    from bench import cluster

    url = BotProcess.default_database_url
    assert url is not None
    args = cluster.parse(["--database", url, "--seconds", "0", "--silent", "20", "--after", "6"])
    figures = asyncio.run(cluster.run(args))
    assert figures.get("lost", 0) == 0
    assert figures.get("doubled", 0) == 0
    assert figures["nobody"] == 0
    assert figures.get("misplaced", 0) == 0
    assert figures["silent"] == 0
    assert figures["nudges_doubled"] == 0
    assert figures["nudges_missed"] == 0
    assert figures["takeover"] <= 15
    assert figures["first_nudge"] <= 15
    assert figures.get("inbox_pending", 0) == 0


def test_a_second_process_on_one_sqlite_file_is_refused(
    e2e_engine: str, server: BotAPIServer, tmp_path: Path
) -> None:
    if e2e_engine != "sqlite":
        pytest.skip("PostgreSQL takes several processes")
    with BotProcess(server, tmp_path) as bot:
        second = subprocess.run(
            [sys.executable, "-m", "bot.cli", "run"],
            cwd=ROOT,
            env=bot.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 2
        lines = [line for line in (second.stdout + second.stderr).splitlines() if line.strip()]
        assert len(lines) == 1, lines
        assert "SQLite" in lines[0] and "PostgreSQL" in lines[0]
        assert bot.process is not None and bot.process.poll() is None  # the first one runs on


def test_webhook_processes_behind_a_proxy_answer_each_update_once(
    e2e_engine: str, server: BotAPIServer, tmp_path: Path
) -> None:
    """Two processes in webhook mode; updates posted to either (as nginx spreads them), one
    chat's updates to both; then one process is killed and the other answers everything."""
    if e2e_engine != "postgresql":
        pytest.skip("several processes share a PostgreSQL database (TIENDO_TEST_DATABASE_URL)")
    import json
    import socket
    import time
    import urllib.request

    from bot.cli import _webhook_path
    from bot.config import load_config

    ports = []
    for _ in range(2):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            ports.append(probe.getsockname()[1])
    extra = 'mode = "webhook"\nwebhook_url = "https://bot.example.gov.vn"\n'
    bots = []
    for port in ports:
        (tmp_path / str(port)).mkdir()
        env = {"TIENDO_WEBHOOK_PORT": str(port)}  # one config, a port per process
        bots.append(BotProcess(server, tmp_path / str(port), extra_config=extra, env=env))
    api = server.api
    users = list(range(811, 817))
    for user in users:
        api.user(user, f"Người {user}")
    try:
        for bot in bots:
            bot.start()
        secret = _webhook_path(load_config(bots[0].config_path, env=bots[0].env))

        def post(port: int, update: dict[str, object]) -> int:
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/telegram/{secret}",
                data=json.dumps(update).encode(),
                headers={"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": secret},
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                return int(response.status)

        for user in users:  # each chat's two updates reach the two processes
            assert post(ports[0], api.send_text(user, "/help")) == 200
            assert post(ports[1], api.send_text(user, "/help")) == 200
        for user in users:
            api.wait_sent(user, 2, timeout=20)
        # Killed once every update is recorded handled: a /help answered but not yet recorded
        # (a process killed in between) is answered again by the other (at least once).
        pending = "select count(*) from inbox where state = 'pending'"
        api.wait_for(lambda: bots[1].scalar(pending) == 0 or None, timeout=10)
        bots[0].kill()
        for user in users:
            assert post(ports[1], api.send_text(user, "/help")) == 200
        for user in users:
            api.wait_sent(user, 3, timeout=20)
        time.sleep(1.0)
        assert [len(api.sent(user)) for user in users] == [3] * len(users)
        assert not [line for bot in bots for line in bot.log if " ERROR " in line or "Traceback" in line]
    finally:
        for bot in bots:
            bot.stop()
