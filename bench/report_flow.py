"""Benchmark: the guided /report under load, next to a bare echo handler (not a test).

50 simulated users (default) each complete /report again and again for --seconds against the
Bot API stand-in served over HTTP on 127.0.0.1 by this process; the bot is the real
`tiendo run` process (handlers, services, per-step writes of the draft and the conversation
state), polling the stand-in with getUpdates. The same users then send the same sequence of
messages and button presses to a bare echo bot (one reply per input, no database: a PTB
Application with the same per-chat update processor) in a process of its own. Printed: steps
per second and p50/p95 latency (from the user's input to the bot's answer) per step, for both,
and the ratios against the targets (≥ 90 % of echo's steps/s, p95 within 1.1×).

    python bench/report_flow.py                          # SQLite in a temporary folder
    python bench/report_flow.py --database postgresql+asyncpg://postgres@127.0.0.1/bench

PTB's rate limiter (30 requests/s, Telegram's own limit) is left out of both bots
([telegram] rate_limiter = false): with it, both would measure the limiter. A PostgreSQL
database given here is wiped (schema public).
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
from datetime import timedelta
from pathlib import Path
from typing import Any

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

from bot.app import build_services  # noqa: E402
from bot.config import load_config  # noqa: E402
from bot.updates import PerChatUpdateProcessor  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
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
    ("difficulties", "text", "/skip"),
    ("proposals", "text", "/skip"),
    ("evidence", "text", "/skip"),
    ("send", "press", "Gửi"),
]


@dataclasses.dataclass
class Run:
    name: str
    steps: int = 0
    seconds: float = 0.0
    latencies: dict[str, list[float]] = dataclasses.field(
        default_factory=lambda: defaultdict(list))
    errors: int = 0
    cpu: float = 0.0  # CPU seconds the bot's process used during the run

    def add(self, other: Run) -> None:
        self.steps += other.steps
        self.seconds += other.seconds
        self.errors += other.errors
        self.cpu += other.cpu
        for step, values in other.latencies.items():
            self.latencies[step].extend(values)

    @property
    def rate(self) -> float:
        return self.steps / self.seconds if self.seconds else 0.0

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


async def simulate(api: FakeBotAPI, user_id: int, code: str, run: Run, stop_at: float,
                   echo: bool) -> None:
    """One user going through the script until time is up (finishing the report under way)."""
    last: SentMessage | None = None
    while time.monotonic() < stop_at:
        for step, kind, what in SCRIPT:
            count = len(api.sent(user_id)) + 1
            started = time.monotonic()
            if kind == "text":
                api.send_text(user_id, what.format(code=code))
            else:
                assert last is not None
                data = last.buttons[0]["callback_data"] if echo else last.button_data(what)
                api.press_button(user_id, last.message_id, data)
            try:
                last = await _next_reply(api, user_id, count)
            except TimeoutError:
                run.errors += 1
                return
            run.latencies[step].append(last.monotonic - started)
            run.steps += 1


async def _echo_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None
    await update.effective_message.reply_text(
        update.effective_message.text or "?",
        reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("ok", callback_data="e:1")]]))


async def _echo_press(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    assert query is not None and query.message is not None
    await query.answer()
    await query.message.reply_text(  # type: ignore[union-attr]
        "ok", reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("ok", callback_data="e:1")]]))


def echo_main(base_url: str, base_file_url: str, concurrent: int) -> None:
    """The echo bot's process: poll the stand-in and answer every input once."""
    app = (
        ApplicationBuilder().token(DEFAULT_TOKEN).base_url(base_url)
        .base_file_url(base_file_url)
        .concurrent_updates(PerChatUpdateProcessor(concurrent)).build()
    )
    app.add_handler(MessageHandler(filters.TEXT, _echo_text))
    app.add_handler(CallbackQueryHandler(_echo_press))
    app.run_polling(poll_interval=0.0, timeout=1)


def start_echo(server: BotAPIServer, concurrent: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, __file__, "--echo-bot", server.base_url, server.base_file_url,
         "--concurrent", str(concurrent)], cwd=ROOT)
    server.api.wait_for(lambda: server.api.call_counts().get("getUpdates", 0) >= 1,
                        timeout=30)
    return process


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def drive(api: FakeBotAPI, users: dict[int, str], name: str, seconds: float,
                echo: bool) -> Run:
    run = Run(name)
    started = time.monotonic()
    await asyncio.gather(*(simulate(api, uid, code, run, started + seconds, echo)
                           for uid, code in users.items()))
    run.seconds = time.monotonic() - started
    return run


async def prepare(database_url: str, folder: Path, count: int) -> tuple[Any, dict[int, str]]:
    """A migrated database with the example programme and `count` focal points, each on a task
    of their own (without a numeric target) so their reports do not queue on one row."""
    if database_url.startswith("postgresql"):
        engine = create_async_engine(database_url)
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
        await engine.dispose()
    base = load_config(ROOT / "config.toml", env={})
    config = dataclasses.replace(
        base, token=DEFAULT_TOKEN, source=folder / "config.toml",
        bot=dataclasses.replace(base.bot, data_dir=str(folder / "data"), log_level="WARNING"),
        database=dataclasses.replace(base.database, url=database_url),
    )
    db = Database(config.database_url)
    await upgrade(db)
    services = build_services(config, db=db)
    plan = await services.programme.read_plan(EXAMPLE.read_bytes(), EXAMPLE.name)
    assert (await services.programme.apply(plan)).applied
    async with db.reader() as session:
        tasks = [t for t in await TaskRepository(session).all_open() if t.target_value is None]
        picked = [(t.code, t.lead_unit.code) for t in tasks[:count]]
    users: dict[int, str] = {}
    for i, (code, unit) in enumerate(picked * (count // len(picked) + 1)):
        if i == count:
            break
        invite = await services.invites.create(unit, "focal", timedelta(days=1))
        await services.invites.redeem(invite.code, FIRST_USER + i, f"User{i}", None, None)
        users[FIRST_USER + i] = code
    await db.dispose()
    return config, users


def report(echo: Run, flow: Run, label: str) -> None:
    print(f"\n== {label}: {len(SCRIPT)} steps per report ==")
    print(f"{'step':<14}{'echo p50':>10}{'echo p95':>10}{'report p50':>12}{'report p95':>12}  (ms)")
    for step, _, _ in SCRIPT:
        e, r = echo.latencies[step], flow.latencies[step]
        print(f"{step:<14}{pct(e, 50) * 1000:>10.1f}{pct(e, 95) * 1000:>10.1f}"
              f"{pct(r, 50) * 1000:>12.1f}{pct(r, 95) * 1000:>12.1f}")
    e_all, r_all = echo.all_latencies(), flow.all_latencies()
    print(f"{'all steps':<14}{pct(e_all, 50) * 1000:>10.1f}{pct(e_all, 95) * 1000:>10.1f}"
          f"{pct(r_all, 50) * 1000:>12.1f}{pct(r_all, 95) * 1000:>12.1f}")
    print(f"echo:   {echo.steps} steps in {echo.seconds:.1f} s = {echo.rate:.1f} steps/s"
          f" (timeouts {echo.errors}); bot process CPU {echo.cpu / max(echo.steps, 1) * 1000:.2f}"
          f" ms/step")
    print(f"report: {flow.steps} steps in {flow.seconds:.1f} s = {flow.rate:.1f} steps/s"
          f" ({flow.steps // len(SCRIPT)} reports, timeouts {flow.errors}); bot process CPU"
          f" {flow.cpu / max(flow.steps, 1) * 1000:.2f} ms/step")
    ratio = flow.rate / echo.rate if echo.rate else float("nan")
    p95 = pct(r_all, 95) / pct(e_all, 95)
    print(f"report/echo steps/s = {ratio:.1%} (target ≥ 90%): "
          f"{'met' if ratio >= 0.9 else 'NOT met'}")
    print(f"report/echo p95 = {p95:.2f}× (target ≤ 1.1×): {'met' if p95 <= 1.1 else 'NOT met'}")


async def run_on_fresh_standin(name: str, url: str, folder: Path, users: dict[int, str],
                               args: argparse.Namespace) -> Run:
    """One run against its own stand-in, so neither run pays for the other's history."""
    with BotAPIServer() as server:
        api = server.api
        for uid in users:
            api.user(uid, f"User{uid}")
        if name == "echo":
            process = start_echo(server, args.concurrent)
            try:
                before = cpu_seconds(process.pid)
                run = await drive(api, users, name, args.seconds, echo=True)
                run.cpu = cpu_seconds(process.pid) - before
            finally:
                process.terminate()
                process.wait(20)
        else:
            # Lands in the [telegram] table BotProcess writes last.
            extra = f"concurrent_updates = {args.concurrent}\nrate_limiter = false\n"
            bot = BotProcess(server, folder, extra_config=extra, database_url=url)
            with bot:
                assert bot.process is not None
                before = cpu_seconds(bot.process.pid)
                run = await drive(api, users, name, args.seconds, echo=False)
                run.cpu = cpu_seconds(bot.process.pid) - before
        if api.rejected:
            print(f"{name}: the stand-in rejected {len(api.rejected)} calls, e.g. "
                  f"{api.rejected[:2]}")
        return run


async def main_async(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        url = args.database or f"sqlite+aiosqlite:///{folder / 'bench.db'}"
        _, users = await prepare(url, folder, args.users)
        label = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
        # Alternate the two, so that a neighbour's load on the machine falls on both alike.
        echo, flow = Run("echo"), Run("report")
        for number in range(1, args.rounds + 1):
            runs = {}
            for total, name in ((echo, "echo"), (flow, "report")):
                runs[name] = await run_on_fresh_standin(name, url, folder, users, args)
                total.add(runs[name])
            e, r = runs["echo"], runs["report"]
            print(f"round {number}: echo {e.rate:.1f} steps/s ({e.cpu / max(e.steps, 1) * 1000:.2f}"
                  f" ms CPU/step), report {r.rate:.1f} steps/s"
                  f" ({r.cpu / max(r.steps, 1) * 1000:.2f} ms CPU/step): {r.rate / e.rate:.1%}",
                  flush=True)
        report(echo, flow, f"{label}, {len(users)} users, concurrent_updates={args.concurrent},"
               f" {args.rounds} alternating rounds of {args.seconds:g} s each")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=15.0, help="length of each run")
    parser.add_argument("--rounds", type=int, default=2,
                        help="alternating echo/report runs (each of --seconds)")
    parser.add_argument("--concurrent", type=int, default=8,
                        help="concurrent_updates of both bots (the config's default is 8)")
    parser.add_argument("--database", default="",
                        help="a SQLAlchemy URL (default: SQLite in a temporary folder)")
    parser.add_argument("--echo-bot", nargs=2, metavar=("BASE_URL", "BASE_FILE_URL"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.echo_bot:
        echo_main(args.echo_bot[0], args.echo_bot[1], args.concurrent)
        return
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
