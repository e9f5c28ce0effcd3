"""The per-step writes and reads that go straight to SQLite's driver (storage/direct.py):
they store and read back exactly what SQLAlchemy does, and a lock held by another process
(say `tiendo import` of a large plan) is waited for without freezing the bot."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Float, bindparam, select

from storage.db import Database
from storage.models import AuditEntry, KeyValue, table_of
from storage.repositories.reports import AUDIT
from storage.statements import StatementRunner, insert_on_conflict

AT = datetime(2024, 3, 13, 3, 4, 5, 678_000, tzinfo=UTC)


async def test_rows_written_and_read_directly_match_the_orm(db: Database) -> None:
    after = {"status": "Đang thực hiện", "percent": 50, "indicator_value": 86.5}

    def write(runner: StatementRunner) -> int:
        return runner.insert(
            AUDIT,
            {
                "at": AT,
                "action": "report.submit",
                "actor": "tg:7",
                "actor_telegram_id": 7,
                "entity": "report",
                "entity_id": "1",
                "after": after,
                "detail": "",
            },
        )

    entry_id = await db.write_statements(write)
    async with db.reader() as session:
        entry = await session.get(AuditEntry, entry_id)
    assert entry is not None and entry.at == AT and entry.after == after
    assert entry.before is None  # left out: SQL NULL, as the ORM stores it

    query = select(AUDIT.c.at, AUDIT.c.after, AUDIT.c.before).where(AUDIT.c.id == entry_id)
    row = (await db.read_statements(lambda runner: runner.rows(query, {})))[0]
    assert row.at == AT and row.at.tzinfo is not None
    assert row.after == after and row.before is None


async def test_a_float_comes_back_a_float_on_either_engine(db: Database) -> None:
    """Statements are sent as compiled once (storage/statements.py), except those whose rows
    PostgreSQL's driver reads by the type the server names (a float): they still run."""
    query = select(bindparam("x", type_=Float).label("x"), bindparam("at", type_=AUDIT.c.at.type).label("at"))
    row = (await db.read_statements(lambda runner: runner.rows(query, {"x": 86.5, "at": AT})))[0]
    assert row.x == 86.5 and row.at == AT


async def test_a_failed_write_changes_nothing(db: Database) -> None:
    kv = table_of(KeyValue)

    def write(runner: StatementRunner) -> None:
        runner.insert(kv, {"namespace": "t", "key": "k", "value": {"a": 1}, "updated_at": AT})
        raise RuntimeError("the step failed")

    with pytest.raises(RuntimeError):
        await db.write_statements(write)
    rows = await db.read_statements(lambda runner: runner.rows(select(kv.c.id), {}))
    assert rows == []


async def test_statements_inside_an_open_transaction_fail_instead_of_waiting_forever(db: Database) -> None:
    """On SQLite the write lock is the task's own already: refused, on either engine alike."""
    kv = table_of(KeyValue)

    def write(runner: StatementRunner) -> int:
        return runner.insert(kv, {"namespace": "t", "key": "inner", "value": {}, "updated_at": AT})

    single = db.write_statement(_KV_PUT, {"namespace": "t", "key": "single", "value": {}, "updated_at": AT})
    async with db.transaction():
        with pytest.raises(RuntimeError, match="inside an open write transaction"):
            await asyncio.wait_for(db.write_statements(write), 5)
        with pytest.raises(RuntimeError, match="inside an open write transaction"):
            await asyncio.wait_for(single, 5)


_KV_PUT = insert_on_conflict(
    table_of(KeyValue), ("namespace", "key"), ("namespace", "key", "value", "updated_at"), update=("value",)
)


async def _single_write(db: Database, value: dict[str, int]) -> None:
    """One statement, a transaction of its own (Database.write_statement)."""
    assert (
        await db.write_statement(_KV_PUT, {"namespace": "t", "key": "step", "value": value, "updated_at": AT})
        == 1
    )


async def _orm_write(db: Database, value: dict[str, int]) -> None:
    async with db.transaction() as session:
        session.add(KeyValue(namespace="t", key="step", value=value, updated_at=AT))


async def _direct_write(db: Database, value: dict[str, int]) -> None:
    calls = []

    def write(runner: StatementRunner) -> int:
        calls.append(1)
        row = {"namespace": "t", "key": "step", "value": value, "updated_at": AT}
        return runner.insert(table_of(KeyValue), row)

    await db.write_statements(write)
    assert len(calls) == 1  # a caller need not know how the engine waited for its lock


@pytest.mark.parametrize(
    "write", [_direct_write, _single_write, _orm_write], ids=["direct", "single", "session"]
)
async def test_a_lock_held_by_another_process_does_not_freeze_the_bot(db: Database, write: Any) -> None:
    if not db.is_sqlite:
        pytest.skip("SQLite's database-wide write lock")
    kv = table_of(KeyValue)
    # Another process (here: another connection) holds the write lock for 0.4 s.
    other = sqlite3.connect(db.url.database or "", isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    loop = asyncio.get_running_loop()
    loop.call_later(0.4, other.execute, "COMMIT")
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    started = time.monotonic()
    await write(db, {"step": 3})
    waited = time.monotonic() - started
    ticker.cancel()
    other.close()
    # The write waited for the lock (it was not lost or refused), and meanwhile the event
    # loop kept running: other chats were served.
    assert waited >= 0.35
    assert ticks >= 10
    rows = await db.read_statements(lambda runner: runner.rows(select(kv.c.key, kv.c.value), {}))
    assert [(r.key, r.value) for r in rows] == [("step", {"step": 3})]
