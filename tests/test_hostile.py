"""Generated hostile updates through the real pipeline (the inbox, the per-chat processor, every
handler): whatever arrives, the bot goes on answering and never writes or shows another unit's
data.

Two focal points (A of TTRA, B of KHTC) and a stranger send commands, answers, forged and
replayed buttons, group messages, edited messages, updates the library cannot read and JSON
that is no update at all, in generated batches, while the Bot API stand-in answers some of the
bot's calls with 429, 5xx or no answer at all (FaultMode). After each batch: nothing escaped the pipeline,
every update of it was handled or kept as failed, every stored report and draft is a person's
own unit's, no message to A or the stranger names a task only KHTC works on, and A's /help is
still answered.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from storage.db import Database
from storage.models import Draft, InboxUpdate, ProgressReport, ReportRevision, Task, TaskUnit, Unit, User
from tests.report_helpers import join
from tests.support.botapi import FaultMode
from tests.support.harness import Harness

A = 711  # focal point of TTRA
B = 712  # focal point of KHTC
STRANGER = 713
GROUP = -100_555
PEOPLE = (A, B, STRANGER)

COMMANDS = (
    "/report",
    "/report 1.1",
    "/report 5.9",
    "/report 99.99",
    "/report@tiendo_test_bot 1.1",
    "/skip",
    "/skip@tiendo_test_bot",
    "/cancel",
    "/tasks",
    "/history",
    "/history 1.1",
    "/help",
    "/start",
    "/start khong-co-ma",
    "/lang",
    "/lang en",
    "/extend 1.1",
    "/import",
    "/status",
    "/users",
)
ANSWERS = ("50", "-5", "101", "1e9", "87,5", " ", "<b>x</b>", "&amp; <i>", "x" * 3000, "Đã xong \u200b")
BUTTONS = (
    "rp:s:{v}:done",
    "rp:s:{v}:in_progress",
    "rp:s:{v}:finished",
    "rp:p:{v}:50",
    "rp:p:{v}:150",
    "rp:c:{v}:send",
    "rp:c:{v}:edit",
    "rp:c:{v}:cancel",
    "rp:e:{v}:results",
    "rp:ev:{v}:done",
    "rp:start:{other}",
    "rp:t:{v}:{other}",
    "rp:pg:{v}:2",
    "tk:pg:1",
    "lg:en",
    "lg:zz",
    "nd:snooze:1",
    "x" * 65,
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
texts = st.sampled_from(COMMANDS) | st.sampled_from(ANSWERS) | st.text(max_size=200)
people = st.sampled_from(PEOPLE)
actions = st.one_of(
    st.tuples(st.just("text"), people, texts),
    st.tuples(st.just("press"), people, st.sampled_from(BUTTONS) | st.text(max_size=70)),
    st.tuples(st.just("group"), people, texts),
    st.tuples(st.just("edited"), people, texts),
    st.tuples(st.just("unreadable"), people, st.just("")),
    st.tuples(
        st.just("garbage"),
        st.sampled_from(("message", "callback_query", "my_chat_member", "zzz")),
        json_values,
    ),
)


@pytest.fixture
async def bot(harness: Harness) -> Harness:
    await join(harness, A, "TTRA")
    await join(harness, B, "KHTC")
    harness.api.user(STRANGER, "Lạ")
    return harness


def _payload(bot: Harness, action: tuple[str, Any, Any], other_task: int) -> dict[str, Any]:
    kind, who, what = action
    api = bot.api
    if kind == "text":
        return api.send_text(who, what or "?")
    if kind == "group":
        return api.send_text(who, what or "?", chat_type="group", chat_id=GROUP)
    if kind == "edited":
        update = api.send_text(who, what or "?")
        return {"update_id": update["update_id"], "edited_message": update["message"]}
    if kind == "unreadable":
        return api.send_unparseable()
    if kind == "garbage":
        return api.send_raw(who, what)
    sent = api.sent(who)
    data = what.replace("{v}", "1").replace("{other}", str(other_task))
    if not sent:  # nothing to press on: a query without its message
        return api.send_raw(
            "callback_query",
            {
                "id": "1",
                "from": {"id": who, "is_bot": False, "first_name": "x"},
                "chat_instance": "1",
                "data": data,
            },
        )
    return api.press_button(who, sent[-1].message_id, data, check=False)


async def _handle(bot: Harness, payloads: list[dict[str, Any]]) -> None:
    """What `tiendo run` does with a batch: store, then handle each chat in order."""
    updater: Any = bot.app.updater
    await updater.inbox.accept(payloads)
    app, queue = bot.app, bot.app.update_queue
    tasks = []
    while not queue.empty():
        update = queue.get_nowait()
        tasks.append(
            asyncio.create_task(app.update_processor.process_update(update, app.process_update(update)))
        )
    await asyncio.gather(*tasks)


async def _units_tasks(db: Database) -> tuple[dict[str, set[int]], dict[int, str]]:
    """The task ids each unit leads or coordinates; every task's title."""
    async with db.reader() as session:
        units = {u.id: u.code for u in await session.scalars(select(Unit))}
        tasks = list(await session.scalars(select(Task)))
        links = (await session.execute(select(TaskUnit.task_id, TaskUnit.unit_id))).all()
    scope: dict[str, set[int]] = {code: set() for code in units.values()}
    for task in tasks:
        scope[units[task.lead_unit_id]].add(task.id)
    for task_id, unit_id in links:
        scope[units[unit_id]].add(task_id)
    return scope, {t.id: t.title for t in tasks}


async def _check(bot: Harness, db: Database, ids: list[int]) -> None:
    scope, titles = await _units_tasks(db)
    own = {A: scope["TTRA"], B: scope["KHTC"], STRANGER: set()}
    async with db.reader() as session:
        states = dict((await session.execute(select(InboxUpdate.update_id, InboxUpdate.state))).all())
        revisions = (
            await session.execute(
                select(User.telegram_id, ProgressReport.task_id, Unit.code)
                .select_from(ReportRevision)
                .join(ProgressReport, ProgressReport.id == ReportRevision.report_id)
                .join(Unit, Unit.id == ProgressReport.unit_id)
                .join(User, User.id == ReportRevision.reporter_id)
            )
        ).all()
        drafts = (
            await session.execute(select(User.telegram_id, Draft.data).join(User, User.id == Draft.user_id))
        ).all()
    assert all(states.get(i) in ("done", "failed") for i in ids), [states.get(i) for i in ids]
    for telegram_id, task_id, unit in revisions:
        assert (telegram_id, unit) in ((A, "TTRA"), (B, "KHTC")) and task_id in own[telegram_id]
    for telegram_id, data in drafts:
        if data.get("task_id") is not None:
            assert int(data["task_id"]) in own[telegram_id]
    only_b = {titles[t][:40] for t in scope["KHTC"] - scope["TTRA"]}
    only_b -= {titles[t][:40] for t in scope["TTRA"]}
    for person in (A, STRANGER):
        for message in bot.api.sent(person):
            shown = message.plain_text or ""
            assert not [title for title in only_b if title in shown], shown


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=st.lists(actions, min_size=1, max_size=12), faults=st.none() | st.integers(0, 2**16))
async def test_hostile_updates_never_stop_the_bot_nor_cross_units(
    bot: Harness, db: Database, batch: list[tuple[str, Any, Any]], faults: int | None
) -> None:
    other = await bot.services.tasks.id_by_code("1.1")  # KHTC's, TTRA not involved
    assert other is not None
    payloads = [_payload(bot, action, other) for action in batch]
    # Telegram misbehaving meanwhile: 429s, 5xx, answers lost before and after delivery.
    bot.api.set_fault_mode(None if faults is None else FaultMode(0.2, seed=faults))
    try:
        await _handle(bot, payloads)
    finally:
        bot.api.set_fault_mode(None)
    await _check(bot, db, [p["update_id"] for p in payloads])
    before = len(bot.api.sent(A))
    await _handle(bot, [bot.api.send_text(A, "/help")])
    assert any("/report" in (m.plain_text or "") for m in bot.api.sent(A)[before:])
