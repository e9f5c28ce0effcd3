"""Benchmark: tiendo's weight at rest next to a bare echo bot (not a test).

Starts the real `tiendo run` process (SQLite in a temporary folder, the example programme, N
focal points) and, the same way, a bare python-telegram-bot echo bot (bench/report_flow.py's),
each against a Bot API stand-in of its own (tests/support/botapi.py) served on 127.0.0.1, and
prints for both:

- launch to ready: from starting the process to its first getUpdates (it is polling);
- RSS idle: the resident set size a few seconds after ready, before any user wrote;
- RSS after N users: after N users (default 50) each completed one /report (eight steps; the
  echo bot answers the same inputs once each), and a few seconds of quiet;
- RSS after /digest (tiendo only): then a manager joins (an invitation made with `tiendo
  invite`), asks for the consolidated report in chat and receives it (text, chart, Word, Excel),
  and a few seconds of quiet. Its files are the bot's first uploads: against this http stand-in
  they make the certificate store (about 2.4 MiB) that a bot talking to api.telegram.org makes
  at its first call anyway.

tiendo runs as `./dev.sh run` starts it, with PYTHONOPTIMIZE=2 (no docstrings); the echo bot as
python-telegram-bot's example runs, without. `--tiendo-plain` and `--echo-lean` change that.

    python bench/footprint.py                 # 3 runs of each, medians
    python bench/footprint.py --runs 5 --users 50
    python bench/footprint.py --runs 1 --tiendo-plain --echo-lean

Targets (issue 12 item 8): tiendo ≤ 70 MiB idle, ≤ 80 MiB after 50 users, ≤ 1 s to ready.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

if TYPE_CHECKING:
    from tests.support.botapi import BotAPIServer, FakeBotAPI

# The echo bot's process imports only python-telegram-bot (see echo_main); the driver's
# imports (the stand-in, tiendo's services to prepare the database) are made in main().

SETTLE = 3.0  # seconds of quiet before reading RSS
MANAGER = 9001  # joins and asks for /digest after the load


def rss_mib(pid: int) -> float:
    """The process's resident set size now (Linux /proc), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


@dataclass
class Figures:
    ready: float
    idle: float
    loaded: float
    errors: int
    digest: float | None = None


async def one_report(api: FakeBotAPI, user_id: int, code: str, echo: bool) -> int:
    """One user through the eight steps of /report once; returns the number of time-outs."""
    from bench.report_flow import SCRIPT, Position, take_step

    at = Position()
    for step in range(len(SCRIPT)):
        at.step = step
        try:
            await take_step(api, user_id, code, at, echo)
        except TimeoutError:
            return 1
    return 0


async def load(api: FakeBotAPI, users: dict[int, str], echo: bool) -> int:
    return sum(await asyncio.gather(*(one_report(api, uid, code, echo) for uid, code in users.items())))


def first_poll(server: BotAPIServer, started: float, timeout: float = 60) -> float:
    server.api.wait_for(lambda: server.api.call_counts().get("getUpdates", 0) >= 1, timeout=timeout)
    return time.monotonic() - started


def measure_tiendo(users: dict[int, str], folder: Path, url: str, lean: bool) -> Figures:
    from bench.report_flow import report_bot
    from tests.support.botapi import BotAPIServer

    with BotAPIServer() as server:
        for uid in users:
            server.api.user(uid, f"User{uid}")
        server.api.user(MANAGER, "Manager")
        bot = report_bot(server, folder, url, concurrent=8)
        bot.lean = lean
        started = time.monotonic()
        bot.start(timeout=60)
        try:
            ready = first_poll(server, started)
            assert bot.process is not None
            pid = bot.process.pid
            time.sleep(SETTLE)
            idle = rss_mib(pid)
            errors = asyncio.run(load(server.api, users, echo=False))
            time.sleep(SETTLE)
            loaded = rss_mib(pid)
            # A manager joins by invitation, then asks for the report.
            invited = bot.cli("invite", "VP", "--role", "manager")
            assert invited.returncode == 0, invited.stderr
            server.api.send_text(MANAGER, f"/start {invited.stdout.splitlines()[1].strip()}")
            server.api.wait_sent(MANAGER, 1, timeout=30)
            server.api.send_text(MANAGER, "/digest")
            server.api.wait_sent(MANAGER, 5, timeout=120)  # then the text, chart, Word and Excel
            time.sleep(SETTLE)
            return Figures(ready, idle, loaded, errors, rss_mib(pid))
        finally:
            bot.stop()


async def _echo_text(update: Any, context: Any) -> None:
    from telegram import InlineKeyboardButton, InlineKeyboardMarkup

    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("ok", callback_data="e:1")]])
    await update.effective_message.reply_text(update.effective_message.text or "?", reply_markup=keyboard)


async def _echo_press(update: Any, context: Any) -> None:
    from telegram import InlineKeyboardButton, InlineKeyboardMarkup

    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("ok", callback_data="e:1")]])
    await update.callback_query.answer()
    await update.callback_query.message.reply_text("ok", reply_markup=keyboard)


def echo_main(base_url: str, base_file_url: str, token: str) -> None:
    """python-telegram-bot's echo bot (plus a button to press): nothing else imported."""
    from telegram.ext import ApplicationBuilder, CallbackQueryHandler, MessageHandler, filters

    app = (
        ApplicationBuilder()
        .token(token)
        .base_url(base_url)
        .base_file_url(base_file_url)
        .concurrent_updates(8)
        .build()
    )
    app.add_handler(MessageHandler(filters.TEXT, _echo_text))
    app.add_handler(CallbackQueryHandler(_echo_press))
    app.run_polling(poll_interval=0.0, timeout=1)


def start_echo(server: BotAPIServer, lean: bool) -> subprocess.Popen[bytes]:
    from tests.support.botapi import DEFAULT_TOKEN

    command = [sys.executable, __file__, "--echo-bot", server.base_url, server.base_file_url, DEFAULT_TOKEN]
    env = {**os.environ, "PYTHONOPTIMIZE": "2"} if lean else None
    return subprocess.Popen(command, cwd=ROOT, env=env)


def measure_echo(users: dict[int, str], lean: bool) -> Figures:
    from tests.support.botapi import BotAPIServer

    with BotAPIServer() as server:
        for uid in users:
            server.api.user(uid, f"User{uid}")
        started = time.monotonic()
        process = start_echo(server, lean)
        try:
            ready = first_poll(server, started)
            time.sleep(SETTLE)
            idle = rss_mib(process.pid)
            errors = asyncio.run(load(server.api, users, echo=True))
            time.sleep(SETTLE)
            return Figures(ready, idle, rss_mib(process.pid), errors)
        finally:
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "\n").splitlines()[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tiendo-plain", action="store_true", help="tiendo without PYTHONOPTIMIZE=2")
    parser.add_argument("--echo-lean", action="store_true", help="the echo bot with PYTHONOPTIMIZE=2")
    parser.add_argument("--echo-bot", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.echo_bot:
        echo_main(*args.echo_bot)
        return
    from bench.report_flow import prepare

    # As `./dev.sh` does before it runs tiendo: its modules as bytecode, and the libraries'
    # bytecode for PYTHONOPTIMIZE=2 (pip compiled the plain one when it installed them).
    libraries = sysconfig.get_paths()["purelib"]
    for folders in (["-o", "0", "-o", "2", "bot", "handlers", "storage"], ["-o", "2", libraries]):
        compile_all = [sys.executable, "-m", "compileall", "-q", *folders]
        subprocess.run(compile_all, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    results: dict[str, list[Figures]] = {"echo": [], "tiendo": []}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        prepared = folder / "prepared.db"
        _, users = asyncio.run(prepare(f"sqlite+aiosqlite:///{prepared}", folder, args.users))
        for run in range(1, args.runs + 1):
            # Each run on a fresh copy (no report sent yet); alternate the bots so both meet the
            # same machine.
            database = folder / f"run{run}.db"
            shutil.copyfile(prepared, database)
            results["echo"].append(measure_echo(users, args.echo_lean))
            results["tiendo"].append(
                measure_tiendo(users, folder, f"sqlite+aiosqlite:///{database}", not args.tiendo_plain)
            )
            for name in ("echo", "tiendo"):
                f = results[name][-1]
                digest = "" if f.digest is None else f"  after /digest {f.digest:6.1f} MiB"
                print(
                    f"run {run} {name:<7} ready {f.ready:5.2f} s  idle {f.idle:6.1f} MiB  "
                    f"after {args.users} users {f.loaded:6.1f} MiB{digest}  time-outs {f.errors}",
                    flush=True,
                )
    print(f"\nmedian of {args.runs} runs, {args.users} users each reporting once, then one /digest:")
    print(
        f"(tiendo {'without' if args.tiendo_plain else 'with'} PYTHONOPTIMIZE=2, "
        f"echo {'with' if args.echo_lean else 'without'})"
    )
    print(f"{'bot':<8}{'launch→ready':>14}{'RSS idle':>12}{'RSS after':>12}{'after /digest':>16}")
    for name, runs in results.items():
        ready = statistics.median(f.ready for f in runs)
        idle = statistics.median(f.idle for f in runs)
        loaded = statistics.median(f.loaded for f in runs)
        digests = [f.digest for f in runs if f.digest is not None]
        digest = f"{statistics.median(digests):>12.1f} MiB" if digests else f"{'-':>16}"
        print(f"{name:<8}{ready:>12.2f} s{idle:>8.1f} MiB{loaded:>8.1f} MiB{digest}")
    tiendo = results["tiendo"]
    ready = statistics.median(f.ready for f in tiendo)
    idle = statistics.median(f.idle for f in tiendo)
    loaded = statistics.median(f.loaded for f in tiendo)
    print(
        f"targets: idle ≤ 70 MiB {'met' if idle <= 70 else 'NOT met'}, after ≤ 80 MiB "
        f"{'met' if loaded <= 80 else 'NOT met'}, ready ≤ 1 s {'met' if ready <= 1 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
