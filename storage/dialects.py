"""The insert() that spells ON CONFLICT for an engine, by the dialect's name.

Each is imported when a database of that kind is first written: importing
`sqlalchemy.dialects.postgresql` loads every PostgreSQL driver's module (~2 MiB that a bot on
SQLite would hold for nothing)."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any


@cache
def upsert_insert(dialect: str) -> Callable[..., Any]:
    """sqlalchemy.dialects.<dialect>.insert: 'postgresql', otherwise SQLite's."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert
