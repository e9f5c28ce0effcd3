"""Which schema revision the database is at, and the latest, without importing Alembic.

For /readyz (bot/health.py), asked again and again by the running bot: Alembic, with Mako and
Pygments, stays out of it (tests/test_light_at_rest.py; the start-up check and migrations use
storage/migrate.py, in a child process). The latest revision is read from the migration files'
`revision` and `down_revision` lines: the one no other revises.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from sqlalchemy import Select, String, column, select, table

from storage.statements import StatementRunner

VERSIONS = Path(__file__).resolve().parent / "migrations" / "versions"
_LINE = re.compile(r"^(revision|down_revision)\b[^=]*=\s*['\"]([^'\"]+)['\"]", re.MULTILINE)
_CURRENT: Select[tuple[str]] = select(column("version_num", String)).select_from(table("alembic_version"))


@cache
def head_revision() -> str:
    revisions: set[str] = set()
    revised: set[str] = set()
    for path in VERSIONS.glob("*.py"):
        for key, value in _LINE.findall(path.read_text(encoding="utf-8")):
            (revisions if key == "revision" else revised).add(value)
    (head,) = revisions - revised  # one head: the migrations are one line
    return head


def current_revision(runner: StatementRunner) -> str | None:
    """The database's revision (Alembic's table); None if it has none."""
    rows = runner.rows(_CURRENT, {})
    return str(rows[0][0]) if rows else None
