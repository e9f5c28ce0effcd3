"""Leadership and chat claims among processes (bot/cluster.py over storage/cluster.py): two
Cluster objects with connections of their own stand for two processes. PostgreSQL only (the
SQLite lock is a file lock, tested here too)."""

from __future__ import annotations

import asyncio
import contextlib
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


class _Coordinator:
    """Stands for the PostgreSQL connection where the rounds themselves are replaced."""

    instance_id = "test-instance"

    async def listen(self, channel: str, callback: object) -> None:
        return None

    async def connect(self) -> None:
        return None

    async def close(self) -> None:
        return None


def test_stop_ends_the_elections_even_when_a_round_loses_the_cancellation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On Python 3.11 asyncio.wait_for (under every statement on the coordinator's connection)
    loses a cancellation that arrives as the statement completes. stop() must end the loop all
    the same: it once hung the suite, waiting for a loop that went on polling."""
    rounds = 0
    in_round = asyncio.Event()

    async def round_losing_the_cancel(self: Cluster) -> None:
        nonlocal rounds
        rounds += 1
        if rounds == 1:  # start()'s own round
            return
        if rounds == 2:
            in_round.set()
            with contextlib.suppress(asyncio.CancelledError):  # as wait_for does in that race
                await asyncio.Event().wait()
            return
        await asyncio.sleep(0.01)  # later rounds take a cancellation as they should

    monkeypatch.setattr(Cluster, "_round", round_losing_the_cancel)

    async def run() -> bool:
        cluster = Cluster(_Coordinator(), check_interval=0)  # type: ignore[arg-type]
        await cluster.start()
        await in_round.wait()
        done, _ = await asyncio.wait({asyncio.ensure_future(cluster.stop())}, timeout=2)
        return bool(done)

    assert asyncio.run(run()), "stop() waited for a loop that went on"
    assert rounds == 2  # no round after the stop
