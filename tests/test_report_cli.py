"""`tiendo report` and `tiendo demo` on the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from docx import Document
from openpyxl import load_workbook

from bot.cli import main
from tests.conftest import EXAMPLE_PLAN
from tests.support.botapi import parse_html
from tests.test_cli import cfg, run

__all__ = ["cfg"]


def test_report_and_demo_have_help(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("report", "demo"):
        with pytest.raises(SystemExit) as stop:
            main([command, "--help"])
        assert stop.value.code == 0
        assert "usage: tiendo" in capsys.readouterr().out


def test_report_in_each_format(cfg: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(cfg, "import", str(EXAMPLE_PLAN)) == 0
    capsys.readouterr()
    assert run(cfg, "report", "--period", "2024-W05", "--format", "json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["period"] == "2024-W05" and data["totals"]["total"] == 95
    assert run(cfg, "report", "--period", "2024-W05", "--format", "telegram") == 0
    assert "<b>Báo cáo tiến độ tuần từ 25/01 đến 01/02/2024</b>" in capsys.readouterr().out
    out = tmp_path / "r.docx"
    assert run(cfg, "report", "--period", "2024-W05", "--format", "docx", "-o", str(out)) == 0
    assert any(p.text == "BÁO CÁO" for p in Document(str(out)).paragraphs)
    out = tmp_path / "r.xlsx"
    assert run(cfg, "report", "--period", "2024-W05", "--format", "xlsx", "--unit", "PC", "-o", str(out)) == 0
    assert load_workbook(out)["Nhiệm vụ"].max_row > 1
    assert run(cfg, "report", "--period", "tuần 5", "--format", "json") == 1
    assert "không hợp lệ" in capsys.readouterr().err
    assert run(cfg, "report", "--format", "json", "--unit", "NOPE") == 1


def test_demo_writes_every_format(cfg: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo-output"
    assert run(cfg, "demo", "--output", str(out)) == 0
    printed = capsys.readouterr().out
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"tiendo-2025-W02.{ext}" for ext in ("docx", "html", "json", "png", "txt", "xlsx")]
    assert str(out / "tiendo-2025-W02.docx") in printed
    data = json.loads((out / "tiendo-2025-W02.json").read_text(encoding="utf-8"))
    totals = data["totals"]
    # Some on time, some late, some overdue, some stuck, some silent units.
    assert totals["done_on_time"] and totals["done_late"] and totals["open_overdue"]
    assert data["stuck"]
    # The demo's three units that never report, and no other: each expected, none reported.
    compliance = data["compliance"]
    silent = {unit["code"] for unit in compliance["silent"]}
    reported = {unit["code"] for unit in compliance["reported"]}
    expected = {unit["code"] for unit in compliance["expected"]}
    assert len(silent) == 3 and silent <= expected and not silent & reported
    assert reported | silent == expected
    digest = (out / "tiendo-2025-W02.txt").read_text(encoding="utf-8")
    for code in silent:  # named in the digest managers read
        assert code in digest
    # The digest fits one phone screen (visible characters, after Telegram's entity parsing).
    assert len(parse_html(digest)[0]) <= 1200
