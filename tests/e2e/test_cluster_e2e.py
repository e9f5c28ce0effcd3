"""Several `tiendo run` processes on one database (bot/cluster.py).

PostgreSQL: two processes, 30 people reporting while nudges go out; the elected process is
killed with SIGKILL mid-run (bench/cluster.py drives it): no answer lost or doubled, no nudge
doubled or missed, and the other process leads within 15 s.
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
