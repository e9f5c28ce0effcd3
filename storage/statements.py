"""Core statements in a unit of work, one definition for both engines.

Repository functions that run at every chat step take a StatementRunner and run SQLAlchemy Core
statements on it; `Database.write_statements(fn)` and `Database.read_statements(fn)` (storage/db.py)
call fn with the runner of their engine inside one transaction. On PostgreSQL that runner is a
CoreRunner over a SQLAlchemy connection; on SQLite it runs the same statements straight on the
driver (storage/direct.py, which nothing outside storage/db.py imports). fn runs exactly once.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Column, Table, TextClause, bindparam, insert, text
from sqlalchemy.engine import Connection
from sqlalchemy.sql.expression import Executable, TextualSelect


class StatementRunner:
    """What a unit of work gets: run Core statements inside the open transaction. Two kinds
    (SQLite's straight on the driver, storage/direct.py, and CoreRunner, a SQLAlchemy
    connection), so one function serves both engines. `dialect` names the engine, for the
    rare statement a repository must spell per engine."""

    dialect: str

    def rows(self, statement: Executable, values: Mapping[str, Any]) -> list[Any]:
        raise NotImplementedError

    def execute(self, statement: Executable, values: Mapping[str, Any]) -> int:
        raise NotImplementedError

    def execute_many(self, statement: Executable, rows: Sequence[Mapping[str, Any]]) -> None:
        raise NotImplementedError

    def inserted_id(self, statement: Executable, values: Mapping[str, Any]) -> int:
        """Run an INSERT of one row; the new row's primary key."""
        raise NotImplementedError

    def insert(self, table: Table, values: Mapping[str, Any]) -> int:
        """Insert one row of the given column values; its primary key. Columns left out take
        the database's defaults only (not the model's Python defaults): give them all."""
        return self.inserted_id(_insert(table, tuple(sorted(values))), values)


@functools.lru_cache(maxsize=256)
def _insert(table: Table, columns: tuple[str, ...]) -> Executable:
    # One statement object per table and column set: compiled once, by identity.
    return insert(table).values({name: bindparam(name, type_=table.c[name].type) for name in columns})


def insert_on_conflict(
    table: Table,
    keys: tuple[str, ...],
    columns: tuple[str, ...],
    update: tuple[str, ...] = (),
    returning: Column[Any] | None = None,
    count: int = 0,
) -> TextClause | TextualSelect:
    """INSERT of one row of `columns` that, when a row with the same `keys` exists, updates
    `update` from the new row, or (no `update`) does nothing; optionally RETURNING a column
    (one row when inserted, none when not). Text with typed parameters: the same SQL on
    SQLite and PostgreSQL, and, unlike the dialects' insert().on_conflict_do_*() (which
    SQLAlchemy cannot cache), compiled once per engine. With `count`, `count` rows in one
    statement (one round trip, atomic on its own): their parameters are named by
    `many_values`."""
    action = ("DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in update)) if update else "DO NOTHING"
    names = [list(columns)] if not count else [[f"{c}_{i}" for c in columns] for i in range(count)]
    sql = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) "
        f"VALUES {', '.join('(' + ', '.join(':' + n for n in row) + ')' for row in names)} "
        f"ON CONFLICT ({', '.join(keys)}) {action}"
    )
    if returning is not None:
        sql += f" RETURNING {returning.name}"
    typed = (bindparam(n, type_=table.c[c].type) for row in names for n, c in zip(row, columns, strict=True))
    statement = text(sql).bindparams(*typed)
    return statement if returning is None else statement.columns(returning)


def many_values(rows: Sequence[Mapping[str, Any]], columns: tuple[str, ...]) -> dict[str, Any]:
    """The parameters of insert_on_conflict(..., count=len(rows)) for these rows."""
    return {f"{c}_{i}": row[c] for i, row in enumerate(rows) for c in columns}


class CoreRunner(StatementRunner):
    """Statements through a (sync-facade) SQLAlchemy connection: AsyncSession.run_sync."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.dialect = connection.dialect.name

    def rows(self, statement: Executable, values: Mapping[str, Any]) -> list[Any]:
        return list(self.connection.execute(statement, dict(values)).all())

    def execute(self, statement: Executable, values: Mapping[str, Any]) -> int:
        return int(self.connection.execute(statement, dict(values)).rowcount)

    def execute_many(self, statement: Executable, rows: Sequence[Mapping[str, Any]]) -> None:
        self.connection.execute(statement, [dict(row) for row in rows])

    def inserted_id(self, statement: Executable, values: Mapping[str, Any]) -> int:
        key = self.connection.execute(statement, dict(values)).inserted_primary_key
        assert key is not None
        return int(key[0])
