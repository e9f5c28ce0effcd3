"""SQLite statements run straight on the sqlite3 driver, for the reads and writes of every chat
step: storage/db.py's fast path on SQLite, used by nothing else (services see only Database and
the runner interface of storage/statements.py).

Each answer in a guided flow is committed before the next question goes out. Through
SQLAlchemy's session that write cost about a millisecond of CPU (bench/report_steps.py), twenty
times what SQLite itself spends on it (a primary-key upsert and a commit in WAL mode with
synchronous=NORMAL, which does not fsync). So the per-step write runs here: the statements are
still written with SQLAlchemy Core (one definition for both engines) and compiled once for SQLite
(storage/statements.py: CompiledStatements), with SQLAlchemy's own type processors binding the
values, so a row written here reads back through the ORM exactly as one written there.

The connection belongs to this process's writers: a write takes `Database`'s write lock (the
same one every SQLAlchemy write transaction takes), then runs synchronously in the event loop,
where no other coroutine can interleave. If another process holds SQLite's write lock (say
`tiendo import` of a large plan), the write is not waited for in place, which would stall the
loop: it goes to a worker thread and waits there.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy.engine import Dialect
from sqlalchemy.sql.expression import Executable

from storage.statements import CompiledStatement, CompiledStatements, StatementRunner

T = TypeVar("T")

# In the event loop, a lock held by another process is waited for this long before the write
# moves to a thread (where it waits up to the usual busy timeout).
IN_PLACE_BUSY_TIMEOUT_MS = 20


class DirectConnection(StatementRunner):
    def __init__(self, raw: sqlite3.Connection, dialect: Dialect) -> None:
        self.raw = raw
        self.sqlite = dialect
        self.dialect = dialect.name
        self._compiled = CompiledStatements(dialect)

    def _statement(self, statement: Executable) -> CompiledStatement:
        compiled = self._compiled.get(statement)
        if compiled is None:
            # Its SQL depends on its values (an IN of a list), or its rows need SQLAlchemy's own
            # execution: neither runs on the driver directly.
            raise ValueError(f"a statement that cannot be compiled once cannot run here: {statement}")
        return compiled

    def rows(self, statement: Executable, values: Mapping[str, Any]) -> list[Any]:
        compiled = self._statement(statement)
        return compiled.rows(self.raw.execute(compiled.sql, compiled.bind(values)).fetchall())

    def execute(self, statement: Executable, values: Mapping[str, Any]) -> int:
        compiled = self._statement(statement)
        return self.raw.execute(compiled.sql, compiled.bind(values)).rowcount

    def execute_many(self, statement: Executable, rows: Sequence[Mapping[str, Any]]) -> None:
        compiled = self._statement(statement)
        self.raw.executemany(compiled.sql, [compiled.bind(row) for row in rows])

    def inserted_id(self, statement: Executable, values: Mapping[str, Any]) -> int:
        compiled = self._statement(statement)
        row_id = self.raw.execute(compiled.sql, compiled.bind(values)).lastrowid
        assert row_id is not None
        return int(row_id)


class _Owned:
    """A sqlite3 connection of this process's own, opened when first needed, set up as
    storage/db.py sets up SQLAlchemy's (WAL, foreign keys, synchronous=NORMAL)."""

    def __init__(self, path: str, dialect: Dialect) -> None:
        self.path = path
        self._dialect = dialect
        self._connection: DirectConnection | None = None
        self._timeout = -1

    def _conn(self, busy_timeout_ms: int) -> DirectConnection:
        if self._connection is None:
            raw = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            raw.execute("PRAGMA journal_mode=WAL")
            raw.execute("PRAGMA foreign_keys=ON")
            raw.execute("PRAGMA synchronous=NORMAL")
            self._connection = DirectConnection(raw, self._dialect)
        if busy_timeout_ms != self._timeout:
            self._connection.raw.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
            self._timeout = busy_timeout_ms
        return self._connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.raw.close()
            self._connection = None
            self._timeout = -1


class DirectReader(_Owned):
    """Read transactions, run in place: in WAL mode a reader never waits for a writer, so
    nothing here can stall the event loop for long. For the small reads of every chat step
    (who is asking, which task)."""

    def read(self, fn: Callable[[StatementRunner], T]) -> T:
        conn = self._conn(IN_PLACE_BUSY_TIMEOUT_MS)
        conn.raw.execute("BEGIN")  # one snapshot for every statement of fn
        try:
            return fn(conn)
        finally:
            conn.raw.execute("COMMIT")


class DirectWriter(_Owned):
    """Write transactions (see module doc)."""

    def __init__(self, path: str, dialect: Dialect, lock: asyncio.Lock, busy_timeout_ms: int) -> None:
        super().__init__(path, dialect)
        self.lock = lock
        self.busy_timeout_ms = busy_timeout_ms

    def _begin(self, busy_timeout_ms: int) -> DirectConnection:
        conn = self._conn(busy_timeout_ms)
        conn.raw.execute("BEGIN IMMEDIATE")
        return conn

    @staticmethod
    def _finish(conn: DirectConnection, fn: Callable[[StatementRunner], T]) -> T:
        """Run fn in the begun transaction and commit; roll back if fn or the commit fails."""
        try:
            result = fn(conn)
            conn.raw.execute("COMMIT")
        except BaseException:
            if conn.raw.in_transaction:
                conn.raw.execute("ROLLBACK")
            raise
        return result

    def _run(self, fn: Callable[[StatementRunner], T], busy_timeout_ms: int) -> T:
        return self._finish(self._begin(busy_timeout_ms), fn)

    async def write(self, fn: Callable[[StatementRunner], T]) -> T:
        """Run fn once, in one write transaction (BEGIN IMMEDIATE … COMMIT; rolled back if it
        raises). Only BEGIN is retried: if another process holds SQLite's write lock, the
        transaction begins in a worker thread instead, which waits for it, and fn runs there."""
        async with self.lock:
            try:
                conn = self._begin(IN_PLACE_BUSY_TIMEOUT_MS)
            except sqlite3.OperationalError as exc:
                if not is_busy(exc):
                    raise
                return await asyncio.to_thread(self._run, fn, self.busy_timeout_ms)
            return self._finish(conn, fn)

    async def write_one(self, statement: Executable, values: Mapping[str, Any]) -> int:
        """Run one statement as a transaction of its own (SQLite's autocommit: no BEGIN or
        COMMIT of ours, a third of the calls into SQLite); its row count. If another process
        holds the lock, it runs in a thread inside BEGIN IMMEDIATE, which waits for it."""
        async with self.lock:
            try:
                return self._conn(IN_PLACE_BUSY_TIMEOUT_MS).execute(statement, values)
            except sqlite3.OperationalError as exc:
                if not is_busy(exc):
                    raise
            return await asyncio.to_thread(
                self._run, lambda runner: runner.execute(statement, values), self.busy_timeout_ms
            )


def is_busy(exc: Exception) -> bool:
    """Whether SQLite refused because another connection holds the lock."""
    message = str(exc).lower()
    return "locked" in message or "busy" in message
