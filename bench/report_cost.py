"""Benchmark: the instructions a /report step costs, next to a bare echo bot's (not a test).

bench/report_flow.py measures time under load, and time on a shared machine swings: between
runs minutes apart the echo bot alone has needed from 2.1 to 4.7 ms of CPU per step, so one
run of it cannot tell a bot 5 % dearer than the echo from one 15 % dearer. The instructions a
step executes do not swing. This runs the same two bots as report_flow.py (the real
`tiendo run` and the bare echo bot), each under valgrind's callgrind, each driven by the same
users through the same /report script against a Bot API stand-in of its own, and counts the
instructions each process executes (all its threads) per step, after a warm-up. Runs agree
to within about two percent (which steps a user stops at when time is up varies).

What it leaves out is what report_flow.py keeps: time in the kernel (system calls, such as
SQLite's file locks and writes) and the cost of cache misses. Read the two together.

    python bench/report_cost.py                  # SQLite, 8 users, 20 s of counting per bot
    python bench/report_cost.py --database postgresql+asyncpg://postgres@127.0.0.1/bench

Needs valgrind (Debian: apt install valgrind). Under callgrind a step takes about 50 times
longer; a run takes about two minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.report_flow import (  # noqa: E402
    Bot,
    Position,
    Run,
    drive,
    prepare,
    report_bot,
    start_echo,
)
from tests.support.botapi import BotAPIServer  # noqa: E402


def instructions(pid: int, folder: Path) -> int:
    """Ask callgrind for a dump (which zeroes its counters) and read its total."""
    before = set(folder.glob(f"cg.{pid}*"))
    subprocess.run(["callgrind_control", "--dump", str(pid)], check=True, capture_output=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        new = [path for path in folder.glob(f"cg.{pid}*") if path not in before]
        for path in new:
            found = re.search(r"^(?:summary|totals):\s*(\d+)", path.read_text(), re.M)
            if found:
                return int(found.group(1))
        time.sleep(0.2)
    raise TimeoutError(f"callgrind wrote no dump for process {pid}")


async def count(
    name: str, server: BotAPIServer, pid: int, users: dict[int, str], folder: Path, args: argparse.Namespace
) -> tuple[Run, int]:
    """Warm up without counting, then count the instructions of --seconds of steps."""
    bot = Bot(name, server, pid, {uid: Position() for uid in users}, Run(name))
    await drive(bot, users, args.warmup)
    subprocess.run(["callgrind_control", "--instr=on", str(pid)], check=True, capture_output=True)
    instructions(pid, folder)  # zero the counters: only the steps below count
    run = await drive(bot, users, args.seconds)
    return run, instructions(pid, folder)


async def main_async(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        dumps = folder / "callgrind"
        dumps.mkdir()
        wrapper = [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={dumps}/cg.%p",
            f"--log-file={dumps}/valgrind.%p",
        ]
        url = args.database or f"sqlite+aiosqlite:///{folder / 'bench.db'}"
        _, users = await prepare(url, folder, args.users)
        results: dict[str, tuple[Run, int]] = {}
        for name in ("echo", "report"):
            with BotAPIServer() as server:
                for uid in users:
                    server.api.user(uid, f"User{uid}")
                if name == "echo":
                    process = start_echo(server, args.concurrent, wrapper, timeout=600)
                    try:
                        results[name] = await count(name, server, process.pid, users, dumps, args)
                    finally:
                        process.terminate()
                        process.wait(60)
                else:
                    bot = report_bot(server, folder, url, args.concurrent, wrapper)
                    bot.start(timeout=600)
                    try:
                        assert bot.process is not None
                        results[name] = await count(name, server, bot.process.pid, users, dumps, args)
                    finally:
                        bot.stop(timeout=60)
        label = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
        print(
            f"== {label}, {len(users)} users, concurrent_updates={args.concurrent},"
            f" {args.seconds:g} s counted per bot under callgrind =="
        )
        per_step = {}
        for name, (run, total) in results.items():
            per_step[name] = total / max(run.steps, 1)
            calls = ", ".join(
                f"{method} {n / max(run.steps, 1):.2f}" for method, n in sorted(run.calls.items()) if n
            )
            print(
                f"{name + ':':<8}{run.steps} steps, {per_step[name] / 1e6:.2f} M instructions"
                f" per step (Bot API calls per step: {calls}; timeouts {run.errors})"
            )
        print(f"report/echo instructions per step: {per_step['report'] / per_step['echo']:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument(
        "--seconds", type=float, default=20.0, help="time counted for each bot (under callgrind)"
    )
    parser.add_argument("--warmup", type=float, default=8.0, help="seconds of steps before counting starts")
    parser.add_argument("--concurrent", type=int, default=8)
    parser.add_argument(
        "--database", default="", help="a SQLAlchemy URL (default: SQLite in a temporary folder)"
    )
    args = parser.parse_args()
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        sys.exit("valgrind is not installed (Debian: apt install valgrind)")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
