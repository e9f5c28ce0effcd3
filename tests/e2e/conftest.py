"""End-to-end tests run on SQLite, and on PostgreSQL too when TIENDO_TEST_DATABASE_URL is set.

Every test that starts `tiendo run` (tests/support/process.py) gets a fresh database: a SQLite
file in its folder, or the run's own PostgreSQL database with an empty schema.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tests.conftest import ENGINES, _reset_postgres
from tests.support.process import BotProcess


@pytest.fixture(params=ENGINES, autouse=True)
def e2e_engine(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "postgresql":
        url = str(request.getfixturevalue("pg_url"))
        asyncio.run(_reset_postgres(url))
        BotProcess.default_database_url = url
    try:
        yield request.param
    finally:
        BotProcess.default_database_url = None
