"""Shared fixtures: a config in a temporary folder, and a migrated database on each engine.

Storage tests take the `db` fixture and run on SQLite always, and on PostgreSQL as well when
TIENDO_TEST_DATABASE_URL is set (CI sets it; .ci/run fails if the server cannot be reached).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.clock import FixedClock
from bot.config import Config, load_config
from storage.db import Database
from storage.migrate import upgrade
from tests.support.harness import Harness

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_PLAN = ROOT / "examples" / "programme-59-QD-BKHCN-2024.yaml"
PG_URL = os.environ.get("TIENDO_TEST_DATABASE_URL", "")

ENGINES = ["sqlite"] + (["postgresql"] if PG_URL else [])


def _own_database_url(url: str) -> str:
    """A database of this run's own on the server of `url`, so that runs never share a schema."""
    from sqlalchemy.engine import make_url

    name = f"tiendo_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"

    async def create() -> None:
        engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        await engine.dispose()

    asyncio.run(create())
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def _drop_database(admin_url: str, own_url: str) -> None:
    from sqlalchemy.engine import make_url

    name = make_url(own_url).database

    async def drop() -> None:
        engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await engine.dispose()

    asyncio.run(drop())


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """TIENDO_TEST_DATABASE_URL's server, in a database created for this run and dropped after."""
    own = _own_database_url(PG_URL)
    yield own
    _drop_database(PG_URL, own)


async def _reset_postgres(url: str) -> None:
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await engine.dispose()


@pytest.fixture
def clock() -> FixedClock:
    # A Wednesday morning in Hà Nội (02:00 UTC = 09:00 ICT).
    return FixedClock(datetime(2024, 1, 31, 2, 0, tzinfo=UTC))


@pytest.fixture(params=ENGINES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'tiendo.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def config(tmp_path: Path, database_url: str) -> Config:
    """The repository's config.toml with the data folder and database in tmp_path."""
    base = load_config(ROOT / "config.toml", env={})
    return base.with_overrides(
        bot={"data_dir": str(tmp_path / "data"), "admins": [1000]},
        database={"url": database_url},
        token="123456:TEST-TOKEN",
        source=tmp_path / "config.toml",
    )


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    if database_url.startswith("postgresql"):
        await _reset_postgres(database_url)
    database = Database(database_url)
    await upgrade(database)
    yield database
    await database.dispose()


@pytest.fixture
async def harness(config: Config, db: Database) -> AsyncIterator[Harness]:
    """The bot in process on the test database, with the example programme loaded."""
    from tests.test_storage import import_example

    await import_example(db)
    bot = await Harness.start(config, db)
    yield bot
    await bot.stop()
