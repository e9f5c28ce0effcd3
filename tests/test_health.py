"""/healthz, /readyz and /metrics (bot/health.py) and what they read (bot/metrics.py)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from bot import metrics
from bot.clock import FixedClock
from bot.config import Config
from bot.health import HealthServer
from bot.services.container import Services, build_services
from bot.services.outbox import OutgoingMessage
from handlers.wording import TelegramWording
from storage.db import Database
from tests.support.process import free_port


@pytest.fixture(autouse=True)
def fresh_metrics() -> Iterator[None]:
    metrics.reset()
    yield
    metrics.reset()


@pytest.fixture
async def served(config: Config, db: Database, clock: FixedClock) -> AsyncIterator[tuple[Services, str]]:
    port = free_port()
    services = build_services(
        config.with_overrides(health={"port": port}), wording=TelegramWording, db=db, clock=clock
    )
    server = HealthServer(services)
    server.start()
    yield services, f"http://127.0.0.1:{port}"
    await server.stop()


def test_intake_is_ready_once_updates_arrive_and_not_when_polling_stalls() -> None:
    now = [100.0]
    intake = metrics.Intake(clock=lambda: now[0])
    assert intake.receiving() == (False, "not started")
    intake.started("polling", poll_timeout=30)
    assert not intake.receiving()[0]  # no getUpdates answered yet
    intake.polled()
    now[0] += 59
    assert intake.receiving()[0]
    now[0] += 2  # 61 s: past the long poll's 30 s and the 30 s of grace
    assert intake.receiving() == (False, "last getUpdates answered 61 s ago")
    intake.polls = False  # an elected poller elsewhere: this instance still serves
    assert intake.receiving()[0]
    webhook = metrics.Intake(clock=lambda: now[0])
    webhook.started("webhook")
    now[0] += 3600  # a quiet night brings no post: still ready
    assert webhook.receiving() == (True, "webhook registered")


def test_leadership_is_one_alone_and_what_an_election_says() -> None:
    gauge = lambda: metrics.REGISTRY.get_sample_value("tiendo_leader")  # noqa: E731
    assert gauge() == 1.0
    metrics.set_leader_probe(lambda: False)
    assert gauge() == 0.0 and not metrics.leader()


async def test_alive_ready_and_metrics(served: tuple[Services, str]) -> None:
    services, base = served
    async with httpx.AsyncClient(base_url=base) as client:
        alive = await client.get("/healthz")
        assert (alive.status_code, alive.text) == (200, "ok\n")
        # Migrated, but no update has arrived yet: alive, not ready.
        waiting = await client.get("/readyz")
        assert waiting.status_code == 503
        body = waiting.json()
        assert body["checks"]["database"]["ok"] and not body["checks"]["updates"]["ok"]
        metrics.INTAKE.started("polling", 30)
        metrics.INTAKE.polled()
        ready = await client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["ready"] and ready.json()["leader"]

        # Two messages due, the older for ten minutes; one planned for tomorrow is no backlog.
        now = services.clock.now()
        await services.outbox.enqueue(
            [
                OutgoingMessage("a", "notice", 1, "x", due_at=now - timedelta(minutes=10)),
                OutgoingMessage("b", "notice", 2, "y"),
                OutgoingMessage("c", "nudge", 3, "z", due_at=now + timedelta(days=1)),
            ]
        )
        metrics.SENDS.labels(result="sent").inc()
        scraped = await client.get("/metrics")
        assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain")
        lines = scraped.text.splitlines()
        assert "tiendo_outbox_due 2.0" in lines
        assert "tiendo_outbox_oldest_due_age_seconds 600.0" in lines
        assert "tiendo_leader 1.0" in lines
        for kind in ("tiendo_updates_total counter", "tiendo_step_seconds histogram"):
            assert f"# TYPE {kind}" in lines
        # A counter of the whole process (other tests in it may have planned nudges already):
        # exposed as exactly what the process counted.
        planned = metrics.REGISTRY.get_sample_value("tiendo_nudges_planned_total")
        assert planned is not None and f"tiendo_nudges_planned_total {planned}" in lines
        assert any(line.startswith('tiendo_outbox_sends_total{result="sent"}') for line in lines)


async def test_not_ready_when_the_schema_is_behind(served: tuple[Services, str]) -> None:
    services, base = served
    metrics.INTAKE.started("webhook")
    async with services.db.engine.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    async with httpx.AsyncClient(base_url=base) as client:
        answer = await client.get("/readyz")
    assert answer.status_code == 503
    detail = answer.json()["checks"]["database"]["detail"]
    assert "schema at 0001" in detail and "tiendo init" in detail


@contextlib.asynccontextmanager
async def _client_on(config: Config, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The endpoints of a process whose database is `database_url`, webhook registered."""
    port = free_port()
    changed = config.with_overrides(health={"port": port}, database={"url": database_url})
    services = build_services(changed, wording=TelegramWording)
    server = HealthServer(services)
    server.start()
    metrics.INTAKE.started("webhook")
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            yield client
    finally:
        await server.stop()
        await services.db.dispose()


async def test_not_ready_when_the_database_is_gone(config: Config) -> None:
    async with _client_on(config, "postgresql+asyncpg://nobody@127.0.0.1:9/none") as client:
        answer = await client.get("/readyz")
        assert (await client.get("/healthz")).status_code == 200
        scrape = await client.get("/metrics")  # still answers, without the backlog
    assert answer.status_code == 503
    assert not json.loads(answer.text)["checks"]["database"]["ok"]
    assert scrape.status_code == 200


def test_the_latest_revision_is_read_without_alembic_as_alembic_reads_it() -> None:
    from storage import migrate, schema

    assert schema.head_revision() == migrate.head_revision()


async def test_an_empty_database_is_not_ready(config: Config, tmp_path: Path) -> None:
    async with _client_on(config, f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}") as client:
        answer = await client.get("/readyz")
    assert answer.status_code == 503 and not answer.json()["checks"]["database"]["ok"]
