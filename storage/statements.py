"""Core statements in a unit of work, one definition for both engines.

Repository functions that run at every chat step take a StatementRunner and run SQLAlchemy Core
statements on it; `Database.write_statements(fn)` and `Database.read_statements(fn)` (storage/db.py)
call fn with the runner of their engine inside one transaction. On PostgreSQL that runner is a
CoreRunner over a SQLAlchemy connection; on SQLite it runs the same statements straight on the
driver (storage/direct.py, which nothing outside storage/db.py imports). fn runs exactly once.

Both compile each statement once (CompiledStatements) and send the SQL as it is, with values
bound by the columns' own type processors, as SQLAlchemy would have bound them. SQLAlchemy's
own path pays at every execution for the statement's cache key (a walk of the whole statement:
a scope check's EXISTS is most of a step's), and compiles afresh each time a statement it
cannot cache (a dialect's ON CONFLICT DO UPDATE over a SELECT): on PostgreSQL that one
statement took 0.9 ms of the bot's CPU at every step of a report, 0.17 ms compiled once.
"""

from __future__ import annotations

import collections
import functools
from collections.abc import Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Column, Table, TextClause, bindparam, exc, insert, text
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
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


class CompiledStatement:
    """A Core statement compiled once for a dialect: its SQL, and its values bound positionally
    with the columns' types (their bind processors); rows read back through the selected
    columns' result processors (timestamps as aware datetimes, JSON decoded), named like
    SQLAlchemy's rows (row.active)."""

    def __init__(self, compiled: SQLCompiler, statement: Executable, dialect: Dialect) -> None:
        self.sql = str(compiled)
        names = compiled.positiontup or []
        processors = {
            name: bind.type._cached_bind_processor(dialect) for name, bind in compiled.binds.items()
        }
        # Values written into the statement (role == "focal") are bound parameters too.
        self._fixed = {
            name: bind.effective_value for name, bind in compiled.binds.items() if not bind.required
        }
        self._binders = [(name, processors.get(name)) for name in names]
        columns = getattr(statement, "selected_columns", None)
        self.results = (
            None
            if columns is None
            else [column.type._cached_result_processor(dialect, None) for column in columns]
        )
        self.row_type = (
            None
            if columns is None
            else collections.namedtuple(  # type: ignore[misc]
                "Row", [column.key or f"_{i}" for i, column in enumerate(columns)], rename=True
            )
        )

    def rows(self, raw: Sequence[Sequence[Any]]) -> list[Any]:
        """The driver's rows as SQLAlchemy's would read (those of a statement that selects
        nothing, as they came)."""
        if self.results is None or self.row_type is None:
            return list(raw)
        results, row_type = self.results, self.row_type
        return [
            row_type(
                *(
                    value if process is None or value is None else process(value)
                    for value, process in zip(row, results, strict=True)
                )
            )
            for row in raw
        ]

    def bind(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        out = []
        for name, process in self._binders:
            value = values[name] if name in values else self._fixed[name]
            out.append(value if process is None else process(value))
        return tuple(out)


class CompiledStatements:
    """The statements of one dialect, each compiled once, by identity: repositories keep their
    statements as module constants (or cache them), and each is kept alive beside its compiled
    form so that its id cannot be reused."""

    # A statement built afresh at every call would fill this: past the bound it starts over.
    MAX = 1024

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self._by_id: dict[int, tuple[Executable, CompiledStatement | None]] = {}

    def get(self, statement: Executable) -> CompiledStatement | None:
        """The statement compiled, or None if its SQL depends on its values (an IN of a list
        of values), which only SQLAlchemy's own execution renders."""
        found = self._by_id.get(id(statement))
        if found is None:
            compiled = cast(SQLCompiler, cast(ClauseElement, statement).compile(dialect=self.dialect))
            found = (statement, _compiled_once(compiled, statement, self.dialect))
            if len(self._by_id) >= self.MAX:
                self._by_id.clear()
            self._by_id[id(statement)] = found
        return found[1]


def _compiled_once(
    compiled: SQLCompiler, statement: Executable, dialect: Dialect
) -> CompiledStatement | None:
    if any(bind.expanding or bind.literal_execute for bind in compiled.binds.values()):
        return None
    try:
        return CompiledStatement(compiled, statement, dialect)
    except (exc.InvalidRequestError, TypeError):  # TypeError: its message fails to format
        # A column whose rows this dialect reads by the type the server names (a float or
        # numeric on PostgreSQL): known only to SQLAlchemy's own execution.
        return None


class CoreRunner(StatementRunner):
    """Statements through a (sync-facade) SQLAlchemy connection: AsyncSession.run_sync. With
    `compiled`, each statement is sent as compiled once (see the module's text)."""

    def __init__(self, connection: Connection, compiled: CompiledStatements | None = None) -> None:
        self.connection = connection
        self.dialect = connection.dialect.name
        self.compiled = compiled

    def _compiled(self, statement: Executable) -> CompiledStatement | None:
        return None if self.compiled is None else self.compiled.get(statement)

    def rows(self, statement: Executable, values: Mapping[str, Any]) -> list[Any]:
        compiled = self._compiled(statement)
        if compiled is None:
            return list(self.connection.execute(statement, dict(values)).all())
        return compiled.rows(self.connection.exec_driver_sql(compiled.sql, compiled.bind(values)).all())

    def execute(self, statement: Executable, values: Mapping[str, Any]) -> int:
        compiled = self._compiled(statement)
        if compiled is None:
            return int(self.connection.execute(statement, dict(values)).rowcount)
        return int(self.connection.exec_driver_sql(compiled.sql, compiled.bind(values)).rowcount)

    def execute_many(self, statement: Executable, rows: Sequence[Mapping[str, Any]]) -> None:
        compiled = self._compiled(statement)
        if compiled is None:
            self.connection.execute(statement, [dict(row) for row in rows])
        else:
            self.connection.exec_driver_sql(compiled.sql, [compiled.bind(row) for row in rows])

    def inserted_id(self, statement: Executable, values: Mapping[str, Any]) -> int:
        key = self.connection.execute(statement, dict(values)).inserted_primary_key
        assert key is not None
        return int(key[0])
