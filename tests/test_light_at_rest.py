"""Light at rest: what only reports need is imported when a report is built, not at start-up."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

# Charts, Word, spreadsheets, templates, XML (reports, exports, /import of a workbook), YAML (plan files
# are parsed in a worker process), Alembic with Mako and Pygments, and the `holidays` package
# (both used in the start-up child of `tiendo run`).
REPORT_ONLY = (
    "matplotlib",
    "docx",
    "openpyxl",
    "PIL",
    "jinja2",
    "xml",
    "yaml",
    "alembic",
    "mako",
    "pygments",
    "holidays",
)
# Modules of one engine that a bot on the other never needs (the probe runs on SQLite).
OTHER_ENGINE_ONLY = ("asyncpg", "sqlalchemy.dialects.postgresql")

PROBE = """
import json, sys
from bot.app import build_application
from bot.config import load_config
config = load_config(sys.argv[1], env={"TELEGRAM_BOT_TOKEN": "123456:TEST-TOKEN"})
build_application(config)
print(json.dumps(sorted(sys.modules)))
"""


def test_building_the_bot_imports_nothing_only_reports_need(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[bot]\ndata_dir = "{tmp_path / "data"}"\n', encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(config)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    modules = set(json.loads(done.stdout.splitlines()[-1]))
    loaded = {name.split(".")[0] for name in modules}
    assert "telegram" in loaded and "sqlalchemy" in loaded  # the probe did build the bot
    assert sorted(loaded & set(REPORT_ONLY)) == []
    assert sorted(modules & set(OTHER_ENGINE_ONLY)) == []


def test_run_refuses_an_outdated_schema_from_its_child_in_one_line(tmp_path: Path) -> None:
    """The schema check runs in a forked child; its refusal still stops `tiendo run` with exit 2."""
    config = tmp_path / "config.toml"
    config.write_text(
        f'[bot]\ndata_dir = "{tmp_path / "data"}"\n[database]\n'
        f'url = "sqlite+aiosqlite:///{tmp_path / "empty.db"}"\non_outdated_schema = "refuse"\n',
        encoding="utf-8",
    )
    env = {"PATH": "/usr/bin:/bin", "TIENDO_CONFIG": str(config), "TELEGRAM_BOT_TOKEN": "123456:TEST-TOKEN"}
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "run"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "tiendo init" in lines[0], done.stderr
