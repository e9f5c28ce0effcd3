"""Two programmes in chat: /tasks grouped by programme, /report by short code, closing a
programme (no more nudges, history readable), /programmes, and a digest per programme."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from bot.services.programme import ProgrammeService
from storage.db import Database
from storage.models import OutboxMessage, Programme, Task
from tests.conftest import ROOT
from tests.report_helpers import join
from tests.support.harness import Harness
from tests.test_digest import add_person

NEXT_PLAN = ROOT / "examples" / "programme-12-QD-BKHCN-2025.yaml"
FOCAL, MANAGER, ADMIN = 801, 802, 1000


@pytest.fixture
async def bot(harness: Harness) -> Harness:
    service = ProgrammeService(harness.services.db)
    plan = await service.read_plan(NEXT_PLAN.read_bytes(), NEXT_PLAN.name)
    assert plan.ok, plan.errors
    await service.apply(plan)
    await join(harness, FOCAL, "TTRA")
    await add_person(harness, MANAGER, "Hùng", role="manager")
    return harness


async def _task(db: Database, short: str, code: str) -> Task:
    async with db.reader() as session:
        task = await session.scalar(
            select(Task).join(Programme).where(Programme.short_code == short, Task.code == code)
        )
    assert task is not None
    return task


async def test_tasks_are_grouped_by_programme_and_codes_carry_its_short_code(bot: Harness) -> None:
    (listing,) = await bot.send(FOCAL, "/tasks")
    text = listing.plain_text or ""
    assert "Chương trình 2025" in text and "2025:5." in text
    labels = [b["text"] for b in listing.buttons]
    assert any("2025:" in label for label in labels)
    # The /report picker offers the tasks of both programmes, each code with its short code.
    (picker,) = await bot.send(FOCAL, "/report")
    picked = " ".join(b["text"] for b in picker.buttons)
    assert "2025:" in picked or "2024:" in picked


async def test_report_by_short_code_and_a_shared_bare_code_is_not_guessed(bot: Harness, db: Database) -> None:
    (ask,) = await bot.send(FOCAL, "/report 2024:5.9")
    assert "Tình trạng" in (ask.plain_text or "")
    await bot.send(FOCAL, "/cancel")
    (reply,) = await bot.send(FOCAL, "/report 5.9")  # both programmes have a 5.9
    text = reply.plain_text or ""
    # Not guessed, and not "no such task": the person is told which codes to type.
    assert "Tình trạng" not in text and "nhiều chương trình" in text
    assert "2024:5.9" in text and "2025:5.9" in text
    (ask,) = await bot.send(FOCAL, "/report 2025:5.9")
    assert "Tình trạng" in (ask.plain_text or "")


async def test_closing_a_programme_stops_its_nudges_and_keeps_its_history(bot: Harness, db: Database) -> None:
    old = await _task(db, "2024", "5.14")  # TTRA's, due 31/12/2024
    (ask,) = await bot.send(FOCAL, "/report 2024:5.14")
    await bot.send(FOCAL, "/cancel")
    bot.clock.set(datetime(2024, 12, 24, 2, 0, tzinfo=UTC))
    await bot.services.nudges.plan()
    assert old.id in await _pending_nudges(db)
    (closed,) = await bot.send(ADMIN, "/programme_close QD-59-BKHCN-2024")
    assert "95 nhiệm vụ" in (closed.plain_text or "")
    assert "Tỷ lệ hoàn thành: 0,0%" in (closed.plain_text or "")  # the reader's number format
    (again,) = await bot.send(ADMIN, "/programme_close 2024")
    assert "đã kết thúc" in (again.plain_text or "")
    assert (await _task(db, "2024", "5.14")).closed_at is not None
    before = len(bot.api.sent(FOCAL))
    await bot.services.nudges.plan()
    await bot.dispatch()
    assert len(bot.api.sent(FOCAL)) == before  # the planned nudge is not sent
    assert old.id not in await _pending_nudges(db)
    # Only one active programme now: a bare code is the 2025 task.
    (ask,) = await bot.send(FOCAL, "/report 5.14")
    assert "Tình trạng" in (ask.plain_text or "")
    await bot.send(FOCAL, "/cancel")
    (listing,) = await bot.send(MANAGER, "/programmes")
    text = listing.plain_text or ""
    assert "QD-59-BKHCN-2024" in text and "đã kết thúc" in text and "QD-12-BKHCN-2025" in text
    (history,) = await bot.send(FOCAL, "/history 2024:5.14")
    assert "Không có nhiệm vụ" not in (history.plain_text or "")


async def _pending_nudges(db: Database) -> set[int | None]:
    async with db.reader() as session:
        rows = await session.scalars(
            select(OutboxMessage.task_id).where(
                OutboxMessage.kind == "nudge", OutboxMessage.state == "pending"
            )
        )
        return set(rows)


async def test_stats_and_overdue_per_programme(bot: Harness) -> None:
    replies = await bot.send(MANAGER, "/stats")
    texts = [r.plain_text or "" for r in replies]
    assert any("2025 · " in t for t in texts) and any("2024 · " in t for t in texts)
    (one,) = await bot.send(MANAGER, "/stats 2025")
    assert "2025 · " in (one.plain_text or "") and "2024 · " not in (one.plain_text or "")
    (unknown,) = await bot.send(MANAGER, "/overdue NOPE")
    assert "NOPE" in (unknown.plain_text or "")


async def test_the_scheduled_digest_goes_out_once_per_active_programme(bot: Harness) -> None:
    await bot.services.digest.subscribe(MANAGER)
    bot.clock.set(datetime(2024, 2, 2, 9, 30, tzinfo=UTC))
    queued = await bot.services.digest.run_due()
    assert "2024:all" in queued and "2025:all" in queued
    assert await bot.services.digest.run_due() == []
    (ambiguous,) = await bot.send(MANAGER, "/digest")
    assert "QD-12-BKHCN-2025" in (ambiguous.plain_text or "")
    replies = await bot.send(MANAGER, "/digest 2025 2025-W05")
    assert "Chương trình 2025 (Quyết định số 12/QĐ-BKHCN)" in (replies[0].plain_text or "")
