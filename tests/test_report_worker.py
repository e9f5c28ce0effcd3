"""The bot's report files are made in a child process (bot/services/report_worker.py): what comes
back is what the child wrote, a failure or a slow child is one RenderFailed, and only a few
children run at once however many people ask."""

from __future__ import annotations

import asyncio
import io
import os
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from bot.services import report_worker
from bot.services.report_worker import RENDERS_AT_ONCE, RenderFailed, workbook_apart

SHEETS: list[tuple[str, list[list[Any]]]] = [
    ("programme", [["code", "title"], ["QD-59", "Chương trình hành động"]]),
    ("tasks", [["code", "percent"], ["1.1", 75], ["1.2", None]]),
]


async def test_a_workbook_written_by_the_child_reads_back_sheet_by_sheet() -> None:
    workbook = load_workbook(io.BytesIO(await workbook_apart(SHEETS)))
    assert workbook.sheetnames == ["programme", "tasks"]
    assert [list(row) for row in workbook["tasks"].iter_rows(values_only=True)] == SHEETS[1][1]
    assert workbook["programme"]["B2"].value == "Chương trình hành động"


async def test_a_child_that_fails_is_one_render_failed_naming_why() -> None:
    with pytest.raises(RenderFailed) as failed:
        await workbook_apart([("a/b", [["x"]])])  # a sheet title Excel refuses
    assert "ValueError" in str(failed.value) and "\n" not in str(failed.value)


async def test_a_child_over_its_time_is_stopped() -> None:
    with pytest.raises(RenderFailed, match="took over"):
        await workbook_apart(SHEETS, seconds=0.01)


async def test_only_a_few_children_run_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    running, most = 0, 0

    async def child(module: str, request: Any, seconds: float) -> bytes:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.05)
        running -= 1
        return b"xlsx"

    monkeypatch.setattr(report_worker, "in_child", child)
    assert await asyncio.gather(*(workbook_apart(SHEETS) for _ in range(6))) == [b"xlsx"] * 6
    assert most == RENDERS_AT_ONCE


def _children() -> list[int]:
    """This process's children that run the report worker (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid() and b"report_worker" in command:
            found.append(int(entry.name))
    return found


async def test_a_call_cancelled_takes_its_child_with_it() -> None:
    """The bot stopping mid-digest: the child is stopped, not left to finish alone."""
    rows = [[f"task {i}", i] for i in range(400_000)]  # seconds of work for the child
    call = asyncio.create_task(workbook_apart([("tasks", rows)]))
    for _ in range(100):
        await asyncio.sleep(0.05)
        if _children():
            break
    assert _children()
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert _children() == []
