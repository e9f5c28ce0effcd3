"""Crash soak: people reporting while `tiendo run` is killed with SIGKILL and restarted.

N simulated people (default 30), each a focal point of a task and unit of their own, report on
it again and again through the guided /report, against the Bot API stand-in served over HTTP
on 127.0.0.1 by this process; the bot is the real `tiendo run` process (BotProcess). Each
person behaves like one: answers whatever question the bot shows last (a button press or a
text whose words say which report and field it is for), and when nothing comes back within
--silent seconds, sends the same input again. Meanwhile the process is killed K times (default
8) with SIGKILL, every other time at a random moment and otherwise right after someone presses
*Gửi*, and started again each time.

Printed, from what the people saw and what the database holds at the end:
- reports lost: a report someone sent (pressed Gửi for) that no stored revision holds;
- reports doubled: a report stored in more than one revision;
- revisions nobody made: stored revisions that are not one report as it was sent, and
  receipts whose revision number ("sửa lần N") is not the person's count of reports;
- answers silent: inputs that got nothing back within --silent seconds of the bot being up
  (time while it is down or starting does not count);
- answers misplaced: answers stored in a field they were not typed for.
All five must be 0.

    python bench/crash_soak.py                                   # SQLite, 30 people, 8 kills
    python bench/crash_soak.py --people 5 --kills 2
    python bench/crash_soak.py --database postgresql+asyncpg://postgres@127.0.0.1:5432/tiendo_soak

A PostgreSQL database given here is wiped (schema public): use one of your own.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import random
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402

from bench.report_flow import FIRST_USER, add_focal_points, example_database, open_tasks, report_bot  # noqa: E402
from bot.i18n import I18n  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.models import InboxUpdate, ProgressReport, ReportRevision, User  # noqa: E402
from tests.support.botapi import BotAPIServer, FakeBotAPI, SentMessage  # noqa: E402
from tests.support.process import BotProcess  # noqa: E402

# After the default people of bench/report_flow.py, so a database of both is not confused.
FIRST_PERSON = FIRST_USER + 10_000

# What each person answers.
STATUS = "in_progress"
PERCENT = "50%"
RECEIPT = re.compile(r"#(\d+)(?: \(sửa lần (\d+)\))?")


def _prefix(i18n: I18n, key: str) -> str:
    """The fixed start of a catalog text (before its first placeholder), as the stand-in
    shows it (plain text, no tags)."""
    params: dict[str, str] = {"\x01": ""}  # any parameter at all: the text is formatted
    while True:
        try:
            text = i18n.t("vi", key, **params)
            break
        except KeyError as missing:
            params[str(missing.args[0])] = "\x00"
    text = re.sub(r"<[^>]+>", "", text.split("\x00")[0])
    return text.strip()


_RevisionKey = tuple[int, int]


class Questions:
    """Which question a message of the bot asks, from its buttons or its words."""

    def __init__(self) -> None:
        i18n = I18n("vi")
        self.texts = [
            (_prefix(i18n, f"report.ask.{key}"), key.removesuffix("_required"))
            for key in ("results", "difficulties", "difficulties_required", "proposals", "target")
        ]
        self.texts += [
            (_prefix(i18n, "report.receipt"), "receipt"),
            (_prefix(i18n, "report.receipt_correction"), "receipt"),
            (_prefix(i18n, "report.expired"), "gone"),
            (_prefix(i18n, "report.cancelled"), "gone"),
            (_prefix(i18n, "report.draft_closed"), "gone"),
            (_prefix(i18n, "report.nothing_to_cancel"), "gone"),
        ]

    def of(self, message: SentMessage) -> str:
        data = [b.get("callback_data") or "" for b in message.buttons]
        for prefix, kind in (("rp:s:", "status"), ("rp:p:", "percent"), ("rp:ev:", "evidence")):
            if any(d.startswith(prefix) for d in data):
                return kind
        if any(d.endswith(":send") for d in data):
            return "confirm"
        # A question may come after a line of its own (asked again after a restart).
        text = (message.plain_text or "").strip()
        for prefix, kind in self.texts:
            if prefix and prefix in text:
                return kind
        return "other"


@dataclasses.dataclass
class Tally:
    reports_sent: int = 0
    answers: int = 0
    silent: int = 0
    wrong_receipts: int = 0
    repeated_receipts: int = 0
    unfinished: int = 0
    alerts: int = 0
    others: Counter[str] = dataclasses.field(default_factory=Counter)


class Person:
    """One focal point reporting on one task again and again until told to stop."""

    def __init__(self, soak: Soak, user_id: int, code: str) -> None:
        self.soak, self.user_id, self.code = soak, user_id, code
        self.api: FakeBotAPI = soak.server.api
        self.report = 0  # the report under way (0, 1, 2, ...)
        self.sent: list[int] = []  # the reports whose Gửi was pressed
        self.seen = 0  # messages of the bot read so far
        self.query: str | None = None  # the last button pressed (its callback query id)
        self.receipts: set[tuple[str, str]] = set()  # (report id, revision) of receipts read

    def text(self, field: str) -> str:
        return f"{field} của người {self.user_id} báo cáo {self.report}"

    async def run(self) -> None:
        last_input: tuple[str, Any] = ("text", f"/report {self.code}")
        await self._input(last_input)
        while True:
            message = await self._next(last_input)
            if message is None:
                return
            if isinstance(message, str):
                # A button answered with a notice (out of date) and no new question: the
                # person asks for the report again to see where it stands.
                self.soak.tally.alerts += 1
                last_input = ("text", f"/report {self.code}")
                await self._input(last_input)
                continue
            kind = self.soak.questions.of(message)
            answer = self._answer(kind, message)
            if answer is None:
                if kind == "receipt":
                    if self.soak.stopping.is_set():
                        return
                    self.report += 1
                    last_input = ("text", f"/report {self.code}")
                    await self._input(last_input)
                continue
            last_input = answer
            await self._input(answer)

    def _answer(self, kind: str, message: SentMessage) -> tuple[str, Any] | None:
        """What this person does on seeing the question (None: nothing, or handled)."""
        tally = self.soak.tally
        if kind == "status":
            return ("press", (message, message.button_data("Đang thực hiện")))
        if kind == "percent":
            return ("press", (message, message.button_data(PERCENT)))
        if kind in ("results", "difficulties", "proposals"):
            return ("text", self.text(kind))
        if kind == "target":
            return ("text", "5")
        if kind == "evidence":
            return ("text", "/skip")
        if kind == "confirm":
            if self.report not in self.sent:
                self.sent.append(self.report)
                tally.reports_sent += 1
            return ("press", (message, message.button_data("Gửi")))
        if kind == "receipt":
            found = RECEIPT.search(message.plain_text or "")
            revision = int(found.group(2) or 1) if found else 0
            if revision != len(self.sent):
                tally.wrong_receipts += 1
                self.soak.note(
                    f"receipt: person {self.user_id} got revision {revision} after {len(self.sent)} sent"
                    f" (report {self.report}): {(message.plain_text or '')[:80]}"
                )
            return None
        if kind == "gone":
            return ("text", f"/report {self.code}")
        tally.others[(message.plain_text or "")[:60]] += 1
        return None

    async def _input(self, what: tuple[str, Any]) -> None:
        kind, value = what
        self.soak.tally.answers += 1
        if kind == "text":
            self.query = None
            self.api.send_text(self.user_id, value)
            return
        message, data = value
        update = self.api.press_button(self.user_id, message.message_id, data, check=False)
        self.query = update["callback_query"]["id"]
        if data.endswith(":send"):
            self.soak.pressed_send.set()

    def _answered(self) -> list[SentMessage] | str | None:
        """New messages of the bot, or "alert" if the last press got only a notice."""
        messages = self.api.sent(self.user_id)
        if len(messages) > self.seen:
            return messages
        if self.query is not None:
            for answer in self.api.answered_callbacks:
                if answer.callback_query_id == self.query and answer.text:
                    return "alert"
        return None

    async def _next(self, last_input: tuple[str, Any]) -> SentMessage | str | None:
        """The bot's next message (or "alert"); after --silent seconds of nothing, the same
        input again."""
        while True:
            try:
                found = await self.api.wait_for_async(self._answered, self.soak.silent)
            except TimeoutError:
                if self.soak.recently_down():
                    continue  # the bot was down meanwhile: waiting for it is not silence
                if time.monotonic() > self.soak.give_up_at:
                    self.soak.tally.unfinished += 1
                    return None
                self.soak.tally.silent += 1
                self.soak.note(f"silent: person {self.user_id} after {last_input[0]} (report {self.report})")
                await self._input(last_input)
                continue
            self.query = None
            if isinstance(found, str):
                return found
            # Read everything that came; answer the last one (a person answers what they see).
            # A receipt read before, sent again, is passed over: the outbox sends a message
            # again when the process died after Telegram took it and before that was recorded
            # (README: at least once), and a person knows a receipt they have already had.
            fresh = [m for m in found[self.seen :] if not self._repeated_receipt(m)]
            self.seen = len(found)
            if fresh:
                return fresh[-1]

    def _repeated_receipt(self, message: SentMessage) -> bool:
        found = RECEIPT.search(message.plain_text or "")
        if found is None or self.soak.questions.of(message) != "receipt":
            return False
        key = (found.group(1), found.group(2) or "1")
        if key in self.receipts:
            self.soak.tally.repeated_receipts += 1
            self.soak.note(f"receipt sent again: person {self.user_id}, #{key[0]} revision {key[1]}")
            return True
        self.receipts.add(key)
        return False


class Soak:
    def __init__(self, args: argparse.Namespace, server: BotAPIServer, bot: BotProcess) -> None:
        self.args, self.server, self.bot = args, server, bot
        self.silent = args.silent
        self.tally = Tally()
        self.questions = Questions()
        self.stopping = asyncio.Event()
        self.pressed_send = asyncio.Event()
        self.kills: list[str] = []
        self.restart_seconds: list[float] = []
        self.notes: list[str] = []
        # A person still without an answer this long after the last kill gives up.
        self.give_up_at = float("inf")
        self.down = False
        self.up_since = time.monotonic()

    def recently_down(self) -> bool:
        """Whether the bot is down, or came up less than --silent seconds ago."""
        return self.down or time.monotonic() - self.up_since < self.silent

    def note(self, line: str) -> None:
        self.notes.append(line)
        if self.args.verbose:
            print(line, flush=True)

    async def killer(self, rng: random.Random) -> None:
        for number in range(self.args.kills):
            await asyncio.sleep(rng.uniform(1.0, self.args.kill_every))
            when = "random"
            if number % 2:
                self.pressed_send.clear()
                await self.pressed_send.wait()
                await asyncio.sleep(rng.uniform(0, 0.03))
                when = "after Gửi"
            started = time.monotonic()
            self.down = True
            await asyncio.to_thread(self.bot.restart)
            self.down, self.up_since = False, time.monotonic()
            self.restart_seconds.append(self.up_since - started)
            self.kills.append(when)
            self.note(f"kill {number + 1} ({when}), back in {self.restart_seconds[-1]:.1f} s")
        await asyncio.sleep(self.args.settle)
        self.stopping.set()
        self.give_up_at = time.monotonic() + 3 * self.silent


async def prepare(url: str, folder: Path, count: int) -> dict[int, str]:
    """The example database (bench/report_flow.py's) with `count` focal points, each on a task
    of their own (tasks without a numeric target first)."""
    _, db, services = await example_database(url, folder)
    try:
        tasks = await open_tasks(db)
        if len(tasks) < count:
            raise SystemExit(f"the example programme has {len(tasks)} open tasks: at most that many people")
        return await add_focal_points(services, tasks[:count], FIRST_PERSON, "Người ")
    finally:
        await db.dispose()


async def check(url: str, people: list[Person]) -> dict[str, int]:
    """Compare what the people sent with what the database holds."""
    db = Database(url)
    try:
        async with db.reader() as session:
            rows = (
                await session.execute(
                    select(User.telegram_id, ReportRevision.revision, ReportRevision.results)
                    .add_columns(ReportRevision.difficulties, ReportRevision.proposals)
                    .join(ProgressReport, ProgressReport.id == ReportRevision.report_id)
                    .join(User, User.id == ReportRevision.reporter_id)
                )
            ).all()
            inbox = Counter((await session.scalars(select(InboxUpdate.state))).all())
    finally:
        await db.dispose()
    by_person: dict[int, list[Any]] = {}
    for row in rows:
        by_person.setdefault(row.telegram_id, []).append(row)
    figures = Counter[str]()
    for person in people:
        stored = Counter[int]()
        for row in by_person.get(person.user_id, []):
            fields = {"results": row.results, "difficulties": row.difficulties, "proposals": row.proposals}
            numbers = set()
            for field, value in fields.items():
                if not value and field != "results":  # optional answers may be left out
                    continue
                found = re.fullmatch(rf"(\w+) của người {person.user_id} báo cáo (\d+)", value or "")
                if found is None or found.group(1) != field:
                    figures["misplaced"] += 1
                if found is not None:
                    numbers.add(int(found.group(2)))
            if len(numbers) != 1:
                figures["nobody"] += 1
                continue
            stored[numbers.pop()] += 1
        for report in person.sent:
            if stored[report] == 0:
                figures["lost"] += 1
            figures["doubled"] += max(stored[report] - 1, 0)
        figures["nobody"] += sum(count for report, count in stored.items() if report not in person.sent)
    figures["inbox_failed"] = inbox.get("failed", 0)
    figures["inbox_pending"] = inbox.get("pending", 0)
    return dict(figures)


async def soak(args: argparse.Namespace) -> dict[str, int]:
    logging.basicConfig(level=logging.WARNING)
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp, BotAPIServer() as server:
        folder = Path(tmp)
        url = args.database or f"sqlite+aiosqlite:///{folder / 'soak.db'}"
        users = await prepare(url, folder, args.people)
        for uid in users:
            server.api.user(uid, f"Người {uid}")
        bot = report_bot(server, folder, url, args.concurrent)
        started = time.monotonic()
        with bot:
            run = Soak(args, server, bot)
            people = [Person(run, uid, code) for uid, code in users.items()]
            killer = asyncio.create_task(run.killer(rng))
            await asyncio.gather(*(person.run() for person in people))
            await killer
            log_lines = list(bot.log)
        seconds = time.monotonic() - started
        figures = await check(url, people)
    tally = run.tally
    label = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    after_send = run.kills.count("after Gửi")
    print(
        f"\n== crash soak, {label}: {args.people} people, {len(run.kills)} kills"
        f" ({len(run.kills) - after_send} at random, {after_send} right after Gửi), {seconds:.0f} s =="
    )
    print(
        f"reports sent {tally.reports_sent}, answers {tally.answers};"
        f" restarts took {min(run.restart_seconds, default=0):.1f}"
        f"-{max(run.restart_seconds, default=0):.1f} s"
    )
    print(f"reports lost:            {figures.get('lost', 0)}")
    print(f"reports doubled:         {figures.get('doubled', 0)}")
    print(f"revisions nobody made:   {figures.get('nobody', 0) + tally.wrong_receipts}")
    print(f"answers silent:          {tally.silent}")
    print(f"answers misplaced:       {figures.get('misplaced', 0)}")
    print(
        f"inbox at the end: {figures.get('inbox_failed', 0)} failed,"
        f" {figures.get('inbox_pending', 0)} pending;"
        f" error lines in the bot's log: {sum('ERROR' in line or 'CRITICAL' in line for line in log_lines)}"
    )
    print(f"buttons answered with a notice only (out of date): {tally.alerts}")
    print(f"receipts sent again (the outbox's at-least-once, README): {tally.repeated_receipts}")
    for line in [line for line in log_lines if " ERROR " in line or " CRITICAL " in line][:3]:
        print(f"  the bot's log: {line.rstrip()[:300]}")
    if tally.others:
        print(f"other messages the people got: {dict(tally.others.most_common(5))}")
    if args.verbose:
        for line in run.notes:
            print(" ", line)
    return {
        "lost": figures.get("lost", 0),
        "doubled": figures.get("doubled", 0),
        "nobody": figures.get("nobody", 0) + tally.wrong_receipts,
        "silent": tally.silent,
        "misplaced": figures.get("misplaced", 0),
        "kills": len(run.kills),
        "receipts_again": tally.repeated_receipts,
        "reports": tally.reports_sent,
    }


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--people", type=int, default=30)
    parser.add_argument("--kills", type=int, default=8)
    parser.add_argument(
        "--kill-every", type=float, default=6.0, help="at most this many seconds between kills"
    )
    parser.add_argument(
        "--silent", type=float, default=20.0, help="seconds without an answer counted as silent"
    )
    parser.add_argument("--settle", type=float, default=3.0, help="seconds of reporting after the last kill")
    parser.add_argument("--concurrent", type=int, default=8, help="[telegram] concurrent_updates")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument(
        "--database", default="", help="a SQLAlchemy URL (default: SQLite in a temporary folder)"
    )
    parser.add_argument("--verbose", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    figures = asyncio.run(soak(parse(argv)))
    bad = sum(figures[key] for key in ("lost", "doubled", "nobody", "silent", "misplaced"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
