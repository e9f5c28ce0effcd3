"""A small crash soak (bench/crash_soak.py): people reporting while `tiendo run` is killed with
SIGKILL, once at a random moment and once right after someone presses Gửi, and restarted."""

from __future__ import annotations

import pytest

from bench.crash_soak import parse, soak
from tests.support.process import BotProcess

pytestmark = pytest.mark.slow


async def test_kill_9_loses_doubles_silences_and_misplaces_nothing() -> None:
    database = ["--database", BotProcess.default_database_url] if BotProcess.default_database_url else []
    figures = await soak(parse(["--people", "4", "--kills", "2", *database]))
    assert figures["kills"] == 2 and figures["reports"] >= 4
    assert {key: figures[key] for key in ("lost", "doubled", "nobody", "silent", "misplaced")} == {
        "lost": 0,
        "doubled": 0,
        "nobody": 0,
        "silent": 0,
        "misplaced": 0,
    }
