"""Engine and session factory for SQLite (embedded) and PostgreSQL.

SQLite gets WAL, a busy timeout and foreign keys, and its write transactions start with
BEGIN IMMEDIATE: Python's sqlite3 driver would otherwise begin lazily on the first write, so a
read-then-write transaction could lose an update to another writer. Read-only work uses
`Database.reader()`, which begins a deferred transaction and does not block writers.

Services reach the database one way, through this class: ORM sessions in a unit of work
(`transaction()`, `reader()`) and, for the small reads and writes of every chat step, Core
statements in a unit of work (`write_statements(fn)`, `read_statements(fn)`, with the runner of
storage/statements.py). How each engine runs them stays in here: on SQLite the statements go
straight to the sqlite3 driver in the event loop's thread (storage/direct.py: they take
microseconds, less than a hand-off to aiosqlite's worker thread), while ORM sessions run in
aiosqlite's thread. Work that may run long reads (nudge planning, whole-programme reports) runs
inside `offloaded()`, so that its statements too leave the event loop. A write in place never
waits for another process's lock (it would stall the loop): it begins in a thread instead.

On PostgreSQL every exchange with the server is a round trip, which a chat step pays in
latency and both processes pay in CPU (bench/pg_trips.py counts them). So: no ping when a
connection leaves the pool (SQLAlchemy's pre-ping costs three: BEGIN, ";", ROLLBACK); a
connection the server closed is noticed without asking it (`_prepare_postgresql`); reads and
single-statement writes run in autocommit (each statement its own transaction: under READ
COMMITTED a statement sees its own snapshot inside a transaction too, so a BEGIN and a COMMIT
around them bought nothing); and Core units of work run on a bare connection, not an ORM
session.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event, exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.sql.expression import Executable
from sqlalchemy.util import await_only

from storage import handled
from storage.direct import DirectReader, DirectWriter
from storage.statements import CompiledStatements, CoreRunner, StatementRunner

T = TypeVar("T")

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 15_000
_READONLY = "tiendo_readonly"
_IN_WRITE: contextvars.ContextVar[bool] = contextvars.ContextVar("tiendo_in_write", default=False)
_OFFLOADED: contextvars.ContextVar[bool] = contextvars.ContextVar("tiendo_offloaded", default=False)


def _prepare_sqlite(engine: AsyncEngine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take over transaction control from the sqlite3 module (see module docstring).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        sql = "BEGIN" if connection.get_execution_options().get(_READONLY) else "BEGIN IMMEDIATE"
        # Straight to aiosqlite: one trip to its thread (exec_driver_sql takes three: cursor,
        # execute, close), and every transaction and read begins this way. The cursor is
        # dropped unclosed on purpose (a close would be another trip; BEGIN has no rows).
        await_only(connection.connection.driver_connection.execute(sql))


def _prepare_postgresql(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine.pool, "checkout")
    def _on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        # A connection the server closed (a restart, an idle timeout) has seen its socket
        # close: asyncpg knows without a round trip. The pool then opens a new one.
        if dbapi_connection.driver_connection.is_closed():
            raise exc.DisconnectionError("connection closed by the server")


async def _mark_handled(session: AsyncSession, mark: handled.HandledMark | None) -> None:
    """The update being handled is done in this transaction (storage/handled.py)."""
    if mark is not None and not mark.committed:
        await session.execute(handled.MARK_DONE, mark.values())


def _committed(mark: handled.HandledMark | None) -> None:
    if mark is not None:
        mark.committed = True


class Database:
    """Owns the engine; hands out sessions. Created by build_application, never at import."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            database = self.url.database or ""
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
        else:
            kwargs.update(pool_size=10, max_overflow=10)
        self.engine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            _prepare_sqlite(self.engine, SQLITE_BUSY_TIMEOUT_MS)
        else:
            _prepare_postgresql(self.engine)
        # PostgreSQL: reads and single statements, each statement a transaction of its own.
        self._autocommit = (
            self.engine if self.is_sqlite else self.engine.execution_options(isolation_level="AUTOCOMMIT")
        )
        self._writer = async_sessionmaker(self.engine, expire_on_commit=False)
        self._write_lock = asyncio.Lock()
        self._reader = async_sessionmaker(
            self._autocommit.execution_options(**{_READONLY: True}), expire_on_commit=False
        )
        # Core statements straight on SQLite's driver (a file database only: each connection
        # to ":memory:" is a database of its own).
        self._direct: DirectWriter | None = None
        self._direct_reader: DirectReader | None = None
        # PostgreSQL: Core statements compiled once (storage/statements.py).
        self._compiled = None if self.is_sqlite else CompiledStatements(self.engine.dialect)
        if self.is_sqlite and (self.url.database or ":memory:") != ":memory:":
            self._direct = DirectWriter(
                self.url.database or "", self.engine.dialect, self._write_lock, SQLITE_BUSY_TIMEOUT_MS
            )
            self._direct_reader = DirectReader(self.url.database or "", self.engine.dialect)

    @contextlib.contextmanager
    def offloaded(self) -> Iterator[None]:
        """Statements run inside this block (in this task) leave the event loop's thread: for
        work whose reads may run long (planning, whole-programme reports), so that the event
        loop keeps serving chats meanwhile. (ORM sessions always do.)"""
        token = _OFFLOADED.set(True)
        try:
            yield
        finally:
            _OFFLOADED.reset(token)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A write transaction: committed when the block ends, rolled back on an exception.

        On SQLite, writers of this process queue on an asyncio lock before BEGIN IMMEDIATE:
        SQLite has one writer at a time, and its busy handler waits by sleeping (up to 100 ms
        a try), which under concurrent updates costs far more than waiting in turn. A
        transaction opened inside another one (same task) does not wait for itself."""
        mark = handled.pending()
        if _IN_WRITE.get():
            async with self._writer() as session, session.begin():
                yield session
                await _mark_handled(session, mark)
            _committed(mark)
            return
        async with self._write_lock if self.is_sqlite else contextlib.nullcontext():
            token = _IN_WRITE.set(True)
            try:
                async with self._writer() as session, session.begin():
                    yield session
                    await _mark_handled(session, mark)
                _committed(mark)
            finally:
                _IN_WRITE.reset(token)

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[AsyncSession]:
        """A read-only transaction that never blocks writers."""
        async with self._reader() as session, session.begin():
            yield session

    async def write_statements(self, fn: Callable[[StatementRunner], T]) -> T:
        """Run fn once, in one write transaction, with Core statements (storage/statements.py):
        for the small writes of every chat step. Committed when fn returns, rolled back if it
        raises. Not inside an open transaction() of the same task (RuntimeError): on SQLite
        it would wait for that transaction's lock forever. The update being handled, if any,
        is marked handled in the same transaction (storage/handled.py)."""
        self._not_in_write()
        if self._direct is not None:
            mark = handled.pending()
            result = await self._direct.write(fn if mark is None else handled.with_mark(fn, mark))
            _committed(mark)
            return result
        if self.is_sqlite:  # ":memory:": through aiosqlite, queued on the write lock
            async with self.transaction() as session:  # it adds the mark, if any
                return await session.run_sync(lambda sync: fn(CoreRunner(sync.connection())))
        mark = handled.pending()
        marked = fn if mark is None else handled.with_mark(fn, mark)
        async with self.engine.begin() as connection:
            result = await connection.run_sync(lambda sync: marked(CoreRunner(sync, self._compiled)))
        _committed(mark)
        return result

    async def write_statement(self, statement: Executable, values: Mapping[str, Any]) -> int:
        """Run one writing Core statement as a transaction of its own; its row count."""
        self._not_in_write()
        if handled.pending() is None:
            if self._direct is not None:
                return await self._direct.write_one(statement, values)
            if not self.is_sqlite:  # one statement: its own transaction (autocommit)
                return int(await self._autocommit_one(statement, values, rows=False))
        return await self.write_statements(lambda runner: runner.execute(statement, values))

    async def write_rows(self, statement: Executable, values: Mapping[str, Any]) -> list[Any]:
        """Run one writing Core statement that returns rows (INSERT … RETURNING) as a
        transaction of its own; its rows. On PostgreSQL in autocommit: one round trip."""
        self._not_in_write()
        if handled.pending() is None:
            if self._direct is not None:
                return await self._direct.write(lambda runner: runner.rows(statement, values))
            if not self.is_sqlite:
                return list(await self._autocommit_one(statement, values, rows=True))
        return await self.write_statements(lambda runner: runner.rows(statement, values))

    async def _autocommit_one(self, statement: Executable, values: Mapping[str, Any], *, rows: bool) -> Any:
        """PostgreSQL: one statement as a transaction of its own, as compiled once if it can
        be (storage/statements.py); its rows, or its row count."""
        compiled = self._compiled.get(statement) if self._compiled is not None else None
        async with self._autocommit.connect() as connection:
            if compiled is None:
                result = await connection.execute(statement, dict(values))
                return list(result.all()) if rows else result.rowcount
            result = await connection.exec_driver_sql(compiled.sql, compiled.bind(values))
            if not rows:
                return result.rowcount
            return compiled.rows(result.all())

    @staticmethod
    def _not_in_write() -> None:
        if _IN_WRITE.get():
            raise RuntimeError("Database.write_statements inside an open write transaction")

    async def read_statements(self, fn: Callable[[StatementRunner], T]) -> T:
        """Run fn in one read-only transaction with Core statements (storage/statements.py):
        for the small reads of every chat step."""
        if self._direct_reader is not None and not _OFFLOADED.get():
            return self._direct_reader.read(fn)
        if not self.is_sqlite:
            async with self._autocommit.connect() as connection:
                return await connection.run_sync(lambda sync: fn(CoreRunner(sync, self._compiled)))
        async with self.reader() as session:
            return await session.run_sync(lambda sync: fn(CoreRunner(sync.connection())))

    async def dispose(self) -> None:
        if self._direct_reader is not None:
            self._direct_reader.close()
        if self._direct is not None:
            self._direct.close()
        await self.engine.dispose()

    def safe_url(self) -> str:
        """The URL without its password, for logs."""
        return self.url.render_as_string(hide_password=True)
