"""Storage on each engine: import, refusal, invites, UTC times, dedup, concurrent writers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from bot.clock import FixedClock
from bot.services.invites import InviteService, RedeemOutcome
from bot.services.plans import parse_plan
from bot.services.programme import ProgrammeService
from storage.db import Database
from storage.models import AuditEntry, OutboxMessage, Task, TaskGroup, Unit, User
from storage.repositories.users import UserRepository
from tests.conftest import EXAMPLE_PLAN


async def count(db: Database, model: type) -> int:
    async with db.reader() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def import_example(db: Database) -> None:
    service = ProgrammeService(db)
    # Parsed in this process: a seed for many tests (read_plan's worker process is tested below
    # and in test_plan_limits.py).
    plan = parse_plan(EXAMPLE_PLAN.read_bytes(), EXAMPLE_PLAN.name)
    result = await service.apply(plan)
    assert result.applied, plan.errors


async def test_reimport_updates_by_code_and_never_duplicates(db: Database) -> None:
    await import_example(db)
    groups, tasks, units = await count(db, TaskGroup), await count(db, Task), await count(db, Unit)
    assert groups == 7 and tasks >= 30

    service = ProgrammeService(db)
    text = EXAMPLE_PLAN.read_text(encoding="utf-8")
    plan = await service.read_plan(text.encode(), EXAMPLE_PLAN.name)
    result = await service.apply(plan)
    assert result.touched == 0
    assert result.count("task", "unchanged") == tasks

    # Move the Law on Standards from 2024-05-20 to 2024-06-15: one task changes, in place.
    changed = text.replace("deadline: 2024-05-20", "deadline: 2024-06-15", 1)
    plan = await service.read_plan(changed.encode(), EXAMPLE_PLAN.name)
    result = await service.apply(plan)
    assert [c.code for c in result.changes if c.action == "changed"] == ["2.1"]
    assert (await count(db, Task), await count(db, Unit)) == (tasks, units)
    async with db.reader() as session:
        task = await session.scalar(select(Task).where(Task.code == "2.1"))
        assert task is not None
        assert task.deadline is not None and task.deadline.isoformat() == "2024-06-15"
        assert task.deadline_version == 2


async def test_a_refused_file_writes_nothing(db: Database) -> None:
    await import_example(db)
    before = (await count(db, Task), await count(db, AuditEntry))
    service = ProgrammeService(db)
    bad = EXAMPLE_PLAN.read_text(encoding="utf-8").replace("deadline: 2024-05-20", "deadline: 2024-02-30", 1)
    plan = await service.read_plan(bad.encode(), EXAMPLE_PLAN.name)
    result = await service.apply(plan)
    assert not result.applied
    assert [e.key for e in result.errors] == ["plan.bad_date"]
    assert (await count(db, Task), await count(db, AuditEntry)) == before


async def test_invites_bind_once_and_expire(db: Database, clock: FixedClock) -> None:
    await import_example(db)
    invites = InviteService(db, clock)
    invite = await invites.create("VP", "focal", timedelta(days=7))
    async with db.reader() as session:
        stored = await session.scalar(select(func.count()).where(AuditEntry.action == "invite.create"))
    assert stored == 1

    first = await invites.redeem(invite.code, 501, "Lan", None, "lan")
    assert (first.outcome, first.unit_code, first.role) == (RedeemOutcome.OK, "VP", "focal")
    again = await invites.redeem(invite.code, 502, "Minh", None, None)
    assert again.outcome is RedeemOutcome.USED
    assert (await invites.redeem("no-such-code", 502, "Minh", None, None)).outcome is RedeemOutcome.UNKNOWN

    late = await invites.create("KHTC", "leader", timedelta(hours=1))
    clock.advance(timedelta(hours=1))
    assert (await invites.redeem(late.code, 502, "Minh", None, None)).outcome is RedeemOutcome.EXPIRED
    async with db.reader() as session:
        lan = await UserRepository(session).by_telegram_id(501)
        assert lan is not None and [(m.unit.code, m.role) for m in lan.memberships] == [("VP", "focal")]
        assert await UserRepository(session).by_telegram_id(502) is None


async def test_times_come_back_aware_and_in_utc(db: Database) -> None:
    local = datetime(2024, 1, 31, 9, 0, tzinfo=UTC).astimezone(
        __import__("zoneinfo").ZoneInfo("Asia/Ho_Chi_Minh")
    )
    async with db.transaction() as session:
        session.add(User(telegram_id=7, first_name="A", last_seen_at=local))
    async with db.reader() as session:
        user = await session.scalar(select(User).where(User.telegram_id == 7))
        assert user is not None and user.last_seen_at is not None
        assert user.last_seen_at.tzinfo is not None
        assert user.last_seen_at == local
    with pytest.raises(Exception, match="naive datetime"):
        async with db.transaction() as session:
            session.add(User(telegram_id=8, first_name="B", last_seen_at=datetime(2024, 1, 1)))
            await session.flush()


async def test_outbox_dedup_key_is_unique(db: Database) -> None:
    due = datetime(2024, 1, 31, 2, 0, tzinfo=UTC)
    async with db.transaction() as session:
        session.add(OutboxMessage(dedup_key="nudge:1:1:-3:42", kind="nudge", chat_id=42, due_at=due))
    with pytest.raises(IntegrityError):
        async with db.transaction() as session:
            session.add(OutboxMessage(dedup_key="nudge:1:1:-3:42", kind="nudge", chat_id=42, due_at=due))
    assert await count(db, OutboxMessage) == 1


async def test_concurrent_read_modify_write_loses_no_update(db: Database) -> None:
    await import_example(db)

    async def bump() -> None:
        async with db.transaction() as session:
            task = await session.scalar(select(Task).where(Task.code == "1.1").with_for_update())
            assert task is not None
            await asyncio.sleep(0)
            task.deadline_version += 1

    await asyncio.gather(*(bump() for _ in range(20)))
    async with db.reader() as session:
        version = await session.scalar(select(Task.deadline_version).where(Task.code == "1.1"))
    assert version == 21


async def test_migrations_build_exactly_the_models_schema(db: Database) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from storage.models import Base

    async with db.engine.connect() as conn:
        diff = await conn.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
        )
    assert diff == []
