"""Benchmark: the guided /report under load, next to a bare echo handler (not a test).

50 simulated users (default) each complete /report again and again against the Bot API
stand-in served over HTTP on 127.0.0.1 by this process; the bot is the real `tiendo run`
process (handlers, services, per-step writes of the draft and the conversation state), polling
the stand-in with getUpdates. The same users send the same sequence of messages and button
presses to a bare echo bot (one reply per input, no database: a PTB Application with the same
per-chat update processor) in a process of its own, polling a stand-in of its own.

Both bots run for the whole benchmark and take turns under load, --turn seconds at a time,
until each has had --seconds (default 30 s: ten 3-s turns each). A user stopped by the end of a
turn carries on at the same step in the bot's next turn. Short turns matter on a shared
machine: its speed swings by a fifth or more over tens of seconds (the echo bot's CPU per step
alone has ranged from 2.1 to 4.7 ms between runs), and one long run of each bot measured
those swings more than the bots; in short alternating turns both meet the same machine.

Printed: steps per second and p50/p95 latency (from the user's input to the bot's answer) per
step for both, each bot's CPU per step (and the part spent in the kernel), Bot API calls per
step, the spread of the per-pair ratios, and the ratios against the targets (SQLite: ≥ 90 % of
echo's steps/s, p95 within 1.1×; PostgreSQL: ≥ 85 %, within 1.25×). bench/report_cost.py counts
the instructions of a step instead, which the machine's swings do not change.

    python bench/report_flow.py                          # SQLite in a temporary folder
    python bench/report_flow.py --runs 5                 # five runs, new processes each time,
                                                         # and their median
    python bench/report_flow.py --database postgresql+asyncpg://postgres@127.0.0.1/bench

PTB's rate limiter (30 requests/s, Telegram's own limit) is left out of both bots
([telegram] rate_limiter = false): with it, both would measure the limiter. A PostgreSQL
database given here is wiped (schema public).

The scheduler's messages are kept out of the run: deadlines move to a later year and the
nudges are off. A reminder arriving in the middle of a report would be taken for the answer to
the user's step (it fails the run in working hours, when the example's overdue tasks are
nudged); reminders have a benchmark of their own (bench/nudges.py).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from datetime import date, timedelta
from itertools import cycle, islice
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402
from sqlalchemy.ext.asyncio import create_async_engine  # noqa: E402
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update  # noqa: E402
from telegram.ext import (  # noqa: E402
    ApplicationBuilder,
    CallbackQueryHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.config import Config, load_config  # noqa: E402
from bot.services.container import Services, build_services  # noqa: E402
from bot.updates import PerChatUpdateProcessor  # noqa: E402
from handlers.wording import TelegramWording  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import Task  # noqa: E402
from storage.repositories.tasks import TaskRepository  # noqa: E402
from tests.support.botapi import DEFAULT_TOKEN, BotAPIServer, FakeBotAPI, SentMessage  # noqa: E402
from tests.support.process import BotProcess  # noqa: E402

EXAMPLE = ROOT / "examples" / "programme-59-QD-BKHCN-2024.yaml"
FIRST_USER = 900_001

# One /report as a list of (step name, kind, what): kind "text" or "press" (a button label).
SCRIPT = [
    ("report", "text", "/report {code}"),
    ("status", "press", "Đang thực hiện"),
    ("percent", "press", "50%"),
    ("results", "text", "Đã hoàn thành dự thảo, gửi lấy ý kiến các đơn vị"),
    ("send", "press", "Gửi"),
]


@dataclasses.dataclass
class Run:
    name: str
    steps: int = 0
    seconds: float = 0.0
    latencies: dict[str, list[float]] = dataclasses.field(default_factory=lambda: defaultdict(list))
    errors: int = 0
    cpu: float = 0.0  # CPU seconds the bot's process used during the run (user + system)
    system: float = 0.0  # of which in the kernel (system calls)
    calls: dict[str, int] = dataclasses.field(default_factory=dict)  # Bot API calls by method

    def add(self, other: Run) -> None:
        self.steps += other.steps
        self.seconds += other.seconds
        self.errors += other.errors
        self.cpu += other.cpu
        self.system += other.system
        for method, count in other.calls.items():
            self.calls[method] = self.calls.get(method, 0) + count
        for step, values in other.latencies.items():
            self.latencies[step].extend(values)

    @property
    def rate(self) -> float:
        return self.steps / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms(self) -> float:
        """The bot's CPU milliseconds per step."""
        return self.cpu / max(self.steps, 1) * 1000

    def all_latencies(self) -> list[float]:
        return [x for values in self.latencies.values() for x in values]


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


async def _next_reply(api: FakeBotAPI, chat_id: int, count: int) -> SentMessage:
    return (await api.wait_sent_async(chat_id, count, timeout=30))[-1]


@dataclasses.dataclass
class Position:
    """Where one user is in the script with one bot: the next step and the bot's last message."""

    step: int = 0
    last: SentMessage | None = None


async def take_step(api: FakeBotAPI, user_id: int, code: str, at: Position, echo: bool) -> None:
    """Do what the script says at the user's step (write, or press the last answer's button;
    the echo bot's only button) and wait for the bot's answer into at.last (TimeoutError: none
    came)."""
    _step, kind, what = SCRIPT[at.step]
    count = len(api.sent(user_id)) + 1
    if kind == "text":
        api.send_text(user_id, what.format(code=code))
    else:
        assert at.last is not None
        data = at.last.buttons[0]["callback_data"] if echo else at.last.button_data(what)
        api.press_button(user_id, at.last.message_id, data)
    at.last = await _next_reply(api, user_id, count)


async def simulate(
    api: FakeBotAPI, user_id: int, code: str, at: Position, run: Run, stop_at: float, echo: bool
) -> None:
    """One user going through the script, step after step, until the turn's time is up; the
    next turn carries on where this one stopped (the bot keeps the conversation)."""
    while time.monotonic() < stop_at:
        step = SCRIPT[at.step][0]
        started = time.monotonic()
        try:
            await take_step(api, user_id, code, at, echo)
        except TimeoutError:
            run.errors += 1
            return
        assert at.last is not None
        run.latencies[step].append(at.last.monotonic - started)
        run.steps += 1
        at.step = (at.step + 1) % len(SCRIPT)


async def _echo_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None
    await update.effective_message.reply_text(
        update.effective_message.text or "?",
        reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("ok", callback_data="e:1")]]),
    )


async def _echo_press(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    assert query is not None and query.message is not None
    await query.answer()
    await query.message.reply_text(  # type: ignore[union-attr]
        "ok", reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("ok", callback_data="e:1")]])
    )


def echo_main(base_url: str, base_file_url: str, concurrent: int, client: str = "httpx") -> None:
    """The echo bot's process: poll the stand-in and answer every input once, through
    python-telegram-bot's own Bot API client (httpx), or (client "tiendo") through tiendo's."""
    builder = (
        ApplicationBuilder()
        .token(DEFAULT_TOKEN)
        .base_url(base_url)
        .base_file_url(base_file_url)
        .concurrent_updates(PerChatUpdateProcessor(concurrent))
    )
    if client == "tiendo":
        from bot.bot_api_http import BotAPIRequest

        builder = builder.request(BotAPIRequest(256)).get_updates_request(BotAPIRequest(1))
    app = builder.build()
    app.add_handler(MessageHandler(filters.TEXT, _echo_text))
    app.add_handler(CallbackQueryHandler(_echo_press))
    app.run_polling(poll_interval=0.0, timeout=1)


def start_echo(
    server: BotAPIServer,
    concurrent: int,
    wrapper: Sequence[str] = (),
    timeout: float = 30,
    client: str = "httpx",
) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [
            *wrapper,
            sys.executable,
            __file__,
            "--echo-bot",
            server.base_url,
            server.base_file_url,
            "--concurrent",
            str(concurrent),
            "--echo-client",
            client,
        ],
        cwd=ROOT,
    )
    server.api.wait_for(lambda: server.api.call_counts().get("getUpdates", 0) >= 1, timeout=timeout)
    return process


def report_bot(
    server: BotAPIServer, folder: Path, url: str, concurrent: int, wrapper: Sequence[str] = ()
) -> BotProcess:
    """The real `tiendo run` for these benchmarks: no rate limiter, no reminders."""
    # Lands in the [telegram] table BotProcess writes last.
    extra = (
        f"concurrent_updates = {concurrent}\nrate_limiter = false\n"
        "[nudges]\nbefore_days = []\non_the_day = false\nperiod_reminders = []\n"
    )
    return BotProcess(server, folder, extra_config=extra, database_url=url, wrapper=wrapper)


def cpu_seconds(pid: int) -> tuple[float, float]:
    """User and system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


@dataclasses.dataclass
class Bot:
    """One of the two bots under load: its stand-in, its process and where each user is."""

    name: str
    server: BotAPIServer
    pid: int
    positions: dict[int, Position]
    total: Run


async def drive(bot: Bot, users: dict[int, str], seconds: float) -> Run:
    """One turn: every user steps through the script against this bot for `seconds`."""
    run = Run(bot.name)
    user_before, system_before = cpu_seconds(bot.pid)
    calls_before = bot.server.api.call_counts()
    started = time.monotonic()
    await asyncio.gather(
        *(
            simulate(
                bot.server.api, uid, code, bot.positions[uid], run, started + seconds, bot.name == "echo"
            )
            for uid, code in users.items()
        )
    )
    run.seconds = time.monotonic() - started
    user, system = cpu_seconds(bot.pid)
    run.system = system - system_before
    run.cpu = user - user_before + run.system
    run.calls = {
        method: count - calls_before.get(method, 0) for method, count in bot.server.api.call_counts().items()
    }
    return run


async def example_database(database_url: str, folder: Path) -> tuple[Config, Database, Services]:
    """A migrated database (on PostgreSQL, in a schema made anew) with the example programme, its
    config and services; every deadline moved to a later year so that no reminder comes in the
    middle of a report (see the module's text). The caller disposes of the database."""
    if database_url.startswith("postgresql"):
        engine = create_async_engine(database_url)
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
        await engine.dispose()
    base = load_config(ROOT / "config.toml", env={})
    config = base.with_overrides(
        token=DEFAULT_TOKEN,
        source=folder / "config.toml",
        bot={"data_dir": str(folder / "data"), "log_level": "WARNING"},
        database={"url": database_url},
    )
    db = Database(config.database_url)
    await upgrade(db)
    services = build_services(config, wording=TelegramWording, db=db)
    plan = await services.programme.read_plan(EXAMPLE.read_bytes(), EXAMPLE.name)
    applied = await services.programme.apply(plan)
    if not applied.applied:
        raise SystemExit(f"the example programme was not applied: {applied}")
    async with db.engine.begin() as conn:
        await conn.execute(
            text("UPDATE tasks SET deadline = :later WHERE deadline IS NOT NULL"),
            {"later": date(date.today().year + 5, 12, 31)},
        )
    return config, db, services


async def open_tasks(db: Database) -> list[Task]:
    """The open tasks, those without a numeric target first (their report has one step less)."""
    async with db.reader() as session:
        tasks = await TaskRepository(session).all_open()
    return sorted(tasks, key=lambda t: t.target_value is not None)


async def add_focal_points(
    services: Services, tasks: Sequence[Task], first_id: int, name: str
) -> dict[int, str]:
    """One focal point per task, of its lead unit, Telegram ids from first_id, named name + i;
    returns id -> the task's code."""
    users: dict[int, str] = {}
    for i, task in enumerate(tasks):
        invite = await services.invites.create(task.lead_unit.code, "focal", timedelta(days=1))
        await services.invites.redeem(invite.code, first_id + i, f"{name}{i}", None, None)
        users[first_id + i] = task.code
    return users


async def prepare(database_url: str, folder: Path, count: int) -> tuple[Config, dict[int, str]]:
    """The example database with `count` focal points, each on a task without a numeric target
    (taken again from the first when there are fewer), so their reports rarely queue on one row."""
    config, db, services = await example_database(database_url, folder)
    try:
        tasks = [t for t in await open_tasks(db) if t.target_value is None]
        users = await add_focal_points(services, list(islice(cycle(tasks), count)), FIRST_USER, "User")
    finally:
        await db.dispose()
    return config, users


# The targets, by engine: steps/s at least this share of the echo bot's, p95 at most this many
# times its (issue 12 item 2 on SQLite, issue 17 item 6 on PostgreSQL).
TARGETS = {"SQLite": (0.90, 1.10), "PostgreSQL": (0.85, 1.25)}


def verdict(rate: float, p95: float, label: str) -> tuple[str, str]:
    """The steps/s and p95 ratios against the engine's targets, as printed."""
    least, most = TARGETS[label]
    return (
        f"{rate:.1%} (target ≥ {least:.0%}): {'met' if rate >= least else 'NOT met'}",
        f"{p95:.2f}× (target ≤ {most}×): {'met' if p95 <= most else 'NOT met'}",
    )


def report(echo: Run, flow: Run, label: str, engine: str) -> tuple[float, float]:
    """Print the figures; returns report/echo steps per second and report/echo p95."""
    print(f"\n== {label}: {len(SCRIPT)} steps per report ==")
    print(f"{'step':<14}{'echo p50':>10}{'echo p95':>10}{'report p50':>12}{'report p95':>12}  (ms)")
    for step, _, _ in SCRIPT:
        e, r = echo.latencies[step], flow.latencies[step]
        print(
            f"{step:<14}{pct(e, 50) * 1000:>10.1f}{pct(e, 95) * 1000:>10.1f}"
            f"{pct(r, 50) * 1000:>12.1f}{pct(r, 95) * 1000:>12.1f}"
        )
    e_all, r_all = echo.all_latencies(), flow.all_latencies()
    print(
        f"{'all steps':<14}{pct(e_all, 50) * 1000:>10.1f}{pct(e_all, 95) * 1000:>10.1f}"
        f"{pct(r_all, 50) * 1000:>12.1f}{pct(r_all, 95) * 1000:>12.1f}"
    )
    for run in (echo, flow):
        print(
            f"{run.name + ':':<8}{run.steps} steps in {run.seconds:.1f} s = {run.rate:.1f} steps/s"
            f" (timeouts {run.errors}); the bot's process: {run.cpu_ms:.2f} ms CPU per step"
            f" ({run.system / max(run.steps, 1) * 1000:.2f} in the kernel),"
            f" {run.cpu / run.seconds:.0%} of a core"
        )
    # A whole report, the unit a focal point counts (issue 16 took cheap /skip steps out of
    # it: the per-step mix got dearer while the report got cheaper).
    for run in (echo, flow):
        waited, steps = sum(pct(run.latencies[step], 50) for step, _, _ in SCRIPT), len(SCRIPT)
        print(
            f"{run.name + ':':<8}per report of {steps} steps: {run.cpu_ms * steps:.1f} ms CPU,"
            f" {waited * 1000:.0f} ms of waiting (sum of the steps' p50), {run.rate / steps:.1f} reports/s"
        )
    for run in (echo, flow):
        calls = ", ".join(
            f"{method} {count / max(run.steps, 1):.2f}"
            for method, count in sorted(run.calls.items())
            if count
        )
        print(f"{run.name}: Bot API calls per step: {calls}")
    ratio = flow.rate / echo.rate if echo.rate else float("nan")
    p95 = pct(r_all, 95) / pct(e_all, 95)
    rate_verdict, p95_verdict = verdict(ratio, p95, engine)
    print(f"report/echo steps/s = {rate_verdict}")
    print(f"report/echo p95 = {p95_verdict}")
    return ratio, p95


def label_of(args: argparse.Namespace) -> str:
    return "PostgreSQL" if args.database.startswith("postgresql") else "SQLite"


async def main_async(args: argparse.Namespace) -> tuple[float, float]:
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp, BotAPIServer() as echo_server, BotAPIServer() as report_server:
        folder = Path(tmp)
        url = args.database or f"sqlite+aiosqlite:///{folder / 'bench.db'}"
        _, users = await prepare(url, folder, args.users)
        label = label_of(args)
        for server in (echo_server, report_server):
            for uid in users:
                server.api.user(uid, f"User{uid}")
        echo_process = start_echo(echo_server, args.concurrent, client=args.echo_client)
        try:
            with report_bot(report_server, folder, url, args.concurrent) as process:
                assert process.process is not None
                bots = [
                    Bot(name, server, pid, {uid: Position() for uid in users}, Run(name))
                    for name, server, pid in (
                        ("echo", echo_server, echo_process.pid),
                        ("report", report_server, process.process.pid),
                    )
                ]
                # Load before measuring: the first steps after start-up fill caches
                # (compiled statements, drafts, catalogs), which a bot in service has warm.
                for bot in bots:
                    await drive(bot, users, args.warmup)
                turns = max(1, round(args.seconds / args.turn))
                ratios = []
                bench_cpu, bench_wall = time.process_time(), time.monotonic()
                for number in range(1, turns + 1):
                    # Alternate which bot goes first, so a trend in the machine's speed within
                    # a pair falls on both alike.
                    runs = {}
                    for bot in bots if number % 2 else bots[::-1]:
                        runs[bot.name] = await drive(bot, users, args.turn)
                    for bot in bots:
                        bot.total.add(runs[bot.name])
                    e, r = runs["echo"], runs["report"]
                    ratios.append(r.rate / e.rate)
                    if args.verbose:
                        print(
                            f"turn {number}: echo {e.rate:.1f} steps/s ({e.cpu_ms:.2f} ms CPU/"
                            f"step), report {r.rate:.1f} steps/s ({r.cpu_ms:.2f} ms CPU/step):"
                            f" {ratios[-1]:.1%}",
                            flush=True,
                        )
                bench_cpu = time.process_time() - bench_cpu
                bench_wall = time.monotonic() - bench_wall
        finally:
            echo_process.terminate()
            echo_process.wait(20)
        for server in (echo_server, report_server):
            if server.api.rejected:
                print(
                    f"the stand-in rejected {len(server.api.rejected)} calls, e.g. {server.api.rejected[:2]}"
                )
        quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
        print(
            f"{turns} turns of {args.turn:g} s for each bot; report/echo steps/s per pair of"
            f" turns: median"
            f" {statistics.median(ratios):.1%}, quartiles {quartiles[0]:.1%}–{quartiles[2]:.1%},"
            f" range {min(ratios):.1%}–{max(ratios):.1%}"
        )
        print(
            f"this process (the users and the stand-ins): {bench_cpu / bench_wall:.0%} of a core"
            f" (it must not be the bottleneck: the machine has {os.cpu_count()})"
        )
        return report(
            bots[0].total,
            bots[1].total,
            f"{label}, {len(users)} users, concurrent_updates={args.concurrent},"
            f" {turns} turns of {args.turn:g} s each"
            + (", the echo bot on tiendo's Bot API client" if args.echo_client == "tiendo" else ""),
            label,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument(
        "--seconds", type=float, default=30.0, help="time under load for each bot (at least 15 s)"
    )
    parser.add_argument(
        "--turn", type=float, default=3.0, help="the bots take turns under load, this many seconds at a time"
    )
    parser.add_argument(
        "--warmup", type=float, default=3.0, help="seconds under load for each bot before measuring"
    )
    parser.add_argument(
        "--runs",
        type=int,
        default=1,
        help="repeat with new processes and print the median of the runs (how"
        " fast a process runs also varies from one start to the next)",
    )
    parser.add_argument("--verbose", action="store_true", help="print every pair of turns")
    parser.add_argument(
        "--concurrent",
        type=int,
        default=8,
        help="concurrent_updates of both bots (the config's default is 8)",
    )
    parser.add_argument(
        "--database", default="", help="a SQLAlchemy URL (default: SQLite in a temporary folder)"
    )
    parser.add_argument(
        "--echo-client",
        choices=("httpx", "tiendo"),
        default="httpx",
        help="the echo bot's Bot API client: python-telegram-bot's own (httpx; the targets are"
        " against this one), or tiendo's (bot/bot_api_http.py), to compare the two bots' own work alone",
    )
    parser.add_argument("--echo-bot", nargs=2, metavar=("BASE_URL", "BASE_FILE_URL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.echo_bot:
        echo_main(args.echo_bot[0], args.echo_bot[1], args.concurrent, args.echo_client)
        return
    results = []
    for number in range(1, args.runs + 1):
        if args.runs > 1:
            print(f"\n#### run {number} of {args.runs}", flush=True)
        results.append(asyncio.run(main_async(args)))
    if args.runs > 1:
        rates, p95s = zip(*results, strict=True)
        print(
            f"\n#### {args.runs} runs: report/echo steps/s "
            f"{', '.join(f'{r:.1%}' for r in rates)}; p95 {', '.join(f'{p:.2f}×' for p in p95s)}"
        )
        rate_verdict, p95_verdict = verdict(statistics.median(rates), statistics.median(p95s), label_of(args))
        print(f"median report/echo steps/s = {rate_verdict}; median p95 = {p95_verdict}")


if __name__ == "__main__":
    main()
