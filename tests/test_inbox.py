"""The inbox: updates stored before they are confirmed, handled once in order, and a bad
update or a failing handler never stops the bot."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from sqlalchemy import select

from bot.logrepeat import RepeatFilter
from bot.services.inbox import MAX_ATTEMPTS, chat_of
from bot.updates import UpdateInbox
from storage.db import Database
from storage.handled import handling
from storage.models import AuditEntry, InboxUpdate
from tests.report_helpers import count, join
from tests.support.harness import Harness


def _inbox(harness: Harness) -> UpdateInbox:
    updater: Any = harness.app.updater
    return updater.inbox  # type: ignore[no-any-return]


async def _through_inbox(harness: Harness, payloads: list[dict[str, Any]]) -> int:
    """What `tiendo run` does with a batch from getUpdates: store, then handle what is new
    (each chat in order, chats alongside)."""
    new = await _inbox(harness).accept(payloads)
    await _handle_queued(harness)
    return new


async def _handle_queued(harness: Harness) -> None:
    app, queue = harness.app, harness.app.update_queue
    tasks = []
    while not queue.empty():
        update = queue.get_nowait()
        tasks.append(
            asyncio.create_task(app.update_processor.process_update(update, app.process_update(update)))
        )
    await asyncio.gather(*tasks)


async def _rows(db: Database) -> dict[int, InboxUpdate]:
    async with db.reader() as session:
        return {row.update_id: row for row in (await session.scalars(select(InboxUpdate))).all()}


def _unreadable_poll(update_id: int) -> dict[str, Any]:
    """A poll as an older Bot API server sends it: without persistent_id, which
    python-telegram-bot 22.8 requires."""
    return {
        "update_id": update_id,
        "poll": {
            "id": "5",
            "question": "?",
            "options": [{"text": "a", "voter_count": 0}],
            "total_voter_count": 0,
            "is_closed": False,
            "is_anonymous": True,
            "type": "regular",
            "allows_multiple_answers": False,
        },
    }


async def test_an_update_is_stored_handled_and_marked_once(harness: Harness, db: Database) -> None:
    payload = harness.api.send_text(701, "/start")
    assert await _through_inbox(harness, [payload]) == 1
    assert len(harness.api.sent(701)) == 1
    row = (await _rows(db))[payload["update_id"]]
    assert (row.state, row.chat_id, row.kind) == ("done", 701, "message")
    assert row.payload == payload and row.handled_at is not None
    # Telegram sends it again (its confirmation was lost): stored once, not answered twice.
    assert await _through_inbox(harness, [payload]) == 0
    assert len(harness.api.sent(701)) == 1


async def test_an_unreadable_update_is_kept_failed_and_the_rest_goes_on(
    harness: Harness, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    bad = _unreadable_poll(harness.api.send_text(702, "/help")["update_id"] + 1)
    later = harness.api.send_text(703, "/help")
    later["update_id"] = bad["update_id"] + 1
    with caplog.at_level(logging.INFO):
        await _through_inbox(harness, [bad, later])
    assert "/start" in (harness.api.last(703).plain_text or "")  # someone else is answered
    rows = await _rows(db)
    assert rows[bad["update_id"]].state == "failed"
    assert rows[bad["update_id"]].payload == bad  # kept for inspection
    assert "persistent_id" in (rows[bad["update_id"]].error or "")
    assert rows[later["update_id"]].state == "done"
    about = [r for r in caplog.records if str(bad["update_id"]) in r.getMessage()]
    assert len(about) == 1 and about[0].exc_info is None


async def test_a_failing_handler_tells_the_person_and_is_kept_failed(
    harness: Harness, db: Database, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(harness.services.people, "person", broken)
    payload = harness.api.send_text(704, "/help")
    with caplog.at_level(logging.INFO):
        await _through_inbox(harness, [payload])
    (reply,) = harness.api.sent(704)
    assert "chưa có gì được thay đổi" in (reply.plain_text or "")
    row = (await _rows(db))[payload["update_id"]]
    assert row.state == "failed" and "disk on fire" in (row.error or "")
    assert len([r for r in caplog.records if "disk on fire" in r.getMessage()]) == 1
    monkeypatch.undo()
    # The bot goes on.
    await _through_inbox(harness, [harness.api.send_text(704, "/help")])
    assert "/start" in (harness.api.last(704).plain_text or "")


async def test_done_is_committed_with_the_first_write_and_only_with_it(
    harness: Harness, db: Database
) -> None:
    """What a kill -9 leaves: an update whose write committed is done (not handled again);
    one whose write rolled back, or that wrote nothing yet, is pending (handled after start)."""
    service = harness.services.inbox
    audited = await count(db, AuditEntry)
    ids = [harness.api.send_text(705, f"m{i}")["update_id"] for i in range(3)]
    await service.store([{"update_id": i, "message": {"chat": {"id": 705}}} for i in ids])
    with handling(service.handling(ids[0])):
        await harness.services.audit.record("test.one", actor_telegram_id=705)
    with handling(service.handling(ids[1])), pytest.raises(RuntimeError):
        async with db.transaction() as session:
            session.add(AuditEntry(action="test.two", actor_telegram_id=705))
            await session.flush()
            raise RuntimeError("killed mid-transaction")
    rows = await _rows(db)
    assert [rows[i].state for i in ids] == ["done", "pending", "pending"]
    assert await count(db, AuditEntry) == audited + 1
    assert [stored.update_id for stored in await service.restart()] == ids[1:]


async def test_an_update_pending_after_several_starts_is_given_up(harness: Harness, db: Database) -> None:
    service = harness.services.inbox
    await service.store([{"update_id": 9, "message": {"chat": {"id": 706}}}])
    for _ in range(MAX_ATTEMPTS):
        assert [stored.update_id for stored in await service.restart()] == [9]
    assert await service.restart() == []
    row = (await _rows(db))[9]
    assert row.state == "failed" and "start-ups" in (row.error or "")


async def test_a_stored_update_is_handled_at_start_before_anything_new(
    harness: Harness, db: Database
) -> None:
    first = harness.api.send_text(707, "/help")
    await harness.services.inbox.store([first])  # stored, then the process died
    assert await _inbox(harness).replay() == 1
    second = harness.api.send_text(707, "/start")
    await _inbox(harness).accept([second])
    await _handle_queued(harness)
    help_, start = harness.api.sent(707)
    assert "/start" in (help_.plain_text or "") and "707" in (start.plain_text or "")
    assert {row.state for row in (await _rows(db)).values()} == {"done"}


def test_chat_of_reads_the_raw_json() -> None:
    assert chat_of({"update_id": 1, "message": {"chat": {"id": -100}, "from": {"id": 5}}}) == -100
    assert (
        chat_of({"update_id": 1, "callback_query": {"from": {"id": 5}, "message": {"chat": {"id": 7}}}}) == 7
    )
    assert chat_of({"update_id": 1, "callback_query": {"from": {"id": 5}}}) == 5
    assert chat_of({"update_id": 1, "poll_answer": {"user": {"id": 6}}}) == 6
    assert chat_of({"update_id": 1, "poll": {"id": "x"}}) is None
    assert chat_of({"update_id": 1, "message": {"chat": {"id": "7"}}}) is None
    assert chat_of({"update_id": 1, "message": "garbage"}) is None


def test_identical_log_lines_are_rate_limited() -> None:
    now = [0.0]
    repeat = RepeatFilter(window=60, clock=lambda: now[0])

    def line(message: str, *args: object) -> logging.LogRecord:
        return logging.LogRecord("x", logging.WARNING, __file__, 1, message, args, None)

    assert repeat.filter(line("getUpdates failed: %s", "timeout"))
    assert not any(repeat.filter(line("getUpdates failed: %s", "timeout")) for _ in range(1000))
    assert repeat.filter(line("getUpdates failed: %s", "refused"))  # a different line
    now[0] = 61.0
    again = line("getUpdates failed: %s", "timeout")
    assert repeat.filter(again)
    assert again.getMessage() == "getUpdates failed: timeout (and 1000 more times in the last 61 s)"


async def test_steps_committed_together_mark_each_of_their_updates_handled(
    harness: Harness, db: Database
) -> None:
    """Two people's answers written in one group commit (DraftService): each answer's update
    is done in that same transaction, not only the first one's."""
    await join(harness, 801, "TTRA")
    await join(harness, 802, "TTRA", name="Minh")
    service = harness.services.inbox
    await service.store([{"update_id": u, "message": {"chat": {"id": u - 9000}}} for u in (9801, 9802)])

    async def answer(update_id: int, person: int) -> None:
        with handling(service.handling(update_id)):
            await harness.services.drafts.save(person, "test", {"answer": update_id}, "results", person)

    await asyncio.gather(answer(9801, 801), answer(9802, 802))
    rows = await _rows(db)
    assert [rows[u].state for u in (9801, 9802)] == ["done", "done"]


async def test_a_batch_is_stored_in_one_statement_and_only_its_new_updates_come_back(
    harness: Harness, db: Database
) -> None:
    service = harness.services.inbox

    def batch(*ids: int) -> list[dict[str, Any]]:
        return [{"update_id": u, "message": {"chat": {"id": 7000 + u % 2}}} for u in ids]

    assert [s.update_id for s in await service.store(batch(9901, 9902))] == [9901, 9902]
    # Telegram sends 9902 again with two new ones: only those come back, in the order given.
    assert [s.update_id for s in await service.store(batch(9904, 9902, 9903))] == [9904, 9903]
    assert [s.update_id for s in await service.store(batch(9903))] == []
    assert sorted(u for u in await _rows(db) if u > 9900) == [9901, 9902, 9903, 9904]
