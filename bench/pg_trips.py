"""Benchmark: where a guided /report step's time goes on PostgreSQL (not a test).

The real `tiendo run` on a PostgreSQL database (wiped, as bench/report_flow.py does), with
asyncpg's protocol wrapped in the bot's process (a sitecustomize module on its PYTHONPATH, so
nothing in tiendo itself changes) to count the round trips to the server, by kind (BEGIN,
COMMIT, ROLLBACK, the pool's ping ";", prepare, and each statement by its first word).

Printed:
* round trips for each step of one /report (one user, step after step, background jobs
  quiet), the mean over --reports reports;
* under load (--users users for --seconds seconds, as in bench/report_flow.py): steps/s, the
  bot's CPU per step, and the CPU per step of the PostgreSQL server processes serving the
  bot's database (read from /proc: the server must run on this machine).

    python bench/pg_trips.py --database postgresql+asyncpg://postgres@127.0.0.1:5432/bench
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import textwrap
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402
from sqlalchemy.ext.asyncio import create_async_engine  # noqa: E402

from bench.report_flow import SCRIPT, Bot, Position, Run, cpu_seconds, drive, prepare, take_step  # noqa: E402
from tests.support.botapi import BotAPIServer  # noqa: E402
from tests.support.process import BotProcess  # noqa: E402

# Counts every call on asyncpg's protocol that is one exchange with the server; written to
# $TIENDO_TRIPS_FILE (JSON) whenever it changed, by a thread, every 20 ms.
SITECUSTOMIZE = textwrap.dedent(
    """
    import json, os, threading, time
    from collections import Counter

    import asyncpg.connection

    COUNTS = Counter()
    SHOW = bool(os.environ.get("TIENDO_TRIPS_SHOW"))
    TRIPS = {"query", "prepare", "bind_execute", "bind_execute_many", "bind", "execute", "close_statement"}


    def _label(method, args, kwargs):
        if method == "query":
            words = str(args[0] if args else kwargs.get("query", "")).strip().rstrip(";").split()
            return words[0].upper() if words else "PING"
        if method in ("bind_execute", "bind_execute_many", "execute", "bind"):
            state = args[0] if args else kwargs.get("state")
            words = (getattr(state, "query", "") or "").strip().rstrip(";").split()
            return words[0].upper() if words else "PING"
        return method.upper()


    class Counting:
        def __init__(self, protocol):
            object.__setattr__(self, "_protocol", protocol)

        def __getattr__(self, name):
            attr = getattr(self._protocol, name)
            if name not in TRIPS:
                return attr

            def counted(*args, **kwargs):
                COUNTS[_label(name, args, kwargs)] += 1
                if SHOW:
                    state = args[0] if args else kwargs.get("state", kwargs.get("query"))
                    sql = str(getattr(state, "query", state))[:150].replace("\\n", " ")
                    print("trip:", name, sql, flush=True)
                return attr(*args, **kwargs)

            return counted


    _init = asyncpg.connection.Connection.__init__


    def __init__(self, protocol, *args, **kwargs):
        _init(self, protocol, *args, **kwargs)
        self._protocol = Counting(self._protocol)


    asyncpg.connection.Connection.__init__ = __init__


    def _write():
        path, last = os.environ["TIENDO_TRIPS_FILE"], None
        while True:
            now = dict(COUNTS)
            if now != last:
                with open(path + ".tmp", "w") as f:
                    json.dump(now, f)
                os.replace(path + ".tmp", path)
                last = now
            time.sleep(0.02)


    threading.Thread(target=_write, daemon=True).start()
    """
)


def trips(path: Path) -> Counter[str]:
    try:
        return Counter(json.loads(path.read_text()))
    except (FileNotFoundError, ValueError):
        return Counter()


async def backend_pids(url: str) -> list[int]:
    """The server processes serving the bot's database (its pool's connections)."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                    " AND pid <> pg_backend_pid()"
                )
            )
            return [row[0] for row in rows]
    finally:
        await engine.dispose()


def cpu_of(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            user, system = cpu_seconds(pid)
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += user + system
    return total


async def settle(path: Path, quiet: float = 0.3) -> Counter[str]:
    """The counts once nothing has changed for `quiet` seconds (trailing work of a step)."""
    last, since = trips(path), time.monotonic()
    while time.monotonic() - since < quiet:
        await asyncio.sleep(0.05)
        now = trips(path)
        if now != last:
            last, since = now, time.monotonic()
    return last


async def one_step(bot: Bot, uid: int, code: str, at: Position) -> None:
    """The user's next step of the script, until the bot's answer."""
    await take_step(bot.server.api, uid, code, at, echo=False)
    at.step = (at.step + 1) % len(SCRIPT)


async def per_step(bot: Bot, uid: int, code: str, path: Path, reports: int) -> dict[str, Counter[str]]:
    steps: dict[str, Counter[str]] = {step: Counter() for step, _, _ in SCRIPT}
    position = bot.positions[uid]
    for _ in range(reports):
        for step, _, _ in SCRIPT:
            before = await settle(path)
            await one_step(bot, uid, code, position)
            after = await settle(path)
            steps[step].update(after - before)
    return steps


async def main_async(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp, BotAPIServer() as server:
        folder = Path(tmp)
        (folder / "site").mkdir()
        (folder / "site" / "sitecustomize.py").write_text(SITECUSTOMIZE)
        path = folder / "trips.json"
        _, users = await prepare(args.database, folder, args.users)
        for uid in users:
            server.api.user(uid, f"User{uid}")
        extra = (
            f"concurrent_updates = {args.concurrent}\nrate_limiter = false\n"
            "[nudges]\nbefore_days = []\non_the_day = false\nperiod_reminders = []\n"
            "dispatch_interval = 300\nplan_interval = 3600\n"
        )
        process = BotProcess(
            server,
            folder,
            extra_config=extra,
            database_url=args.database,
            env={
                "PYTHONPATH": f"{folder / 'site'}:{ROOT}",
                "TIENDO_TRIPS_FILE": str(path),
                "TIENDO_TRIPS_SHOW": "1" if args.show else "",
            },
        )
        with process:
            assert process.process is not None
            bot = Bot(
                "report", server, process.process.pid, {uid: Position() for uid in users}, Run("report")
            )
            await drive(bot, users, args.warmup)
            # The counted user first finishes the report the warm-up left open.
            uid = next(iter(users))
            while bot.positions[uid].step:
                await one_step(bot, uid, users[uid], bot.positions[uid])
            steps = await per_step(bot, uid, users[uid], path, args.reports - 1)
            shown = len(process.log)
            last = await per_step(bot, uid, users[uid], path, 1)
            for step, counts in last.items():
                steps[step].update(counts)
            if args.show:  # the statements of the last report, in order
                print("".join(line for line in process.log[shown:] if line.startswith("trip:")))
            print(f"\n== round trips to PostgreSQL per step (mean of {args.reports} reports, one user) ==")
            total = 0.0
            for step, counts in steps.items():
                n = sum(counts.values()) / args.reports
                total += n
                kinds = ", ".join(f"{k} {v / args.reports:g}" for k, v in counts.most_common())
                print(f"{step:<10}{n:>6.1f}  ({kinds})")
            print(f"{'report':<10}{total:>6.1f}  ({total / len(SCRIPT):.1f} per step)")

            pids = await backend_pids(args.database)
            before_trips = trips(path)
            pg_before = cpu_of(pids)
            run = await drive(bot, users, args.seconds)
            pg_cpu = cpu_of(pids) - pg_before
            load_trips = sum((trips(path) - before_trips).values())
            steps = max(run.steps, 1)
            print(
                f"\n== under load: {len(users)} users, {run.seconds:.1f} s,"
                f" concurrent_updates={args.concurrent} =="
            )
            print(
                f"{run.rate:.1f} steps/s (timeouts {run.errors});"
                f" round trips {load_trips / steps:.2f} per step"
            )
            print(
                f"CPU per step: the bot {run.cpu_ms:.2f} ms ({run.system / steps * 1000:.2f} in the kernel);"
                f" PostgreSQL ({len(pids)} server processes) {pg_cpu / steps * 1000:.2f} ms"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--database", required=True, help="a postgresql+asyncpg:// URL (wiped)")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--reports", type=int, default=5, help="reports counted one step at a time (≥ 1)")
    parser.add_argument("--concurrent", type=int, default=8)
    parser.add_argument("--show", action="store_true", help="print the last report's round trips")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
