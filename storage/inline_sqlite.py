"""An aiosqlite connection that runs SQLite in the event loop's own thread.

aiosqlite hands every call (cursor, execute, fetch, close, commit) to a worker thread and back
through the event loop: the profile of the running bot showed those hand-offs, not SQLite, to be
the main cost of a chat step. The statements of a chat step (a primary-key read, a small upsert,
a commit in WAL mode with synchronous=NORMAL, which does not fsync) take microseconds in SQLite
itself, so running them in place costs less than one hand-off. Heavy work (planning, report
building, imports) keeps aiosqlite's thread, so a long query never holds up the event loop.

SQLAlchemy's aiosqlite dialect drives this class as it drives aiosqlite's (it is one: only
the hand-off is replaced).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

import aiosqlite


class _RunNow:
    """Stands in for aiosqlite's queue to its worker thread: runs each call at once."""

    @staticmethod
    def put_nowait(item: tuple[Any, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except BaseException as exc:  # handed to the awaiting caller, as aiosqlite does
            if future is not None and not future.done():
                future.set_exception(exc)
            return
        if future is not None and not future.done():
            future.set_result(result)


class InlineConnection(aiosqlite.Connection):
    def __init__(self, connector: Callable[[], sqlite3.Connection]) -> None:
        super().__init__(connector, iter_chunk_size=64)
        self._tx = _RunNow()  # type: ignore[assignment]

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        return fn(*args, **kwargs)

    def __await__(self) -> Any:
        # No worker thread to start.
        return self._connect().__await__()


def inline_creator(database: str, timeout: float) -> Callable[[], InlineConnection]:
    def create() -> InlineConnection:
        return InlineConnection(lambda: sqlite3.connect(database, timeout=timeout, check_same_thread=False))

    return create
