"""Several `tiendo run` processes on one database: what only PostgreSQL can do for them.

PostgreSQL: each process keeps one dedicated connection (asyncpg, outside SQLAlchemy's pool)
for the whole run, and holds on it
- the leader's session advisory lock: the process holding it polls Telegram and runs the
  singletons (nudge planning, the outbox dispatcher, digests, draft expiry);
- one session advisory lock per chat it is handling, so that one chat's updates are never
  handled by two processes at once.
Session locks go with their connection: when a process dies (even by kill -9) the kernel closes
its socket, PostgreSQL ends the session and frees every lock it held at once, and another process
takes them at its next try. The connection's application_name names the process
(`tiendo:<host>:<pid>:<random>`), so pg_stat_activity tells which processes are alive. LISTEN and
NOTIFY on the same connection carry the wake-ups between processes.

SQLite: one process only (SQLite has one writer, and getUpdates one consumer). `SoloLock` takes an
exclusive lock on a file beside the database for the life of `tiendo run`; a second `tiendo run`
on the same file is refused. The kernel frees the lock when the process dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import secrets
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, make_url

log = logging.getLogger(__name__)

# The two-integer advisory lock space: (kind, key). "td" + a kind letter, as int4.
LEADER_LOCK = (0x7464_4C00, 0)  # "tdL"
_CHAT_KIND = 0x7464_4300  # "tdC"
APP_PREFIX = "tiendo:"
# Channels: a follower asks the leader to dispatch; a process asks the holder of a chat to
# look at its pending updates.
OUTBOX_CHANNEL = "tiendo_outbox"
INBOX_CHANNEL = "tiendo_inbox"


class CoordinationLost(ConnectionError):
    """The dedicated connection failed: every lock it held may be gone."""


class AlreadyRunning(Exception):
    """Another `tiendo run` holds this SQLite database."""


class SoloLock:
    """The one `tiendo run` on a SQLite file (an exclusive flock on `<database>.run-lock`)."""

    def __init__(self, database: str) -> None:
        self.path = Path(f"{database}.run-lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise AlreadyRunning."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise AlreadyRunning(str(self.path)) from None
        os.set_inheritable(fd, False)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def solo_lock_for(url: str) -> SoloLock | None:
    """The lock a `tiendo run` on this database must hold (a SQLite file), else None."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    return SoloLock(database) if database and database != ":memory:" else None


def is_postgresql(url: str) -> bool:
    return make_url(url).get_backend_name() == "postgresql"


def new_instance_id() -> str:
    """This process's name among the others (fits PostgreSQL's 63-byte application_name)."""
    host = socket.gethostname().split(".")[0][:24]
    return f"{APP_PREFIX}{host}:{os.getpid()}:{secrets.token_hex(3)}"


def chat_lock(chat_id: int) -> tuple[int, int]:
    """A chat's advisory lock: its id folded into 32 bits (two chats sharing a key are only
    handled by the same process; harmless)."""
    low = chat_id & 0xFFFF_FFFF
    return (_CHAT_KIND, low - (1 << 32) if low >= (1 << 31) else low)


def _asyncpg_dsn(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class PgCoordinator:
    """The dedicated connection of one process, with the locks it holds. Statements on it run
    one at a time (asyncpg allows no overlap on a connection); each is a few hundred µs."""

    def __init__(self, url: str, instance_id: str) -> None:
        self.url = make_url(url)
        self.instance_id = instance_id
        self._conn: Any = None
        self._lock = asyncio.Lock()
        self._listeners: dict[str, Callable[[str], None]] = {}

    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    async def connect(self) -> None:
        """(Re)open the connection; every lock of an earlier one is gone."""
        import asyncpg

        await self.close()
        query = dict(self.url.query)
        try:
            conn = await asyncpg.connect(
                _asyncpg_dsn(self.url.set(query={})),
                server_settings={"application_name": self.instance_id[:63]},
                timeout=10,
                **({"ssl": query["ssl"]} if "ssl" in query else {}),
            )
        except (asyncpg.PostgresError, OSError, TimeoutError) as exc:
            raise CoordinationLost(f"{type(exc).__name__}: {exc}") from exc
        self._conn = conn
        for channel, callback in self._listeners.items():
            await conn.add_listener(channel, self._relay(callback))

    @staticmethod
    def _relay(callback: Callable[[str], None]) -> Callable[..., None]:
        def on_notify(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
            callback(payload)

        return on_notify

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await conn.close()

    async def _fetch(self, method: str, sql: str, *args: Any) -> Any:
        import asyncpg

        if not self.connected:
            raise CoordinationLost("connection closed")
        try:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for loses a cancellation that
            # arrives as the statement completes (Cluster.stop() then waited on a loop that went on).
            async with self._lock:
                async with asyncio.timeout(10):
                    return await getattr(self._conn, method)(sql, *args)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
            raise CoordinationLost(f"{type(exc).__name__}: {exc}") from exc

    async def _fetchval(self, sql: str, *args: Any) -> Any:
        return await self._fetch("fetchval", sql, *args)

    async def try_lock(self, key: tuple[int, int]) -> bool:
        return bool(await self._fetchval("SELECT pg_try_advisory_lock($1, $2)", *key))

    async def unlock(self, key: tuple[int, int]) -> bool:
        return bool(await self._fetchval("SELECT pg_advisory_unlock($1, $2)", *key))

    async def ping(self) -> None:
        """Raises if the connection (and with it every lock held) is gone."""
        await self._fetchval("SELECT 1")

    async def live_instances(self) -> set[str]:
        """The processes alive on this database (their dedicated connections)."""
        rows = await self._fetch(
            "fetch",
            "SELECT application_name FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name LIKE $1",
            APP_PREFIX + "%",
        )
        return {row[0] for row in rows}

    async def notify(self, channel: str, payload: str = "") -> None:
        await self._fetchval("SELECT pg_notify($1, $2)::text", channel, payload)

    async def listen(self, channel: str, callback: Callable[[str], None]) -> None:
        """Call callback(payload) for each NOTIFY on the channel (kept across reconnects)."""
        self._listeners[channel] = callback
        if self.connected:
            await self._conn.add_listener(channel, self._relay(callback))
