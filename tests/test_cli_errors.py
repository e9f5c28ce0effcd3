"""Cannot start: one sentence in the operator's language and exit code 2, never a traceback.

Run as an operator runs them: the real `tiendo` process, its standard error read whole.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.process import ROOT

TOKEN = "123456:AAHk-test-token-part-xyz0123456789"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # closed again when the probe is


def tiendo(tmp_path: Path, *args: str, config: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "config.toml"
    path.write_text(f'[bot]\ndata_dir = "{tmp_path / "data"}"\n{config}', encoding="utf-8")
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("TIENDO_", "TELEGRAM_"))}
    environment.update({"TIENDO_CONFIG": str(path), "TELEGRAM_BOT_TOKEN": TOKEN, **env})
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr and TOKEN not in result.stderr + result.stdout
    return lines[0]


@pytest.mark.parametrize(
    "command",
    [["init"], *(pytest.param(c, marks=pytest.mark.slow) for c in (["run"], ["audit"], ["invite", "VP"]))],
)
def test_a_refused_database_connection_is_one_sentence(tmp_path: Path, command: list[str]) -> None:
    url = f"postgresql+asyncpg://tiendo:hunter2@127.0.0.1:{_closed_port()}/tiendo"
    line = one_line(tiendo(tmp_path, *command, TIENDO_DATABASE_URL=url))
    assert line.startswith("Không kết nối được tới cơ sở dữ liệu postgresql+asyncpg://tiendo:***@127.0.0.1")
    assert "hunter2" not in line


@pytest.mark.slow
def test_an_unknown_database_host_is_one_sentence_in_english(tmp_path: Path) -> None:
    url = "postgresql+asyncpg://tiendo@no-such-host.invalid:5432/tiendo"
    line = one_line(tiendo(tmp_path, "run", config='language = "en"\n', TIENDO_DATABASE_URL=url))
    assert line.startswith("Cannot reach the database postgresql+asyncpg://tiendo@no-such-host.invalid")


def test_an_sqlite_file_that_cannot_be_created_is_one_sentence(tmp_path: Path) -> None:
    line = one_line(
        tiendo(tmp_path, "init", TIENDO_DATABASE_URL="sqlite+aiosqlite:////proc/no/such/tiendo.db")
    )
    assert "/proc/no/such/tiendo.db" in line


@pytest.mark.slow
def test_at_debug_the_traceback_is_there_too(tmp_path: Path) -> None:
    url = f"postgresql+asyncpg://tiendo@127.0.0.1:{_closed_port()}/tiendo"
    result = tiendo(tmp_path, "init", config='log_level = "DEBUG"\n', TIENDO_DATABASE_URL=url)
    assert result.returncode == 2
    assert "Traceback" in result.stderr and "ConnectionRefusedError" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("Không kết nối được tới cơ sở dữ liệu")


@pytest.mark.slow
def test_an_unreachable_bot_api_is_one_sentence(tmp_path: Path) -> None:
    assert tiendo(tmp_path, "init").returncode == 0
    port = _closed_port()
    config = f'[telegram]\napi_base_url = "http://127.0.0.1:{port}/bot"\n'
    line = one_line(tiendo(tmp_path, "run", config=config))
    assert line.startswith(f"Không kết nối được tới Bot API tại http://127.0.0.1:{port}/bot")
