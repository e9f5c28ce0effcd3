"""Hostile plan files against the real processes: `tiendo import` and /import in chat.

Each file is refused with one line naming it, nothing is written, no process grows past
400 MB, and while the bot's worker reads a large file another person's /help is answered.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE_PLAN
from tests.support import hostile
from tests.support.botapi import BotAPIServer
from tests.support.process import ROOT, BotProcess

pytestmark = pytest.mark.slow

ADMIN = 900
OTHER = 901
PEAK_MB = 400

# Measures the peak resident memory of `tiendo import` and of every process under it (the
# worker): ru_maxrss of waited-for children is the largest of them.
MEASURE = """
import json, resource, subprocess, sys
command = [sys.executable, "-m", "bot.cli", "import", sys.argv[1]]
done = subprocess.run(command, capture_output=True, text=True)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024
print(json.dumps({"code": done.returncode, "stderr": done.stderr, "peak_mb": peak}))
"""


@pytest.fixture
def server() -> Iterator[BotAPIServer]:
    with BotAPIServer() as server:
        yield server


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("hostile")
    built = {
        "bomb.xlsx": hostile.xlsx_one_huge_cell(1024),
        "rows.xlsx": hostile.xlsx_rows(300_000),
        "entity.xlsx": hostile.xlsx_external_entity(),
        "laughs.yaml": hostile.yaml_laughs(),
    }
    for name, data in built.items():
        (folder / name).write_bytes(data)
    return {name: folder / name for name in built}


def tasks_in(bot: BotProcess) -> int:
    return int(str(bot.scalar("SELECT count(*) FROM tasks")))


@pytest.mark.parametrize("name", ["bomb.xlsx", "rows.xlsx", "entity.xlsx", "laughs.yaml"])
def test_tiendo_import_refuses_a_hostile_file_in_one_line_within_400_mb(
    server: BotAPIServer, tmp_path: Path, files: dict[str, Path], name: str
) -> None:
    bot = BotProcess(server, tmp_path)
    assert bot.cli("import", str(EXAMPLE_PLAN)).returncode == 0
    before = tasks_in(bot)
    started = time.monotonic()
    measured = subprocess.run(
        [sys.executable, "-c", MEASURE, str(files[name])],
        cwd=ROOT,
        env=bot.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    elapsed = time.monotonic() - started
    result = json.loads(measured.stdout)
    lines = result["stderr"].strip().splitlines()
    print(f"{name}: exit {result['code']}, {elapsed:.1f} s, peak {result['peak_mb']} MB: {lines}")
    assert result["code"] == 1
    assert len(lines) == 1 and name in lines[0] and "Traceback" not in result["stderr"]
    assert "Chưa ghi gì" in lines[0]
    assert result["peak_mb"] <= PEAK_MB
    assert tasks_in(bot) == before


def test_import_in_chat_refuses_each_file_in_one_line_and_others_are_answered_meanwhile(
    server: BotAPIServer, tmp_path: Path, files: dict[str, Path]
) -> None:
    api = server.api
    # Room for the 7 MB file, and no unpacked-size ceiling, so that the worker has to stream
    # the 300,000-row sheet (here without its dimension) to its row cap: seconds of work.
    bot = BotProcess(
        server,
        tmp_path,
        extra_config="[admin]\nimport_max_kb = 10240\n[import]\nmax_unpacked_mb = 500\nseconds = 10\n",
    )
    bot.config_path.write_text(
        bot.config_path.read_text(encoding="utf-8").replace("[bot]\n", f"[bot]\nadmins = [{ADMIN}]\n"),
        encoding="utf-8",
    )
    assert bot.cli("import", str(EXAMPLE_PLAN)).returncode == 0
    before = tasks_in(bot)
    api.user(ADMIN, "Quản trị")
    api.user(OTHER, "Lan")
    undimensioned = hostile.xlsx_rows(300_000, dimension=False)
    with bot:
        assert bot.process is not None
        for name, data in [
            ("rows-no-dimension.xlsx", undimensioned),
            *((name, path.read_bytes()) for name, path in files.items()),
        ]:
            sent = len(api.sent(ADMIN))
            api.send_text(ADMIN, "/import")
            api.wait_sent(ADMIN, sent + 1, timeout=15)
            started = time.monotonic()
            api.send_document(ADMIN, name, data)
            helped = len(api.sent(OTHER))
            api.send_text(OTHER, "/help")
            api.wait_sent(OTHER, helped + 1, timeout=15)
            help_after = time.monotonic() - started
            refusal = api.wait_sent(ADMIN, sent + 2, timeout=60)[-1]
            refused_after = time.monotonic() - started
            text = refusal.plain_text or ""
            print(
                f"{name}: /help answered after {help_after:.2f} s, "
                f"refused after {refused_after:.2f} s: {text}"
            )
            assert name in text and "Chưa ghi gì" in text and "\n" not in text.strip()
            assert help_after < 5
        status = Path(f"/proc/{bot.process.pid}/status").read_text()
        peak_kb = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM")))
        print(f"tiendo run peak resident memory: {peak_kb // 1024} MB")
        assert peak_kb // 1024 <= PEAK_MB
        log = "".join(bot.log)
    assert tasks_in(bot) == before
    assert "Traceback" not in log
