"""The consolidated report as a service: build it on demand, and send it on schedule.

The scheduled digest goes out once per period and scope: the files are written first, then one
transaction records the run (report_runs is unique on period and scope) and queues every
message in the outbox. A restart finds the run and sends nothing again; a bot that was down
when the schedule passed finds no run and catches up.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.exc import IntegrityError

from bot.clock import Clock
from bot.config import Config, parse_weekday_clock
from bot.i18n import I18n
from bot.services.outbox import OutgoingMessage
from bot.services.periods import Period, PeriodRule, previous
from bot.services.report_data import ReportBuilder, ReportData
from bot.services.report_render import SUFFIX, ReportRenderer
from storage.db import Database
from storage.repositories.digest import DigestRepository, Recipient
from storage.repositories.outbox import OutboxRepository

log = logging.getLogger(__name__)

ATTACHED = ("png", "docx", "xlsx")


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

    def renderer(self, language: str | None = None) -> ReportRenderer:
        return ReportRenderer(self.config, self.i18n, language)

    def period(self, key: str | None = None) -> Period:
        """The named period, or the current one; ValueError for a malformed key."""
        return self.periods.by_key(key) if key else self.periods.period_at(self.clock.now())

    async def build(self, period: Period, unit_code: str | None = None) -> ReportData:
        """The report for the period, as of now when the period is still open."""
        return await self.builder.build(period, unit_code, as_of=self.clock.now())

    def write_files(
        self, data: ReportData, folder: Path, language: str | None = None, formats: tuple[str, ...] = ATTACHED
    ) -> dict[str, Path]:
        folder.mkdir(parents=True, exist_ok=True)
        renderer = self.renderer(language)
        stem = f"tiendo-{data.period}" + (f"-{data.scope.code}" if data.scope else "")
        paths = {}
        for fmt in formats:
            path = folder / f"{stem}.{SUFFIX[fmt]}"
            tmp = path.with_suffix(path.suffix + ".tmp")
            tmp.write_bytes(renderer.render(data, fmt))
            tmp.replace(path)
            paths[fmt] = path
        return paths

    def _messages(
        self, key: str, data: ReportData, recipients: list[Recipient], folder: Path
    ) -> list[OutgoingMessage]:
        """The digest text, then chart, Word and Excel, for each recipient in their language."""
        out: list[OutgoingMessage] = []
        by_language: dict[str, list[Recipient]] = {}
        for recipient in recipients:
            by_language.setdefault(recipient.language or self.config.bot.language, []).append(recipient)
        for language, group in by_language.items():
            renderer = self.renderer(language)
            texts = renderer.telegram(data)
            files = self.write_files(data, folder / language, language)
            name = renderer.period_name(data)
            captions = {
                "png": renderer.t("digest.chart_caption", period=name),
                "docx": renderer.t("digest.docx_caption", period=name),
                "xlsx": renderer.t("digest.xlsx_caption", period=name),
            }
            for recipient in group:
                base = f"digest:{key}:{recipient.chat_id}"
                for i, text in enumerate(texts):
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
                    path = str(files[fmt])
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
        self, period: Period, scope: str, data: ReportData, recipients: list[Recipient]
    ) -> bool:
        now = self.clock.now()
        folder = self.config.data_path / "reports" / period.key / scope.replace(":", "-")
        # Rendering Word, Excel and the chart is CPU work: keep the bot's event loop answering.
        messages = await asyncio.to_thread(self._messages, f"{period.key}:{scope}", data, recipients, folder)
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

        Returns the scopes queued now ("all", "unit:<code>")."""
        period = await self.due_period()
        async with self.db.reader() as session:
            repo = DigestRepository(session)
            done = await repo.scopes_done(period.key)
            done_all = "all" in done
            recipients = [] if done_all else await repo.programme_recipients()
            leaders = await repo.leaders_by_unit()
            pending_units = {code: people for code, people in leaders.items() if f"unit:{code}" not in done}
        queued = []
        if not done_all:
            data = await self.builder.build(period)
            if await self._queue_run(period, "all", data, recipients):
                queued.append("all")
        for code, people in pending_units.items():
            data = await self.builder.build(period, code)
            if await self._queue_run(period, f"unit:{code}", data, people):
                queued.append(f"unit:{code}")
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
