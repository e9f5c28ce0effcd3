"""The tiendo command line, as an operator runs it."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from storage.migrate import head_revision
from tests.conftest import EXAMPLE_PLAN
from tests.test_plans import csv_plan, task_row


@pytest.fixture
def cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config file in tmp_path (database under it), as TIENDO_CONFIG would select."""
    path = tmp_path / "config.toml"
    path.write_text('[telegram]\nusername = "tiendo_test_bot"\n', encoding="utf-8")
    monkeypatch.delenv("TIENDO_DATABASE_URL", raising=False)
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    return path


def run(cfg: Path, *args: str) -> int:
    # main() runs its own event loop, as the console script does.
    return main(["--config", str(cfg), *args])


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("init", "import", "invite", "run", "audit"):
        with pytest.raises(SystemExit) as stop:
            main([command, "--help"])
        assert stop.value.code == 0
        assert "usage: tiendo" in capsys.readouterr().out


def test_init_is_safe_to_repeat(cfg: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(cfg, "init") == 0
    assert head_revision() in capsys.readouterr().out
    assert run(cfg, "init") == 0
    assert (cfg.parent / "data" / "tiendo.db").exists()


def test_import_twice_then_a_bad_file_is_refused_naming_row_12(
    cfg: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(cfg, "import", str(EXAMPLE_PLAN)) == 0
    out = capsys.readouterr().out
    assert "7 nhóm" in out
    assert run(cfg, "import", str(EXAMPLE_PLAN)) == 0
    out = capsys.readouterr().out
    assert "nhiệm vụ mới 0, sửa 0" in out

    rows = [task_row(i, group="9", group_title="Nhóm chín", code=f"9.{i}") for i in range(1, 16)]
    rows[10]["deadline"] = "31/02/2024"
    bad = tmp_path / "bad.csv"
    bad.write_bytes(csv_plan(rows))
    assert run(cfg, "import", str(bad)) == 1
    err = capsys.readouterr().err
    assert "Dòng 12" in err and "31/02/2024" in err
    assert run(cfg, "import", str(EXAMPLE_PLAN), "--dry-run") == 0
    out = capsys.readouterr().out
    assert out.startswith("Xem trước")
    assert "7 nhóm và 95 nhiệm vụ" in out  # nothing of bad.csv landed


def test_invite_prints_code_and_deep_link(cfg: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(cfg, "import", str(EXAMPLE_PLAN)) == 0
    capsys.readouterr()
    assert run(cfg, "invite", "VP", "--role", "leader", "--expires", "2d") == 0
    lines = capsys.readouterr().out.splitlines()
    code = lines[1]
    assert lines[2].endswith(f"https://t.me/tiendo_test_bot?start={code}")
    assert run(cfg, "invite", "NOPE") == 1
    assert "NOPE" in capsys.readouterr().err
    assert run(cfg, "invite", "VP", "--expires", "soon") == 1


def test_run_without_a_token_says_how_to_get_one(cfg: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(cfg, "run") == 2
    assert "@BotFather" in capsys.readouterr().err


def test_audit_lists_the_import(cfg: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(cfg, "import", str(EXAMPLE_PLAN)) == 0
    capsys.readouterr()
    assert run(cfg, "audit", "-n", "1") == 0
    assert "plan.import" in capsys.readouterr().out


def test_import_if_empty_loads_an_empty_database_only(
    cfg: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What ./dev.sh run does at every start: the example goes in once, never over real data."""
    assert run(cfg, "import", "--if-empty", str(EXAMPLE_PLAN)) == 0
    assert "7 nhóm" in capsys.readouterr().out
    other = tmp_path / "other.yaml"
    other.write_text(
        'programme: {code: OTHER, title: "Chương trình khác"}\n'
        'units:\n  - {code: TST, name: "Phòng Thử nghiệm"}\n'
        'groups:\n  - {code: "9", title: "Nhóm chín"}\n'
        'tasks:\n  - {code: "9.1", group: "9", title: "Việc mới", lead: TST, deadline: ongoing}\n',
        encoding="utf-8",
    )
    assert run(cfg, "import", "--if-empty", str(other)) == 0
    assert capsys.readouterr().out == ""  # the database holds tasks: nothing read, nothing written
    assert run(cfg, "import", "--dry-run", str(other)) == 0
    assert "nhiệm vụ mới 1" in capsys.readouterr().out  # 9.1 is still new
