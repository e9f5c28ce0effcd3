"""Two `tiendo run` processes on one PostgreSQL database; the elected one is killed mid-run.

The Bot API stand-in is served over HTTP on 127.0.0.1 by this process; simulated people (those
of bench/crash_soak.py) report through the guided /report again and again, answering whatever
the bot shows last and sending the same input again after --silent seconds of nothing.

1. One process alone: 30 people report; steps (answers) per second over --seconds, after
   --warm-up seconds.
2. Two processes (A, then B; A is elected): 30 other people report; steps per second measured
   the same way. Then nudges come due: --nudge-people focal points of units of their own, each
   with --nudges tasks due today (one "on the day" nudge each, one a second per chat, so they
   take --nudges seconds), planned by the leader's next run. When a third of them are out, the
   elected process is killed with SIGKILL and not restarted: the other must take over (poll
   Telegram, plan and dispatch the rest, handle every chat, ask again the questions a step of
   the dead one may not have shown); the people report for --after seconds more.

Printed: answers lost (a report someone pressed Gửi for that no stored revision holds) and
doubled (stored twice), revisions nobody made, answers misplaced or silent (nothing back within
--silent seconds); nudges doubled (one nudge delivered twice) and missed (due and never
delivered); seconds from the kill until the other process leads and until its first nudge;
steps per second with one process and with two (ratio).

    python bench/cluster.py --database postgresql+asyncpg://postgres@127.0.0.1:5432/tiendo_cluster

The database given is wiped (schema public): use one of your own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import random
import sys
import tempfile
import time
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, select  # noqa: E402

from bench.crash_soak import Person, Soak, check, prepare  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.models import Membership, Task, TaskGroup, Unit, User  # noqa: E402
from tests.support.botapi import BotAPIServer  # noqa: E402
from tests.support.process import BotProcess  # noqa: E402

FIRST_NUDGED = 9_100_000
NUDGE_MARK = "⏰"

# Every day and hour a working slot, so that the nudges go out whenever this runs; no period
# reminders (they would interrupt the reports); a nudge on the day only.
EXTRA = (
    "concurrent_updates = {concurrent}\nrate_limiter = false\n"
    "[work]\ndays = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday']\n"
    "start = '00:00'\nend = '23:59'\n"
    "[nudges]\nbefore_days = []\non_the_day = true\nsend_at = '00:00'\nperiod_reminders = []\n"
    "dispatch_interval = 1\nplan_interval = 10\n"
)


def instance(server: BotAPIServer, folder: Path, url: str, concurrent: int) -> BotProcess:
    folder.mkdir(parents=True, exist_ok=True)
    return BotProcess(server, folder, extra_config=EXTRA.format(concurrent=concurrent), database_url=url)


async def add_nudged(url: str, people: int, per_person: int) -> dict[int, int]:
    """`people` focal points, each of a unit of their own leading `per_person` tasks due today:
    telegram id -> nudges expected."""
    db = Database(url)
    try:
        async with db.transaction() as session:
            group = (await session.execute(select(TaskGroup.id, TaskGroup.programme_id).limit(1))).one()
            expected: dict[int, int] = {}
            for i in range(people):
                unit = Unit(code=f"NUDGE{i}", name=f"Đơn vị nhắc {i}", active=True)
                user = User(telegram_id=FIRST_NUDGED + i, first_name=f"Nhắc {i}", reachable=True, active=True)
                session.add_all([unit, user])
                await session.flush()
                session.add(Membership(user_id=user.id, unit_id=unit.id, role="focal"))
                rows = [
                    {
                        "code": f"N{i}.{k}",
                        "group_id": group.id,
                        "programme_id": group.programme_id,
                        "title": f"Nhiệm vụ nhắc {i}.{k}",
                        "lead_unit_id": unit.id,
                        "deadline": date.today(),
                        "deadline_version": 1,
                        "position": 1000 + i * per_person + k,
                        "description": "",
                        "legal_source": "",
                        "expected_output": "",
                    }
                    for k in range(per_person)
                ]
                await session.execute(insert(Task), rows)
                expected[FIRST_NUDGED + i] = per_person
    finally:
        await db.dispose()
    return expected


def _args_for_soak(args: argparse.Namespace) -> argparse.Namespace:
    return argparse.Namespace(silent=args.silent, verbose=args.verbose, kills=0, settle=0.0)


def _leader(bots: dict[str, BotProcess], since: int = 0) -> str | None:
    for name, bot in bots.items():
        if any(" leads " in line for line in bot.log[since:]):
            return name
    return None


async def one_instance(
    args: argparse.Namespace, server: BotAPIServer, folder: Path, people: dict[int, str]
) -> float:
    bot = instance(server, folder / "solo", args.database, args.concurrent)
    rate: list[float] = []
    with bot:
        soak = Soak(_args_for_soak(args), server, bot)
        persons = [Person(soak, uid, code) for uid, code in people.items()]
        sampler = asyncio.create_task(_steps_per_second(soak, args, rate))

        async def stop_after() -> None:
            await sampler
            soak.stopping.set()
            soak.give_up_at = time.monotonic() + 3 * soak.silent

        stopper = asyncio.create_task(stop_after())
        await asyncio.gather(*(person.run() for person in persons))
        await stopper
    return rate[0]


async def _steps_per_second(soak: Soak, args: argparse.Namespace, rate: list[float]) -> None:
    """Answers per second over --seconds, after --warm-up seconds of reporting."""
    await asyncio.sleep(args.warm_up)
    if not args.seconds:
        rate.append(0.0)
        return
    before, started = soak.tally.answers, time.monotonic()
    await asyncio.sleep(args.seconds)
    rate.append((soak.tally.answers - before) / (time.monotonic() - started))


async def two_instances(
    args: argparse.Namespace,
    server: BotAPIServer,
    folder: Path,
    people: dict[int, str],
    nudged: dict[int, int],
) -> dict[str, Any]:
    api = server.api
    bots = {"A": instance(server, folder / "a", args.database, args.concurrent)}
    bots["B"] = instance(server, folder / "b", args.database, args.concurrent)
    bots["A"].start()
    bots["B"].start()
    result: dict[str, Any] = {}
    total = sum(nudged.values())

    def nudges_out() -> list[Any]:
        return [m for uid in nudged for m in api.sent(uid) if NUDGE_MARK in (m.plain_text or "")]

    async def killer() -> None:
        leader = None
        while leader is None:
            leader = _leader(bots)
            await asyncio.sleep(0.05)
        # Steps per second of the two, then the nudges come due (the leader's next planning
        # run, within [nudges] plan_interval), and a third of them out, the leader is killed.
        await _steps_per_second(soak_ref[0], args, rates)
        result["nudged"] = await add_nudged(args.database, args.nudge_people, args.nudges)
        await api.wait_for_async(lambda: len(nudges_out()) >= max(1, total // 3) or None, 120)
        # At a moment of its own, not right after a delivery: a message Telegram accepted
        # whose answer the dead process had not recorded is sent again (at least once).
        await asyncio.sleep(random.uniform(0.2, 0.8))
        result["seconds_before_kill"] = time.monotonic() - started
        other = "B" if leader == "A" else "A"
        mark = len(bots[other].log)
        killed_at = time.monotonic()
        await asyncio.to_thread(bots[leader].kill)
        result["killed"] = leader
        result["out_at_kill"] = len(nudges_out())
        await api.wait_for_async(lambda: _leader({other: bots[other]}, mark) or None, 60)
        result["takeover"] = time.monotonic() - killed_at
        await api.wait_for_async(lambda: any(m.monotonic > killed_at for m in nudges_out()) or None, 60)
        result["first_nudge"] = min(m.monotonic for m in nudges_out() if m.monotonic > killed_at) - killed_at

    soak_ref: list[Soak] = []
    rates: list[float] = []
    started = time.monotonic()
    soak = Soak(_args_for_soak(args), server, bots["A"])
    soak_ref.append(soak)
    persons = [Person(soak, uid, code) for uid, code in people.items()]
    kill_task = asyncio.create_task(killer())

    async def stop_after() -> None:
        await kill_task
        await asyncio.sleep(args.after)
        soak.stopping.set()
        soak.give_up_at = time.monotonic() + 3 * soak.silent

    stopper = asyncio.create_task(stop_after())
    try:
        await asyncio.gather(*(person.run() for person in persons))
        await stopper
        # Whatever nudges are still due go out at one a second per chat.
        with contextlib.suppress(TimeoutError):
            await api.wait_for_async(
                lambda: len(nudges_out()) >= total or None, max(nudges_per_chat(nudged) + 15, 30)
            )
        time.sleep(1.0)
        delivered = Counter((m.chat_id, m.plain_text) for m in nudges_out())
        killed_at = started + result["seconds_before_kill"]
        result["nudges_doubled"] = sum(count - 1 for count in delivered.values())
        for (chat, text), count in delivered.items():
            if count > 1:
                times = [
                    m.monotonic - killed_at for m in nudges_out() if (m.chat_id, m.plain_text) == (chat, text)
                ]
                soak.note(f"nudge to {chat} delivered {count} times, at {times} s from the kill")
        result["nudges_missed"] = total - len(delivered)
        result["nudges"] = total
        if args.verbose:
            for line in list(soak.notes):
                if line.startswith("silent: person "):
                    uid = int(line.split()[2])
                    soak.note(f"    inbox of {uid}: " + await _inbox_of(bots["A"], uid))
                    for m in api.sent(uid)[-4:]:
                        text = (m.plain_text or "").replace("\n", " ")[:70]
                        soak.note(f"    {uid} got at {m.monotonic - killed_at:+.2f} s: {text}")
        result["soak"] = soak
        result["persons"] = persons
        if args.verbose:
            for name, bot in bots.items():
                for line in bot.log:
                    if "cluster" in line or "asked" in line or "WARNING" in line or "DEBUG" in line:
                        soak.note(f"  {name}: {line.rstrip()[:200]}")
        result["two"] = rates[0] if rates else 0.0
        result["log_errors"] = [
            line for bot in bots.values() for line in bot.log if " ERROR " in line or " CRITICAL " in line
        ]
    finally:
        for bot in bots.values():
            bot.stop()
    return result


async def _inbox_of(bot: BotProcess, chat: int) -> str:
    """What the inbox holds of a chat: update id, state, kind, attempts, minute:second."""
    query = (
        "select string_agg(update_id || ' ' || state || ' ' || kind || ' ' || attempts || ' '"
        " || to_char(received_at, 'MI:SS.MS'), ', ' order by update_id)"
        f" from inbox where chat_id = {int(chat)}"
    )
    return str(await asyncio.to_thread(bot.scalar, query))


def nudges_per_chat(nudged: dict[int, int]) -> int:
    return max(nudged.values(), default=0)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    logging.basicConfig(level=logging.WARNING)
    random.seed(args.seed)
    with tempfile.TemporaryDirectory() as tmp, BotAPIServer() as server:
        folder = Path(tmp)
        # Phase 1 and phase 2 have people of their own (the check compares what each sent with
        # what is stored).
        everyone = await prepare(args.database, folder, 2 * args.people)
        for uid in everyone:
            server.api.user(uid, f"Người {uid}")
        ids = list(everyone)
        first = {uid: everyone[uid] for uid in ids[: args.people]}
        people = {uid: everyone[uid] for uid in ids[args.people :]}
        one = await one_instance(args, server, folder, first) if args.seconds else 0.0
        # The nudged people and their tasks are added while the two processes run.
        nudged = {FIRST_NUDGED + i: args.nudges for i in range(args.nudge_people)}
        for uid in nudged:
            server.api.user(uid, f"Nhắc {uid}")
        result = await two_instances(args, server, folder, people, nudged)
        figures = await check(args.database, result["persons"])
    soak: Soak = result["soak"]
    two = result["two"]
    figures.update(
        silent=soak.tally.silent,
        nobody=figures.get("nobody", 0) + soak.tally.wrong_receipts,
        nudges_doubled=result["nudges_doubled"],
        nudges_missed=result["nudges_missed"],
        takeover=result["takeover"],
        first_nudge=result["first_nudge"],
        one=one,
        two=two,
    )
    print(
        f"\n== cluster: 2 processes, PostgreSQL, {args.people} people reporting,"
        f" {result['nudges']} nudges to {args.nudge_people} people; process {result['killed']} (elected)"
        f" killed with SIGKILL when {result['out_at_kill']} nudges were out =="
    )
    print(f"reports sent {soak.tally.reports_sent}, answers {soak.tally.answers}")
    print(f"answers lost:               {figures.get('lost', 0)}")
    print(f"answers doubled:            {figures.get('doubled', 0)}")
    print(f"revisions nobody made:      {figures['nobody']}")
    print(f"answers misplaced:          {figures.get('misplaced', 0)}")
    print(f"answers silent (>{args.silent:.0f} s):    {soak.tally.silent}")
    print(f"nudges doubled:             {result['nudges_doubled']}")
    print(f"nudges missed:              {result['nudges_missed']}")
    print(f"other process leads after:  {result['takeover']:.1f} s")
    print(f"its first nudge after:      {result['first_nudge']:.1f} s")
    if one:
        print(f"steps/s, one process:       {one:.1f}")
        print(f"steps/s, two processes:     {two:.1f}  ({two / one:.2f}x one)")
    print(
        f"inbox at the end: {figures.get('inbox_failed', 0)} failed,"
        f" {figures.get('inbox_pending', 0)} pending;"
        f" error lines in the logs: {len(result['log_errors'])}"
    )
    for line in result["log_errors"][:3]:
        print(f"  {line.rstrip()[:300]}")
    if args.verbose:
        for line in soak.notes:
            print(" ", line)
    if soak.tally.others:
        print(f"other messages the people got: {dict(soak.tally.others.most_common(5))}")
    return figures


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--database", required=True, help="a PostgreSQL SQLAlchemy URL (wiped)")
    parser.add_argument("--people", type=int, default=30)
    parser.add_argument("--nudge-people", type=int, default=4)
    parser.add_argument("--nudges", type=int, default=15, help="nudges due per nudged person")
    parser.add_argument(
        "--seconds", type=float, default=15.0, help="steps/s measured over this long (0: skip phase 1)"
    )
    parser.add_argument("--warm-up", type=float, default=3.0, help="seconds before steps/s is measured")
    parser.add_argument("--after", type=float, default=8.0, help="seconds of reporting after the kill")
    parser.add_argument("--silent", type=float, default=20.0)
    parser.add_argument("--concurrent", type=int, default=8)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--verbose", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    figures = asyncio.run(run(parse(argv)))
    bad = sum(
        figures.get(key, 0)
        for key in ("lost", "doubled", "nobody", "misplaced", "silent", "nudges_doubled", "nudges_missed")
    )
    return 1 if bad or figures["takeover"] > 15 else 0


if __name__ == "__main__":
    sys.exit(main())
