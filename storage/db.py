"""Engine and session factory for SQLite (embedded) and PostgreSQL.

SQLite gets WAL, a busy timeout and foreign keys, and its write transactions start with
BEGIN IMMEDIATE: Python's sqlite3 driver would otherwise begin lazily on the first write, so a
read-then-write transaction could lose an update to another writer. Read-only work uses
`Database.reader()`, which begins a deferred transaction and does not block writers.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.util import await_only

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 15_000
_READONLY = "tiendo_readonly"
_IN_WRITE: contextvars.ContextVar[bool] = contextvars.ContextVar("tiendo_in_write", default=False)


def _prepare_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take over transaction control from the sqlite3 module (see module docstring).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
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
            _prepare_sqlite(self.engine)
        self._writer = async_sessionmaker(self.engine, expire_on_commit=False)
        self._write_lock = asyncio.Lock()
        self._reader = async_sessionmaker(
            self.engine.execution_options(**{_READONLY: True}), expire_on_commit=False
        )

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A write transaction: committed when the block ends, rolled back on an exception.

        On SQLite, writers of this process queue on an asyncio lock before BEGIN IMMEDIATE:
        SQLite has one writer at a time, and its busy handler waits by sleeping (up to 100 ms
        a try), which under concurrent updates costs far more than waiting in turn. A
        transaction opened inside another one (same task) does not wait for itself."""
        if not self.is_sqlite or _IN_WRITE.get():
            async with self._writer() as session, session.begin():
                yield session
            return
        async with self._write_lock:
            token = _IN_WRITE.set(True)
            try:
                async with self._writer() as session, session.begin():
                    yield session
            finally:
                _IN_WRITE.reset(token)

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[AsyncSession]:
        """A read-only transaction that never blocks writers."""
        async with self._reader() as session, session.begin():
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()

    def safe_url(self) -> str:
        """The URL without its password, for logs."""
        return self.url.render_as_string(hide_password=True)
