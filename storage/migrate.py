"""Schema migrations (Alembic) run on the application's own async engine."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from storage.db import Database

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def _alembic_config(connection: Any = None) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


async def current_revision(db: Database) -> str | None:
    """The revision the database is at; None for an empty database."""
    async with db.engine.connect() as conn:
        return await conn.run_sync(
            lambda sync_conn: MigrationContext.configure(sync_conn).get_current_revision()
        )


class ForeignKeyViolation(RuntimeError):
    """A migration left rows whose foreign keys point nowhere (SQLite, checked after)."""


async def upgrade(db: Database, revision: str = "head") -> tuple[str | None, str]:
    """Bring the database to the latest schema (or `revision`); safe to repeat.
    Returns (before, after)."""
    before = await current_revision(db)
    await _migrate(db, lambda cfg: command.upgrade(cfg, revision))
    return before, head_revision() if revision == "head" else revision


async def downgrade(db: Database, revision: str) -> None:
    """Take the database back to `revision` (tests of a migration's backfill)."""
    await _migrate(db, lambda cfg: command.downgrade(cfg, revision))


async def _migrate(db: Database, run: Callable[[AlembicConfig], None]) -> None:
    """Run migrations in one transaction.

    On SQLite, a migration that changes a table's constraints copies the table and drops the
    old one; with foreign keys on, that drop would delete every row referring to it through
    ON DELETE CASCADE (the reports of every task). SQLite's own procedure is followed instead:
    foreign keys off outside the transaction, the migration, `PRAGMA foreign_key_check` inside
    it (a violation rolls everything back), foreign keys on again.
    """
    async with db.engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        assert raw is not None
        if db.is_sqlite:
            await raw.execute("PRAGMA foreign_keys=OFF")
        try:
            async with conn.begin():
                await conn.run_sync(lambda sync_conn: run(_alembic_config(sync_conn)))
                if db.is_sqlite:
                    broken = (await conn.exec_driver_sql("PRAGMA foreign_key_check")).fetchall()
                    if broken:
                        raise ForeignKeyViolation(f"foreign keys broken by the migration: {broken[:5]}")
        finally:
            if db.is_sqlite:
                await raw.execute("PRAGMA foreign_keys=ON")
