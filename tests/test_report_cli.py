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
    exts = ("docx", "html", "json", "png", "txt", "xlsx")
    # Two programmes and the rollover: 2024's final report (closed at the first cut-off of
    # 2025) and the 2025 programme's first weeks, with the same task codes.
    assert names == [f"tiendo-{stem}.{ext}" for stem in ("2024-2025-W01", "2025-2025-W02") for ext in exts]
    assert str(out / "tiendo-2025-2025-W02.docx") in printed
    new = json.loads((out / "tiendo-2025-2025-W02.json").read_text(encoding="utf-8"))
    assert new["programme"]["decision"] == "12/QĐ-BKHCN" and new["programme"]["state"] == "active"
    assert new["totals"]["total"] == 95
    data = json.loads((out / "tiendo-2024-2025-W01.json").read_text(encoding="utf-8"))
    assert data["programme"]["decision"] == "59/QĐ-BKHCN" and data["programme"]["state"] == "closed"
    assert data["programme"]["closing"]["total"] == 95
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
    digest = (out / "tiendo-2024-2025-W01.txt").read_text(encoding="utf-8")
    for code in silent:  # named in the digest managers read
        assert code in digest
    # The digest fits one phone screen (visible characters, after Telegram's entity parsing).
    assert len(parse_html(digest)[0]) <= 1200


def test_report_covers_the_programme_named_and_names_its_decision(
    cfg: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    next_plan = EXAMPLE_PLAN.parent / "programme-12-QD-BKHCN-2025.yaml"
    assert run(cfg, "import", str(EXAMPLE_PLAN)) == 0
    assert run(cfg, "import", str(next_plan)) == 0
    capsys.readouterr()
    # Two active programmes: the report must be told which.
    assert run(cfg, "report", "--format", "json") == 1
    assert "QD-59-BKHCN-2024" in capsys.readouterr().err
    assert (
        run(cfg, "report", "--programme", "QD-59-BKHCN-2024", "--period", "2024-W05", "--format", "json") == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert data["programme"]["code"] == "QD-59-BKHCN-2024"
    assert (
        data["programme"]["decision"] == "59/QĐ-BKHCN" and data["programme"]["decision_date"] == "2024-01-19"
    )
    assert data["totals"]["total"] == 95
    assert {t["code"] for g in data["groups"] for t in g["tasks"]} >= {"1.1", "7.1"}
    out = tmp_path / "r.docx"
    assert (
        run(cfg, "report", "--programme", "2025", "--period", "2025-W05", "--format", "docx", "-o", str(out))
        == 0
    )
    text = "\n".join(p.text for p in Document(str(out)).paragraphs)
    assert "Thực hiện Quyết định số 12/QĐ-BKHCN ngày 15/01/2025" in text
    assert "59/QĐ-BKHCN" not in text
    assert run(cfg, "report", "--programme", "NOPE", "--format", "json") == 1
    assert "NOPE" in capsys.readouterr().err


def test_closing_a_programme_keeps_its_report_and_states_its_figures(
    cfg: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(cfg, "import", str(EXAMPLE_PLAN)) == 0
    assert run(cfg, "programme", "close", "2024") == 0
    closed = capsys.readouterr().out
    assert "QD-59-BKHCN-2024" in closed and "95" in closed
    assert run(cfg, "programme", "close", "2024") == 1
    # Nothing more is imported into it; its report is as it stood at closing.
    assert run(cfg, "import", str(EXAMPLE_PLAN)) == 1
    capsys.readouterr()
    assert run(cfg, "report", "--format", "json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["programme"]["state"] == "closed" and data["totals"]["total"] == 95
    assert data["programme"]["closing"]["total"] == 95
    assert run(cfg, "programme", "list", "--codes") == 0
    assert capsys.readouterr().out.split() == ["QD-59-BKHCN-2024"]
    assert run(cfg, "programme", "rename", "QD-59-BKHCN-2024", "CT-2024") == 0
    assert run(cfg, "audit", "-n", "3") == 0
    log = capsys.readouterr().out
    assert "programme.rename" in log and "programme.close" in log
