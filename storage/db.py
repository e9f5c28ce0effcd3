"""Engine and session factory for SQLite (embedded) and PostgreSQL.

SQLite gets WAL, a busy timeout and foreign keys, and its write transactions start with
BEGIN IMMEDIATE: Python's sqlite3 driver would otherwise begin lazily on the first write, so a
read-then-write transaction could lose an update to another writer. Read-only work uses
`Database.reader()`, which begins a deferred transaction and does not block writers.

On SQLite, sessions run their statements in the event loop's own thread (storage/inline_sqlite.py):
a chat step's statements take microseconds in SQLite, far less than aiosqlite's hand-off to its
worker thread and back. Work that may run long queries (nudge planning, digests over the whole
programme) runs inside `Database.offloaded()`, which keeps aiosqlite's thread so the event loop
goes on serving chats meanwhile. An in-place write transaction never waits for another process's
lock (it would stall the loop): if one holds it, the transaction runs in aiosqlite's thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.sql.expression import Executable
from sqlalchemy.util import await_only

from storage import handled
from storage.direct import (
    IN_PLACE_BUSY_TIMEOUT_MS,
    CoreRunner,
    DirectReader,
    DirectWriter,
    StatementRunner,
    is_busy,
)
from storage.inline_sqlite import inline_creator

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
            kwargs.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
        self.engine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            _prepare_sqlite(self.engine, SQLITE_BUSY_TIMEOUT_MS)
        self._writer = async_sessionmaker(self.engine, expire_on_commit=False)
        self._write_lock = asyncio.Lock()
        self._reader = async_sessionmaker(
            self.engine.execution_options(**{_READONLY: True}), expire_on_commit=False
        )
        # SQLite in the event loop's thread (a file database only: each connection to
        # ":memory:" is a database of its own).
        self.inline_engine: AsyncEngine | None = None
        self.direct: DirectWriter | None = None
        self.direct_reader: DirectReader | None = None
        if self.is_sqlite and (self.url.database or ":memory:") != ":memory:":
            self.direct = DirectWriter(
                self.url.database or "", self.engine.dialect, self._write_lock, SQLITE_BUSY_TIMEOUT_MS
            )
            self.direct_reader = DirectReader(self.url.database or "", self.engine.dialect)
            self.inline_engine = create_async_engine(
                url,
                echo=echo,
                async_creator=inline_creator(self.url.database or "", SQLITE_BUSY_TIMEOUT_MS / 1000),
            )
            _prepare_sqlite(self.inline_engine, IN_PLACE_BUSY_TIMEOUT_MS)
            self._inline_writer = async_sessionmaker(self.inline_engine, expire_on_commit=False)
            self._inline_reader = async_sessionmaker(
                self.inline_engine.execution_options(**{_READONLY: True}), expire_on_commit=False
            )

    def _inline(self) -> bool:
        return self.inline_engine is not None and not _OFFLOADED.get()

    @contextlib.contextmanager
    def offloaded(self) -> Iterator[None]:
        """Sessions opened inside this block (in this task) run their SQL in aiosqlite's
        worker thread: for work whose queries may run long (planning, whole-programme
        reports), so that the event loop keeps serving chats meanwhile."""
        token = _OFFLOADED.set(True)
        try:
            yield
        finally:
            _OFFLOADED.reset(token)

    async def _begin_inline_write(self) -> AsyncSession | None:
        """A write transaction in place, begun (BEGIN IMMEDIATE); None when another process
        holds SQLite's write lock (waiting for it in place would stall the event loop)."""
        session = self._inline_writer()
        try:
            await session.begin()
            await session.connection()
        except (OperationalError, sqlite3.OperationalError) as exc:
            # BEGIN goes to the driver itself (_on_begin): its error arrives unwrapped.
            await session.close()
            if is_busy(exc):
                return None
            raise
        except BaseException:
            await session.close()
            raise
        return session

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A write transaction: committed when the block ends, rolled back on an exception.

        On SQLite, writers of this process queue on an asyncio lock before BEGIN IMMEDIATE:
        SQLite has one writer at a time, and its busy handler waits by sleeping (up to 100 ms
        a try), which under concurrent updates costs far more than waiting in turn. A
        transaction opened inside another one (same task) does not wait for itself."""
        mark = handled.pending()
        if not self.is_sqlite or _IN_WRITE.get():
            async with self._writer() as session, session.begin():
                yield session
                await _mark_handled(session, mark)
            _committed(mark)
            return
        async with self._write_lock:
            token = _IN_WRITE.set(True)
            try:
                inline = await self._begin_inline_write() if self._inline() else None
                if inline is None:
                    async with self._writer() as session, session.begin():
                        yield session
                        await _mark_handled(session, mark)
                    _committed(mark)
                    return
                try:
                    yield inline
                    await _mark_handled(inline, mark)
                except BaseException:
                    await inline.rollback()
                    raise
                else:
                    await inline.commit()
                    _committed(mark)
                finally:
                    await inline.close()
            finally:
                _IN_WRITE.reset(token)

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[AsyncSession]:
        """A read-only transaction that never blocks writers."""
        factory = self._inline_reader if self._inline() else self._reader
        async with factory() as session, session.begin():
            yield session

    async def write_statements(self, fn: Callable[[StatementRunner], T]) -> T:
        """Run fn in one write transaction with Core statements only: straight on SQLite's
        driver (storage/direct.py), or through SQLAlchemy on PostgreSQL. For the small
        writes of every chat step; fn may run twice (on SQLite, when another process held
        the lock), so it must only run statements."""
        if self.direct is not None:
            mark = handled.pending()
            result = await self._direct_writer().write(fn if mark is None else handled.with_mark(fn, mark))
            _committed(mark)
            return result
        # transaction() adds the mark of the update being handled, if any.
        async with self.transaction() as session:
            return await session.run_sync(lambda sync: fn(CoreRunner(sync.connection())))

    async def write_statement(self, statement: Executable, values: Mapping[str, Any]) -> int:
        """Run one writing Core statement as a transaction of its own; its row count. On
        SQLite straight on the driver with no BEGIN or COMMIT around it (storage/direct.py),
        on PostgreSQL through SQLAlchemy."""
        if self.direct is not None and handled.pending() is None:
            return await self._direct_writer().write_one(statement, values)
        return await self.write_statements(lambda runner: runner.execute(statement, values))

    def _direct_writer(self) -> DirectWriter:
        assert self.direct is not None
        if _IN_WRITE.get():
            # This task holds the write lock already: waiting for it would never end.
            raise RuntimeError("Database.write_statements inside an open write transaction")
        return self.direct

    async def read_statements(self, fn: Callable[[StatementRunner], T]) -> T:
        """Run fn in one read-only transaction with Core statements only: straight on SQLite's
        driver, in place (storage/direct.py), or through SQLAlchemy on PostgreSQL. For the
        small reads of every chat step."""
        if self.direct_reader is not None and not _OFFLOADED.get():
            return self.direct_reader.read(fn)
        async with self.reader() as session:
            return await session.run_sync(lambda sync: fn(CoreRunner(sync.connection())))

    async def dispose(self) -> None:
        if self.direct_reader is not None:
            self.direct_reader.close()
        if self.direct is not None:
            self.direct.close()
        await self.engine.dispose()
        if self.inline_engine is not None:
            await self.inline_engine.dispose()

    def safe_url(self) -> str:
        """The URL without its password, for logs."""
        return self.url.render_as_string(hide_password=True)
