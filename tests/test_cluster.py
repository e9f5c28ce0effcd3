"""Leadership and chat claims among processes (bot/cluster.py over storage/cluster.py): two
Cluster objects with connections of their own stand for two processes. PostgreSQL only (the
SQLite lock is a file lock, tested here too)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.cluster import Claim, Cluster
from storage.cluster import AlreadyRunning, PgCoordinator, new_instance_id, solo_lock_for
from tests.conftest import PG_URL


def test_a_second_holder_of_one_sqlite_file_is_refused(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'tiendo.db'}"
    first, second = solo_lock_for(url), solo_lock_for(url)
    assert first is not None and second is not None
    first.acquire()
    with pytest.raises(AlreadyRunning):
        second.acquire()
    first.release()
    second.acquire()  # free again once the first lets go (or dies)
    second.release()
    assert solo_lock_for("sqlite+aiosqlite:///:memory:") is None
    assert solo_lock_for("postgresql+asyncpg://u@h/db") is None


def test_alone_a_process_leads_and_holds_every_chat() -> None:
    cluster = Cluster(None)
    assert cluster.leading and not cluster.clustered
    assert cluster.holds(42)
    assert asyncio.run(cluster.take(42)) is Claim.HELD


@pytest.mark.skipif(not PG_URL, reason="needs TIENDO_TEST_DATABASE_URL")
def test_one_leader_one_holder_per_chat_and_a_takeover(pg_url: str) -> None:
    async def run() -> None:
        led: list[str] = []
        a = Cluster(PgCoordinator(pg_url, new_instance_id()), check_interval=0.2, linger=0.3)
        b = Cluster(PgCoordinator(pg_url, new_instance_id()), check_interval=0.2, linger=0.3)
        for cluster, name in ((a, "a"), (b, "b")):

            async def lead(name: str = name) -> None:
                led.append(name)

            cluster.on_lead = lead
        taken: list[tuple[str, int]] = []

        async def took_a(chat: int) -> None:
            taken.append(("a", chat))

        async def took_b(chat: int) -> None:
            taken.append(("b", chat))

        a.on_take, b.on_take = took_a, took_b
        await a.start()
        await b.start()
        try:
            assert led == ["a"] and a.leading and not b.leading
            assert await a.take(7) is Claim.TAKEN
            assert await a.take(7) is Claim.HELD
            assert await b.take(7) is Claim.ELSEWHERE
            assert a.holds(7) and not b.holds(7)
            assert taken == [("a", 7)]
            # Idle chats are let go (linger), then free for the other process.
            await asyncio.sleep(0.8)
            assert not a.holds(7)
            assert await b.take(7) is Claim.TAKEN
            # The leader's connection dies: the other leads at its next try.
            assert a.coordinator is not None
            await a.stop()
            for _ in range(50):
                if b.leading:
                    break
                await asyncio.sleep(0.1)
            assert b.leading and led == ["a", "b"]
            live = await b.coordinator.live_instances() if b.coordinator else set()
            assert b.instance_id in live and a.instance_id not in live
        finally:
            await a.stop()
            await b.stop()

    asyncio.run(run())
