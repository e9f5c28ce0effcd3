"""Benchmark: plan and dispatch nudges at scale (prints figures; not a test).

    .venv/bin/python -m bench.nudges [--recipients 3000] [--tasks 100000]
                                     [--skip-dispatch] [--skip-planning]
                                     [--spread worst|year|all]

1. Dispatch: one unit per recipient, each with a task due today, plus a second overdue task
   for every tenth unit (so some chats get two messages and per-chat pacing shows). The real
   Application sends through HTTP to the Bot API stand-in on 127.0.0.1, which records arrival
   times; printed are the sustained rate, the most messages in any one-second window overall
   and to one chat.
2. Planning: 100,000 open tasks over 1,000 units (a focal point and a leader each), on SQLite,
   with deadlines spread over two years around today (the worst case: half the tasks overdue
   and unreported, ~100,000 nudges due at once) and over the coming twelve months (a
   programme's year). Timed: the first planning run (a fresh install's), the runs that follow
   while a backlog is written as fast as it can be sent (the outbox holds at most
   max_per_second x plan_interval nudges; each run's rows are then marked sent, as the
   dispatcher would have done by the next run) until every due nudge is written, the regular
   runs, and the Thursday period reminders. Planning writes no
   text: each message is rendered when the dispatcher sends it, which part 1 includes.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import logging
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select, update

from bot.app import build_application
from bot.clock import FixedClock
from bot.config import ROOT, Config, load_config
from bot.context import Context
from bot.jobs.dispatch import dispatch_outbox
from bot.services.container import build_services
from handlers.wording import TelegramWording
from storage.db import Database
from storage.migrate import upgrade
from storage.models import Membership, OutboxMessage, Task, TaskGroup, Unit, User
from tests.support.botapi import DEFAULT_TOKEN, BotAPIServer, FakeBotAPI, FloodLimits

HN = ZoneInfo("Asia/Ho_Chi_Minh")
# A Wednesday at 10:00 in Hà Nội: a working slot.
NOW = datetime(2024, 3, 13, 10, 0, tzinfo=HN).astimezone(UTC)
TODAY = date(2024, 3, 13)


class MovingClock:
    """Starts at NOW (a working slot) and runs with real time, so rescheduled rows come due."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def now(self) -> datetime:
        return NOW + timedelta(seconds=time.monotonic() - self.started)


def _config(folder: Path, server: BotAPIServer | None = None) -> Config:
    base = load_config(ROOT / "config.toml", env={})
    telegram = {}
    if server is not None:
        telegram = {"api_base_url": server.base_url, "api_base_file_url": server.base_file_url}
    return base.with_overrides(
        bot={"data_dir": str(folder / "data")},
        database={"url": f"sqlite+aiosqlite:///{folder / 'b.db'}"},
        telegram=telegram,
        token=DEFAULT_TOKEN,
        source=folder / "config.toml",
    )


async def _populate(
    db: Database,
    units: int,
    tasks_per_unit: Callable[[int], int],
    deadline_of: Callable[[int, int], date],
    leaders: bool,
    first_telegram_id: int,
) -> None:
    """units units, a focal point each (and a leader), tasks_per_unit(i) tasks for unit i with
    deadline deadline_of(n, k) (n-th task overall, k-th of its unit)."""
    async with db.transaction() as session:
        await session.execute(insert(TaskGroup), [{"code": "G", "title": "Nhóm", "position": 0}])
        group_id = await session.scalar(select(TaskGroup.id))
        await session.execute(
            insert(Unit), [{"code": f"U{i}", "name": f"Đơn vị {i}", "active": True} for i in range(units)]
        )
        unit_ids = list(await session.scalars(select(Unit.id).order_by(Unit.id)))
        people = [
            {
                "telegram_id": first_telegram_id + i,
                "first_name": f"Người {i}",
                "reachable": True,
                "active": True,
            }
            for i in range(units * (2 if leaders else 1))
        ]
        await session.execute(insert(User), people)
        user_ids = list(await session.scalars(select(User.id).order_by(User.id)))
        memberships = [
            {"user_id": user_ids[i], "unit_id": unit_ids[i], "role": "focal"} for i in range(units)
        ]
        if leaders:
            memberships += [
                {"user_id": user_ids[units + i], "unit_id": unit_ids[i], "role": "leader"}
                for i in range(units)
            ]
        await session.execute(insert(Membership), memberships)
        rows: list[dict[str, object]] = []
        for i, unit_id in enumerate(unit_ids):
            for k in range(tasks_per_unit(i)):
                n = len(rows)
                rows.append(
                    {
                        "code": f"T{n}",
                        "group_id": group_id,
                        "title": f"Nhiệm vụ {n}",
                        "lead_unit_id": unit_id,
                        "deadline": deadline_of(n, k),
                        "deadline_version": 1,
                        "position": n,
                        "description": "",
                        "legal_source": "",
                        "expected_output": "",
                    }
                )
        for start in range(0, len(rows), 5000):
            await session.execute(insert(Task), rows[start : start + 5000])


def _max_in_window(times: list[float], window: float = 1.0) -> int:
    times = sorted(times)
    return max((bisect.bisect_left(times, t + window) - i for i, t in enumerate(times)), default=0)


async def bench_dispatch(recipients: int) -> None:
    # The stand-in enforces Telegram's flood limits: a message sent too fast is answered 429.
    api = FakeBotAPI(flood_limits=FloodLimits())
    with tempfile.TemporaryDirectory() as tmp, BotAPIServer(api) as server:
        folder = Path(tmp)
        config = _config(folder, server)
        db = Database(config.database_url)
        await upgrade(db)
        await _populate(
            db,
            recipients,
            lambda i: 2 if i % 10 == 0 else 1,
            lambda n, k: TODAY if k == 0 else TODAY - timedelta(days=7),
            leaders=False,
            first_telegram_id=10_000,
        )
        for i in range(recipients):
            server.api.user(10_000 + i, f"Người {i}")
        services = build_services(config, wording=TelegramWording, clock=MovingClock(), db=db)
        started = time.perf_counter()
        planned = await services.nudges.plan()
        plan_seconds = time.perf_counter() - started
        app = build_application(config, services=services)
        await app.initialize()
        started = time.perf_counter()
        # As the repeating job would: again until nothing is left (a 429 reschedules a row).
        while await services.outbox.any_due():
            await dispatch_outbox(Context.from_application(app))
            await asyncio.sleep(0.2)
        dispatch_seconds = time.perf_counter() - started
        await app.shutdown()
        await db.dispose()
        sent = server.api.sent()
        arrivals = [m.monotonic for m in sent]
        by_chat: dict[int, list[float]] = defaultdict(list)
        for m in sent:
            by_chat[m.chat_id].append(m.monotonic)
        span = max(arrivals) - min(arrivals)
        print(
            f"dispatch: {len(sent)} messages to {len(by_chat)} chats "
            f"(planned {planned.planned} in {plan_seconds:.3f} s), "
            f"answered 429 by the stand-in's flood limits: {len(server.api.rejected)}"
        )
        for rejected in server.api.rejected:
            again = [m.monotonic for m in sent if m.chat_id == rejected.chat_id]
            print(
                f"  429 to chat {rejected.chat_id}: {rejected.description}; "
                f"delivered {min(again) - rejected.monotonic:+.2f} s later"
            )
        print(
            f"  sustained rate:                   {(len(sent) - 1) / span:.1f} msgs/s "
            f"(first to last arrival {span:.1f} s; whole run {dispatch_seconds:.1f} s)"
        )
        print(f"  most in any one-second window:    {_max_in_window(arrivals)}")
        print(
            f"  most to one chat in any second:   {max(_max_in_window(times) for times in by_chat.values())}"
        )


# Deadline spreads for the planning benchmark: (label, deadline of the n-th task).
SPREADS: dict[str, tuple[str, Callable[[int, int], date]]] = {
    # The worst case: two years around today, so half the tasks are overdue (and escalated,
    # two recipients each) on a fresh install; every run of a new working day adds ~50,000.
    "worst": (
        "deadlines over two years around today (half overdue, none reported)",
        lambda n, k: TODAY + timedelta(days=(n * 7919) % 730 - 365),
    ),
    # A programme's year: deadlines over the coming twelve months, nothing overdue yet; a run
    # writes the tasks entering a 7/3/1-day window or due that day.
    "year": (
        "deadlines over the coming twelve months",
        lambda n, k: TODAY + timedelta(days=(n * 7919) % 365),
    ),
}


async def bench_planning(tasks: int, spread: str, units: int = 1000) -> None:
    label, deadline_of = SPREADS[spread]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        config = _config(folder)
        db = Database(config.database_url)
        await upgrade(db)
        per_unit = tasks // units
        await _populate(db, units, lambda i: per_unit, deadline_of, leaders=True, first_telegram_id=500_000)
        clock = FixedClock(NOW)
        services = build_services(config, wording=TelegramWording, clock=clock, db=db)
        timings = []

        async def drain(label: str) -> None:
            """The runs after a large first run: the outbox takes what the dispatcher sends
            between two runs (NudgeService.queue_limit), the rest comes in later runs. Printed:
            how many runs until every due nudge is written, and the slowest of them."""
            runs, slowest, rows = 0, 0.0, 0
            while True:
                clock.advance(timedelta(seconds=config.nudges.plan_interval))
                started = time.perf_counter()
                result = await services.nudges.plan()
                slowest = max(slowest, time.perf_counter() - started)
                if not result.planned:
                    break
                runs, rows = runs + 1, rows + result.planned
                async with db.transaction() as session:
                    await session.execute(
                        update(OutboxMessage).where(OutboxMessage.state == "pending").values(state="sent")
                    )
            timings.append((f"{label}: {runs} runs, slowest", slowest, rows))

        async def timed(label: str, periods: bool = False) -> None:
            started = time.perf_counter()
            result = await (services.nudges.plan_period_reminders() if periods else services.nudges.plan())
            timings.append((label, time.perf_counter() - started, result.planned))
            # What the dispatcher would have done by the next run.
            async with db.transaction() as session:
                await session.execute(
                    update(OutboxMessage).where(OutboxMessage.state == "pending").values(state="sent")
                )

        await timed("first run")
        await drain("backlog, planned as it is sent")
        await timed("next run (all planned and sent)")
        clock.advance(timedelta(minutes=2))
        await timed("next run, 2 minutes later")
        clock.set(datetime(2024, 3, 14, 9, 0, tzinfo=HN))
        await timed("next working day 09:00 (new offsets)")
        await drain("backlog, planned as it is sent")
        clock.advance(timedelta(minutes=2))
        await timed("2 minutes later")
        # Thursday 09:00 is also the period reminder's time: one message per focal point.
        await timed("period reminders, first run", periods=True)
        await timed("period reminders, next run", periods=True)
        await db.dispose()
        print(f"planning over {tasks} open tasks, {units} units (SQLite), {label}:")
        for label, seconds, planned in timings:
            print(f"  {label:<40} {seconds:.3f} s  ({planned} new outbox rows)")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--recipients", type=int, default=3000)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--skip-dispatch", action="store_true")
    parser.add_argument("--skip-planning", action="store_true")
    parser.add_argument(
        "--spread",
        choices=[*SPREADS, "all"],
        default="all",
        help="deadline spread of the planning benchmark (default: all)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    # A 429 is counted in the figures; its traceback from PTB's rate limiter is noise here.
    logging.getLogger("telegram.ext.AIORateLimiter").setLevel(logging.CRITICAL)
    if not args.skip_dispatch:
        asyncio.run(bench_dispatch(args.recipients))
    if not args.skip_planning:
        for spread in SPREADS if args.spread == "all" else [args.spread]:
            asyncio.run(bench_planning(args.tasks, spread))


if __name__ == "__main__":
    main()
