"""The outbox and its dispatcher: each message once, failures confined to their row."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.services.outbox import RECEIPT, RECEIPT_STALE, Button, OutgoingMessage
from storage.models import OutboxMessage, User
from tests.support.harness import Harness


async def rows(harness: Harness) -> dict[str, OutboxMessage]:
    async with harness.services.db.reader() as session:
        return {r.dedup_key: r for r in await session.scalars(select(OutboxMessage))}


async def test_a_key_is_sent_once_however_often_it_is_planned(harness: Harness) -> None:
    harness.api.user(601, "Lan")
    outbox = harness.services.outbox
    message = OutgoingMessage(
        "notice:1:601", "notice", 601, text="Nhiệm vụ <b>1.1</b>", buttons=[[Button("Báo cáo", "report", 1)]]
    )
    assert await outbox.enqueue([message]) == 1
    assert await outbox.enqueue([message]) == 0
    await harness.dispatch()
    await harness.dispatch()
    (sent,) = harness.api.sent(601)
    assert sent.plain_text == "Nhiệm vụ 1.1"
    assert sent.button_data("Báo cáo") == "rp:start:1"
    assert (await rows(harness))["notice:1:601"].state == "sent"


async def test_not_yet_due_waits(harness: Harness) -> None:
    harness.api.user(602, "Minh")
    later = harness.clock.now() + timedelta(hours=1)
    await harness.services.outbox.enqueue([OutgoingMessage("k", "notice", 602, "x", due_at=later)])
    await harness.dispatch()
    assert harness.api.sent(602) == []
    harness.clock.advance(timedelta(hours=1))
    await harness.dispatch()
    assert len(harness.api.sent(602)) == 1


async def test_retry_after_reschedules_only_that_row(harness: Harness) -> None:
    for chat in (603, 604):
        harness.api.user(chat, "U")
    harness.api.fail_next(603, "retry_after", retry_after=7)
    await harness.services.outbox.enqueue(
        [OutgoingMessage("a", "notice", 603, "một"), OutgoingMessage("b", "notice", 604, "hai")]
    )
    await harness.dispatch()
    assert [m.plain_text for m in harness.api.sent(604)] == ["hai"]
    assert harness.api.sent(603) == []
    row = (await rows(harness))["a"]
    assert row.state == "pending" and row.due_at == harness.clock.now() + timedelta(seconds=7)
    harness.clock.advance(timedelta(seconds=7))
    await harness.dispatch()
    assert [m.plain_text for m in harness.api.sent(603)] == ["một"]


async def test_a_blocked_user_is_marked_unreachable(harness: Harness) -> None:
    harness.api.user(605, "Hoa")
    async with harness.services.db.transaction() as session:
        user = User(telegram_id=605, first_name="Hoa")
        session.add(user)
        await session.flush()
        user_id = user.id
    harness.api.block(605)
    await harness.services.outbox.enqueue(
        [
            OutgoingMessage("c", "notice", 605, "x", user_id=user_id),
            OutgoingMessage("d", "notice", 605, "y", user_id=user_id),
        ]
    )
    await harness.dispatch()
    assert {r.state for r in (await rows(harness)).values()} == {"failed"}
    async with harness.services.db.reader() as session:
        stored = await session.get(User, user_id)
        assert stored is not None and stored.reachable is False


async def test_a_claim_left_by_a_dead_process_is_sent_after_restart(harness: Harness) -> None:
    harness.api.user(606, "An")
    outbox = harness.services.outbox
    await outbox.enqueue([OutgoingMessage("e", "notice", 606, "z")])
    claimed = await outbox.claim_due()  # ...and the process dies before sending
    assert [c.chat_id for c in claimed] == [606]
    await harness.dispatch()
    assert harness.api.sent(606) == []  # still claimed: not sent twice by a live dispatcher
    assert await outbox.release_claims() == 1  # what start-up does
    await harness.dispatch()
    assert len(harness.api.sent(606)) == 1


def test_the_pacer_spaces_sends_overall_and_per_chat() -> None:
    from itertools import pairwise

    from bot.services.pacing import SendPacer

    now = [100.0]
    pacer = SendPacer(28, monotonic=lambda: now[0])
    assert pacer.capacity() == 28
    times = [pacer.reserve(chat) for chat in range(1, 57)]
    assert all(b - a >= 1 / 28 - 1e-9 for a, b in pairwise(times))
    assert pacer.busy() == set(range(1, 57))  # in flight: no second message is claimed
    for chat in range(1, 57):
        pacer.done(chat)
    now[0] += 0.5
    assert 1 in pacer.busy()  # sent to half a second ago
    now[0] += 0.6
    assert 1 not in pacer.busy()
    again = pacer.reserve(1)
    assert again - times[0] >= 1.0
    group = pacer.reserve(-100)
    pacer.done(-100)
    assert pacer.next_chat[-100] - group >= 3.0  # 20 a minute to a group
    pacer.reserve(2)
    pacer.reserve(3)
    pacer.done(3)  # delivered: that chat waits its second
    pacer.done(2, reached=False)  # refused (403): that chat need not wait
    assert 3 in pacer.busy() and 2 not in pacer.busy()


async def test_a_slow_chat_holds_up_no_other(harness: Harness, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import asyncio
    import time

    import bot.jobs.dispatch as dispatch

    real = dispatch.send_claimed
    finished: dict[int, float] = {}

    async def slow_for_611(context, message):  # type: ignore[no-untyped-def]
        if message.chat_id == 611:
            await asyncio.sleep(1.5)  # a chat whose requests hang
        sent = await real(context, message)
        finished[message.chat_id] = time.monotonic()
        return sent

    monkeypatch.setattr(dispatch, "send_claimed", slow_for_611)
    for chat in (611, 612, 613, 614):
        harness.api.user(chat, "U")
    await harness.services.outbox.enqueue(
        [OutgoingMessage(f"slow{chat}", "notice", chat, "x") for chat in (611, 612, 613, 614)]
    )
    started = time.monotonic()
    await harness.dispatch()
    assert all(finished[chat] - started < 1.0 for chat in (612, 613, 614))
    assert finished[611] - started >= 1.5


async def test_network_errors_are_retried_with_backoff(harness: Harness) -> None:
    harness.api.user(615, "U")
    harness.api.fail_next(615, "bad_gateway", times=2)
    await harness.services.outbox.enqueue([OutgoingMessage("net", "notice", 615, "x")])
    await harness.dispatch()
    row = (await rows(harness))["net"]
    assert row.state == "pending" and row.due_at == harness.clock.now() + timedelta(seconds=2)
    harness.clock.advance(timedelta(seconds=2))
    await harness.dispatch()
    row = (await rows(harness))["net"]
    assert row.due_at == harness.clock.now() + timedelta(seconds=4)  # doubled
    harness.clock.advance(timedelta(seconds=4))
    await harness.dispatch()
    assert [m.plain_text for m in harness.api.sent(615)] == ["x"]


async def test_a_blocked_user_who_starts_the_bot_again_is_reachable_again(harness: Harness) -> None:
    harness.api.user(607, "Thu")
    async with harness.services.db.transaction() as session:
        user = User(telegram_id=607, first_name="Thu", reachable=False)
        session.add(user)
    await harness.send(607, "/start")
    async with harness.services.db.reader() as session:
        stored = await session.scalar(select(User).where(User.telegram_id == 607))
        assert stored is not None and stored.reachable is True


async def test_a_receipt_its_process_never_sent_goes_out_through_the_dispatcher(harness: Harness) -> None:
    """A receipt is queued claimed, for the handler to send at once. If that process died
    first (another instance of a cluster stays up, and nothing restarts to release it), the
    dispatcher sends it once the claim is stale, and not before (the handler may be sending)."""
    receipt = OutgoingMessage(key="receipt:1:1", kind=RECEIPT, chat_id=501, text="✅ #1", sent_by_caller=True)
    assert await harness.services.outbox.enqueue([receipt]) == 1
    harness.api.user(501, "Lan")
    await harness.dispatch()
    assert harness.api.sent(501) == []
    harness.clock.advance(RECEIPT_STALE + timedelta(seconds=1))
    await harness.dispatch()
    assert [m.plain_text for m in harness.api.sent(501)] == ["✅ #1"]
    assert (await rows(harness))["receipt:1:1"].state == "sent"
