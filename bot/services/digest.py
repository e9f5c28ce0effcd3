"""The consolidated report as a service: build it on demand, and send it on schedule.

The scheduled digest goes out once per period and scope: the files are written first, then one
transaction records the run (report_runs is unique on period and scope) and queues every
message in the outbox. A restart finds the run and sends nothing again; a bot that was down
when the schedule passed finds no run and catches up.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.exc import IntegrityError

from bot.clock import Clock
from bot.config import Config, parse_weekday_clock
from bot.i18n import I18n
from bot.services.outbox import OutgoingMessage
from bot.services.periods import Period, PeriodRule, previous
from bot.services.programme import ProgrammeDirectory, ProgrammeError, ProgrammeInfo, programme_rule
from bot.services.report_data import ProgrammeRef, ReportBuilder, ReportData
from bot.services.report_render import ReportRenderer, write_report_files
from bot.services.report_worker import Rendered, render_apart
from storage.db import Database
from storage.repositories.digest import DigestRepository, Recipient
from storage.repositories.outbox import OutboxRepository

log = logging.getLogger(__name__)

ATTACHED = ("png", "docx", "xlsx")
CAPTION = {"png": "chart_caption", "docx": "docx_caption", "xlsx": "xlsx_caption"}  # catalog keys, digest.*
PERIOD_KEY = re.compile(r"^\d{4}-(W\d{2}|\d{2}|Q[1-4])$")


def programme_ref(programme: ProgrammeInfo | None) -> ProgrammeRef | None:
    if programme is None:
        return None
    return ProgrammeRef(
        programme.code,
        programme.short_code,
        programme.title,
        programme.decision,
        programme.decision_date,
        programme.issuer,
        programme.state,
        programme.closed_at,
        programme.closing,
    )


def split_request(args: list[str]) -> tuple[str | None, str | None]:
    """`/digest [CODE] [PERIOD]` in either order: (programme code, period key)."""
    code = key = None
    for arg in args[:2]:
        if PERIOD_KEY.match(arg):
            key = arg
        else:
            code = arg
    return code, key


@dataclass(frozen=True)
class DigestFiles:
    messages: list[str]
    png: Path
    docx: Path
    xlsx: Path


def last_occurrence(schedule: str, now: datetime, config: Config) -> datetime:
    """The latest moment at or before now matching 'weekday HH:MM' in the local time zone."""
    weekday, clock = parse_weekday_clock(schedule)
    local = now.astimezone(config.tz)
    day = local.date() - timedelta(days=(local.weekday() - weekday) % 7)
    moment = datetime.combine(day, clock, tzinfo=config.tz)
    if moment > local:
        moment = datetime.combine(day - timedelta(days=7), clock, tzinfo=config.tz)
    return moment.astimezone(now.tzinfo)


def closed_period(rule: PeriodRule, moment: datetime) -> Period:
    """The latest period whose cut-off is at or before the moment."""
    period = rule.period_at(moment)
    return period if period.end <= moment else previous(rule, period)


class DigestService:
    def __init__(self, config: Config, db: Database, clock: Clock, i18n: I18n, periods: PeriodRule) -> None:
        self.config = config
        self.db = db
        self.clock = clock
        self.i18n = i18n
        self.periods = periods
        self.builder = ReportBuilder(db, periods, config.tz)
        self.programmes = ProgrammeDirectory(db, clock, config.tz)

    def renderer(self, language: str | None = None) -> ReportRenderer:
        return ReportRenderer(self.config, self.i18n, language)

    def rule(self, programme: ProgrammeInfo | None = None) -> PeriodRule:
        return programme_rule(programme, self.config) if programme else self.periods

    def period(self, key: str | None = None, programme: ProgrammeInfo | None = None) -> Period:
        """The named period, or the current one (a closed programme's: the one it closed in);
        ValueError for a malformed key."""
        rule = self.rule(programme)
        if key:
            return rule.by_key(key)
        now = self.clock.now()
        if programme is not None and programme.closed_at is not None:
            now = min(now, programme.closed_at)
        return rule.period_at(now)

    async def programme(self, code: str | None = None) -> ProgrammeInfo | None:
        """The programme a report is asked for (by code, or the only active one); None in a
        database without programmes. ProgrammeError when the code is unknown or several
        programmes are active and none was named."""
        try:
            return await self.programmes.choose(code)
        except ProgrammeError as exc:
            if exc.key == "programme.none" and code is None:
                return None
            raise

    async def build(
        self, period: Period, unit_code: str | None = None, programme: ProgrammeInfo | None = None
    ) -> ReportData:
        """The report for the period (of one programme), as of now when the period is open."""
        builder = (
            self.builder
            if programme is None
            else ReportBuilder(self.db, self.rule(programme), self.config.tz)
        )
        return await builder.build(
            period,
            unit_code,
            as_of=self.clock.now(),
            programme=programme_ref(programme),
            programme_id=programme.id if programme else None,
        )

    def write_files(
        self, data: ReportData, folder: Path, language: str | None = None, formats: tuple[str, ...] = ATTACHED
    ) -> dict[str, Path]:
        """The files of a report rendered in this process (the command line's `tiendo demo`)."""
        return write_report_files(self.renderer(language), data, folder, formats)

    async def render(self, data: ReportData, folder: Path, language: str | None = None) -> Rendered:
        """The chat digest and its files (chart, Word, Excel, written into folder), rendered in a
        child process (bot/services/report_worker.py): the bot never imports what renders them."""
        return await render_apart(self.config, data, folder, language or self.config.bot.language, ATTACHED)

    def captions(self, language: str, period_name: str) -> dict[str, str]:
        """The caption of each attached file."""
        return {fmt: self.i18n.t(language, f"digest.{CAPTION[fmt]}", period=period_name) for fmt in ATTACHED}

    async def _messages(
        self, key: str, data: ReportData, recipients: list[Recipient], folder: Path
    ) -> list[OutgoingMessage]:
        """The digest text, then chart, Word and Excel, for each recipient in their language."""
        out: list[OutgoingMessage] = []
        by_language: dict[str, list[Recipient]] = {}
        for recipient in recipients:
            by_language.setdefault(recipient.language or self.config.bot.language, []).append(recipient)
        for language, group in by_language.items():
            rendered = await self.render(data, folder / language, language)
            captions = self.captions(language, rendered.period_name)
            for recipient in group:
                base = f"digest:{key}:{recipient.chat_id}"
                for i, text in enumerate(rendered.texts):
                    out.append(
                        OutgoingMessage(
                            f"{base}:text{i}",
                            "digest",
                            recipient.chat_id,
                            text=text,
                            user_id=recipient.user_id,
                        )
                    )
                for fmt in ATTACHED:
                    path = str(rendered.files[fmt])
                    out.append(
                        OutgoingMessage(
                            f"{base}:{fmt}",
                            "digest",
                            recipient.chat_id,
                            text=captions[fmt],
                            user_id=recipient.user_id,
                            photo=path if fmt == "png" else None,
                            document=path if fmt != "png" else None,
                        )
                    )
        return out

    async def _queue_run(
        self, period: Period, scope: str, data: ReportData | None, recipients: list[Recipient]
    ) -> bool:
        now = self.clock.now()
        folder = self.config.data_path / "reports" / period.key / scope.replace(":", "-")
        messages = (
            [] if data is None else await self._messages(f"{period.key}:{scope}", data, recipients, folder)
        )
        rows: list[dict[str, object]] = [
            {
                "dedup_key": m.key[:255],
                "kind": m.kind,
                "chat_id": m.chat_id,
                "user_id": m.user_id,
                "task_id": None,
                "payload": m.payload(),
                "due_at": now,
                "state": "pending",
                "attempts": 0,
                "created_at": now,
            }
            for m in messages
        ]
        try:
            async with self.db.transaction() as session:
                repo = DigestRepository(session)
                if await repo.run_exists(period.key, scope):
                    return False
                await repo.add_run(
                    period.key, scope, now, {"recipients": len(recipients), "messages": len(rows)}
                )
                await OutboxRepository(session).add_unique(rows)
        except IntegrityError:
            return False  # another process recorded this run first
        log.info("digest %s %s queued for %s recipients", period.key, scope, len(recipients))
        return True

    async def due_period(self) -> Period:
        occurrence = last_occurrence(self.config.digest.schedule, self.clock.now(), self.config)
        return closed_period(self.periods, occurrence)

    async def run_due(self) -> list[str]:
        """Queue the scheduled digest for the period the last schedule closed, unless done.

        One digest per active programme, not one message with a part per programme: each
        programme is reported against its own decision, and a manager forwards its Word report
        to whoever that decision's report is owed, so its files must not mix programmes; a
        ministry has a handful of programmes active at once, so a handful of messages. With
        one active programme the scopes are "all" and "unit:<code>" as before; with several,
        "<short code>:all" and "<short code>:unit:<code>". Returns the scopes queued now."""
        active = await self.programmes.all(active_only=True)
        if len(active) <= 1:
            return await self._run_programme(active[0] if active else None, "")
        queued = []
        for programme in active:
            queued += await self._run_programme(programme, f"{programme.short_code}:")
        return queued

    async def _run_programme(self, programme: ProgrammeInfo | None, prefix: str) -> list[str]:
        rule = self.rule(programme)
        period = closed_period(
            rule, last_occurrence(self.config.digest.schedule, self.clock.now(), self.config)
        )
        async with self.db.reader() as session:
            repo = DigestRepository(session)
            done = await repo.scopes_done(period.key)
            done_all = f"{prefix}all" in done
            recipients = [] if done_all else await repo.programme_recipients()
            leaders = await repo.leaders_by_unit()
        pending_units = {
            code: people for code, people in leaders.items() if f"{prefix}unit:{code}"[:48] not in done
        }
        builder = ReportBuilder(self.db, rule, self.config.tz)
        ref, programme_id = programme_ref(programme), programme.id if programme else None
        queued = []
        if not done_all:
            # With nobody to send it to, the run is recorded without building the report.
            data = (
                await builder.build(period, programme=ref, programme_id=programme_id) if recipients else None
            )
            if await self._queue_run(period, f"{prefix}all", data, recipients):
                queued.append(f"{prefix}all")
        for code, people in pending_units.items():
            data = await builder.build(period, code, programme=ref, programme_id=programme_id)
            # Several programmes: a unit without tasks in this one gets no empty report.
            if prefix and not data.tasks:
                continue
            scope = f"{prefix}unit:{code}"[:48]
            if await self._queue_run(period, scope, data, people):
                queued.append(scope)
        return queued

    async def subscribe(self, telegram_id: int) -> bool | None:
        """Subscribe; None if the user is unknown, False if already subscribed."""
        async with self.db.transaction() as session:
            repo = DigestRepository(session)
            user_id = await repo.user_id(telegram_id)
            if user_id is None:
                return None
            if await repo.subscribed(user_id):
                return False
            repo.subscribe(user_id, self.clock.now())
            return True

    async def unsubscribe(self, telegram_id: int) -> bool:
        async with self.db.transaction() as session:
            repo = DigestRepository(session)
            user_id = await repo.user_id(telegram_id)
            if user_id is None or not await repo.subscribed(user_id):
                return False
            await repo.unsubscribe(user_id)
            return True
