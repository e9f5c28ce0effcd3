"""Benchmark: the bot's own cost of each /report step, one user, in process (not a test).

Runs the real Application on the in-process Bot API stand-in (tests/support/harness.py) and
completes /report again and again as one focal point; prints, per step, the CPU time of this
process (all threads) and the number of trips to aiosqlite's worker thread (each a hand-off to
that thread and back through the event loop, which the profile of the running bot showed to be
the main cost of a step on SQLite; since the chat path runs SQLite in place, a step makes
none). No network and no concurrency: it isolates what a step costs, where
bench/report_flow.py measures it under load against an echo bot.

    python bench/report_steps.py                 # 200 reports, SQLite in a temporary folder
                                                 # (the common path: 5 steps, issue 16)
    python bench/report_steps.py --reports 500 --profile
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiosqlite.core  # noqa: E402

from bot.config import load_config  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from tests.report_helpers import join  # noqa: E402
from tests.support.harness import Harness  # noqa: E402
from tests.test_storage import import_example  # noqa: E402

# The common report (issue 16): after the results sentence comes the summary with Gửi; the
# optional answers are buttons on it, not asked.
SCRIPT = [
    ("report", "text", "/report 5.9"),
    ("status", "press", "Đang thực hiện"),
    ("percent", "press", "50%"),
    ("results", "text", "Đã hoàn thành dự thảo"),
    ("send", "press", "Gửi"),
]
WARM_UP = 5
TRIPS = [0]


def count_trips() -> None:
    original = aiosqlite.core.Connection._execute

    async def counted(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        TRIPS[0] += 1
        return await original(self, fn, *args, **kwargs)

    aiosqlite.core.Connection._execute = counted  # type: ignore[method-assign]


async def main_async(args: argparse.Namespace) -> None:
    count_trips()
    folder = Path(tempfile.mkdtemp())
    base = load_config(ROOT / "config.toml", env={})
    config = base.with_overrides(
        token="123456:TEST-TOKEN",
        source=folder / "config.toml",
        bot={"data_dir": str(folder / "data"), "log_level": "WARNING"},
        database={"url": f"sqlite+aiosqlite:///{folder / 't.db'}"},
    )
    db = Database(config.database_url)
    await upgrade(db)
    await import_example(db)
    harness = await Harness.start(config, db)
    await join(harness, 501, "TTRA", name="Lan")
    await join(harness, 502, "TTRA", role="leader", name="Hùng")
    cpu: dict[str, float] = defaultdict(float)
    trips: dict[str, int] = defaultdict(int)
    profile = cProfile.Profile() if args.profile else None
    for i in range(args.reports + WARM_UP):
        last = None
        if i == WARM_UP and profile:
            profile.enable()
        for step, kind, what in SCRIPT:
            started, before = time.process_time(), TRIPS[0]
            if kind == "text":
                out = await harness.send(501, what)
            else:
                assert last is not None
                out = await harness.press(501, last.message_id, last.button_data(what))
            if i >= WARM_UP:
                cpu[step] += time.process_time() - started
                trips[step] += TRIPS[0] - before
            assert out, (step, what)
            last = out[-1]
    if profile:
        profile.disable()
        pstats.Stats(profile).sort_stats("cumulative").print_stats(40)
    n = args.reports
    print(f"{'step':<14}{'CPU ms':>8}{'trips':>7}")
    for step, _, _ in SCRIPT:
        print(f"{step:<14}{cpu[step] / n * 1000:>8.2f}{trips[step] / n:>7.1f}")
    total = sum(cpu.values()) / n * 1000
    print(
        f"per report {total:.2f} ms CPU, {sum(trips.values()) / n:.0f} trips;"
        f" per step {total / len(SCRIPT):.2f} ms"
    )
    await harness.stop()
    await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--reports", type=int, default=200)
    parser.add_argument("--profile", action="store_true", help="print a cProfile summary")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
