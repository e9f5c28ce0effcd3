"""Deadline nudges and period reminders, planned from the database into the outbox.

The planner is a pure function of the database and the clock, run by a repeating JobQueue job
and once at start-up; it keeps no state of its own. For each open task with a deadline that the
lead unit has not completed (ReportRepository.lead_progress, see status.py), it works out the latest
nudge offset that has come due — 7/3/1 working days before ([nudges] before_days), the day
itself (on_the_day), then every overdue_every_days working days after — and writes one outbox
row per recipient with the dedup key (task, deadline_version, offset, recipient). So planning
twice sends once; after downtime only the latest missed nudge goes out (several missed nudges
collapse into one), and pending rows that are no longer the latest (superseded, completed,
closed, deadline changed) are cancelled. Every send time is moved into the next working slot
(WorkCalendar), and the dispatcher holds these kinds back outside working hours.
"""

from __future__ import annotations

import html
import json
import re
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.config import Config, parse_clock, parse_weekday_clock
from bot.i18n import I18n
from bot.services.calendar import WorkCalendar
from bot.services.outbox import OutboxService, OutgoingMessage
from bot.services.periods import Period, PeriodRule
from storage.db import Database
from storage.repositories.nudges import NudgeOffset, NudgeRepository, NudgeTemplates
from storage.repositories.outbox import OutboxRepository
from storage.repositories.reports import ReportRepository

NUDGE = "nudge"
SNOOZED = "nudge_snooze"
PERIOD_REMINDER = "period_reminder"
UNREACHABLE = "unreachable"
# Kinds the dispatcher sends only inside working hours.
WORKING_HOURS_KINDS = (NUDGE, SNOOZED, PERIOD_REMINDER, UNREACHABLE)
# The snooze button's data; the dispatcher fills in the outbox row's id when it sends.
OUTBOX_ID = "{outbox_id}"
SNOOZE_DATA = "ng:snooze:" + OUTBOX_ID
PERIOD_LIST_LIMIT = 30
PERIOD_BUTTONS = 6
# Marks for what planning fills in SQL: a nudge's text inside its payload, and its task's id.
_TEXT_MARK = "@@text@@"
_TASK_MARK = "@@task@@"


@dataclass(frozen=True)
class Offset:
    name: str  # b7, b3, b1 (before), d0 (the day), o2, o4, ... (working days overdue)
    slot: datetime  # when it is due, inside working hours
    days_left: int = 0
    overdue: int = 0


@dataclass(frozen=True)
class Recipient:
    user_id: int
    telegram_id: int
    language: str | None
    name: str


@dataclass
class PlanResult:
    planned: int = 0  # new outbox rows
    cancelled: int = 0


def _split(rendered: str) -> list[str]:
    """A text rendered with \\x01field\\x01 marks: literal pieces at even indexes, field names
    at odd ones."""
    return re.split(r"\x01(\w+)\x01", rendered)


def _version_of(key: str) -> tuple[int, int] | None:
    """(task_id, deadline_version) from nudge:<task>:v<ver>:<offset>:<user> or
    snooze:<task>:v<ver>:<offset>:<outbox id>."""
    parts = key.split(":")
    try:
        return int(parts[1]), int(parts[2].removeprefix("v"))
    except (IndexError, ValueError):
        return None


class NudgeService:
    def __init__(self, config: Config, db: Database, clock: Clock, i18n: I18n,
                 calendar: WorkCalendar, periods: PeriodRule, outbox: OutboxService) -> None:
        self.config = config
        self.settings = config.nudges
        self.db = db
        self.clock = clock
        self.i18n = i18n
        self.calendar = calendar
        self.periods = periods
        self.outbox = outbox
        self.send_at = parse_clock(self.settings.send_at)
        self._nudge_templates: dict[str, NudgeTemplates] | None = None

    # ------------------------------------------------------------------ offsets

    def _slot(self, day: date) -> datetime:
        return self.calendar.next_working_slot(self.calendar.at(day, self.send_at))

    def current_offset(self, deadline: date, now: datetime) -> Offset | None:
        """The latest nudge for this deadline whose time has come, or None."""
        cal, s = self.calendar, self.settings
        best: Offset | None = None

        def consider(offset: Offset) -> None:
            nonlocal best
            if offset.slot <= now and (best is None or offset.slot >= best.slot):
                best = offset

        for days in sorted(set(s.before_days), reverse=True):
            consider(Offset(f"b{days}", self._slot(cal.add_working_days(deadline, -days)),
                            days_left=days))
        if s.on_the_day:
            consider(Offset("d0", self._slot(deadline)))
        today = cal.local(now).date()
        every = s.overdue_every_days
        rounds = cal.working_days_between(deadline, today) // every
        for n in (rounds, rounds - 1):
            if n >= 1:
                days = n * every
                offset = Offset(f"o{days}", self._slot(cal.add_working_days(deadline, days)),
                                overdue=days)
                if offset.slot <= now:
                    consider(offset)
                    break
        return best

    # ------------------------------------------------------------------ planning

    async def plan(self, task_ids: Sequence[int] | None = None) -> PlanResult:
        """Write the due deadline nudges and cancel pending ones no longer wanted.

        Set-based: the current offset is worked out once per distinct deadline (the working
        calendar lives in Python), and the new outbox rows are written by one INSERT ... SELECT
        that renders their text in SQL from the catalog's templates: no Python object per row,
        so a fresh install's first run over a large programme stays quick. Python reads only
        the ids of the reported tasks with a new nudge, for their report history (completion
        and the last percent).
        """
        now = self.clock.now()
        s = self.settings
        result = PlanResult()
        async with self.db.transaction() as session:
            repo = NudgeRepository(session)
            offsets = {deadline: self.current_offset(deadline, now)
                       for deadline in await repo.deadlines(task_ids)}
            await repo.begin_plan([self._nudge_offset(deadline, offset)
                                   for deadline, offset in offsets.items() if offset is not None])
            # A task without reports is neither completed nor has a percent to show.
            tasks = await repo.reported_nudge_tasks(s.include_coordinating, task_ids)
            done, percent = (await self._progress(session, now, tasks)) if tasks else (set(), {})
            # Cancel first: what is inserted now is wanted by construction.
            result.cancelled = await repo.cancel(
                await self._unwanted(repo, task_ids, now, offsets))
            progress = {task_id: (percent.get(task_id), task_id in done)
                        for task_id in done | percent.keys()}
            result.planned = await repo.insert_nudges(
                NUDGE, self._templates(), self.i18n.default, progress,
                s.include_coordinating, task_ids, now)
            await repo.end_plan()
        return result

    def _nudge_offset(self, deadline: date, offset: Offset) -> NudgeOffset:
        """What the nudge rows of this deadline's current offset need."""
        escalate = offset.overdue > 0 and offset.overdue >= self.settings.escalate_after_days
        kind = "overdue" if offset.overdue else "before" if offset.days_left else "on_the_day"
        return NudgeOffset(deadline, offset.name, escalate, kind,
                           offset.overdue or offset.days_left, deadline.strftime("%d/%m/%Y"),
                           offset.slot)

    def _templates(self) -> dict[str, NudgeTemplates]:
        """The nudge texts and payload of each language, as templates the repository fills in
        SQL: rendered through the catalog (as _nudge_text and _buttons render one message)
        with marked fields, then split at the marks."""
        if self._nudge_templates is None:
            marks = {name: f"\x01{name}\x01"
                     for name in ("code", "title", "unit", "deadline", "days", "percent")}
            t = self.i18n.t
            templates = {}
            for language in self.i18n.languages:
                texts = {kind: _split(t(language, f"nudges.{kind}", **marks))
                         for kind in ("before", "on_the_day", "overdue", "escalation")}
                message = OutgoingMessage("", NUDGE, 0, text=_TEXT_MARK,
                                          buttons=self._buttons(language, _TASK_MARK))
                payload = (json.dumps(message.payload())
                           .replace(json.dumps(_TEXT_MARK), "\x01text\x01")
                           .replace(_TASK_MARK, "\x01task\x01"))
                templates[language] = NudgeTemplates(
                    texts, _split(t(language, "nudges.percent", percent=marks["percent"])),
                    t(language, "nudges.no_report"), _split(payload))
            self._nudge_templates = templates
        return self._nudge_templates

    async def _unwanted(self, repo: NudgeRepository, task_ids: Sequence[int] | None,
                        now: datetime, offsets: dict[date, Offset | None]) -> list[int]:
        """Pending nudges (and snoozed repeats) that are no longer the latest wanted one: the
        task was closed or completed, its deadline changed, or a later offset came due."""
        pending = await repo.pending((NUDGE, SNOOZED), task_ids)
        tasks = {task_id for _, _, _, task_id in pending if task_id is not None}
        states = await repo.task_states(tasks)
        done, _ = await self._progress(repo.session, now, tasks)
        stale = []
        for row_id, key, _kind, task_id in pending:
            parsed = _version_of(key)
            state = states.get(task_id) if task_id is not None else None
            wanted = (parsed is not None and state is not None and not state[2]
                      and state[0] is not None and task_id not in done
                      and parsed[1] == state[1])
            # A snoozed repeat goes the way of its nudge: a later offset supersedes both.
            if wanted:
                assert state is not None and state[0] is not None
                if state[0] not in offsets:
                    offsets[state[0]] = self.current_offset(state[0], now)
                current = offsets[state[0]]
                wanted = current is not None and key.split(":")[3] == current.name
            if not wanted:
                stale.append(row_id)
        return stale

    async def on_task_changed(self, task_id: int) -> PlanResult:
        """Re-plan one task after it was completed, closed or its deadline changed: what is
        pending for it and no longer wanted is cancelled."""
        return await self.plan([task_id])

    @staticmethod
    async def _progress(session: AsyncSession, now: datetime, task_ids: Collection[int]
                        ) -> tuple[set[int], dict[int, int]]:
        """Tasks the lead unit has completed (status.py), and the last percent it reported."""
        lead = await ReportRepository(session).lead_progress(now, task_ids)
        return ({task_id for task_id, p in lead.items() if p.completed},
                {task_id: p.percent for task_id, p in lead.items()})

    @staticmethod
    def _people(rows: Sequence[Any]) -> tuple[dict[int, list[Recipient]],
                                              dict[int, list[Recipient]]]:
        """Focal points and leaders by unit."""
        focal: dict[int, list[Recipient]] = defaultdict(list)
        leaders: dict[int, list[Recipient]] = defaultdict(list)
        for unit_id, role, user_id, telegram_id, language, first_name in rows:
            person = Recipient(user_id, telegram_id, language, first_name or "")
            (focal if role == "focal" else leaders)[unit_id].append(person)
        return focal, leaders

    def _nudge_text(self, language: str | None, offset: Offset, escalated: bool,
                    fields: dict[str, str], percent: int | None) -> str:
        t = self.i18n.t
        shown = (t(language, "nudges.no_report") if percent is None
                 else t(language, "nudges.percent", percent=percent))
        if escalated:
            return t(language, "nudges.escalation", days=offset.overdue, percent=shown, **fields)
        if offset.overdue:
            return t(language, "nudges.overdue", days=offset.overdue, percent=shown, **fields)
        if offset.days_left:
            return t(language, "nudges.before", days=offset.days_left, percent=shown, **fields)
        return t(language, "nudges.on_the_day", percent=shown, **fields)

    def _buttons(self, language: str | None, task_id: int | str
                 ) -> list[list[tuple[str, str]]]:
        return [[(self.i18n.t(language, "nudges.report_now"), f"rp:start:{task_id}"),
                 (self.i18n.t(language, "nudges.snooze"), SNOOZE_DATA)]]

    # ------------------------------------------------------------------ period reminders

    def due_reminder(self, now: datetime) -> tuple[Period, int, datetime] | None:
        """The latest period reminder of the current period whose time has come:
        (period, which schedule entry, when)."""
        period = self.periods.period_at(now)
        today = self.calendar.local(now).date()
        best: tuple[Period, int, datetime] | None = None
        for index, text in enumerate(self.settings.period_reminders):
            weekday, at = parse_weekday_clock(text)
            moment = self.calendar.at(today - timedelta(days=(today.weekday() - weekday) % 7), at)
            if moment > now:
                moment -= timedelta(days=7)
            slot = self.calendar.next_working_slot(moment)
            # Caught up after downtime on the same day only: a reminder days late is noise.
            if (moment > period.start and slot <= now
                    and self.calendar.local(slot).date() == today
                    and (best is None or slot >= best[2])):
                best = (period, index, slot)
        return best

    async def plan_period_reminders(self) -> PlanResult:
        """One message per focal point listing the active tasks their unit has not reported on
        this period; superseded pending reminders are cancelled."""
        now = self.clock.now()
        result = PlanResult()
        due = self.due_reminder(now)
        async with self.db.transaction() as session:
            repo = NudgeRepository(session)
            keys: set[str] = set()
            rows: list[dict[str, Any]] = []
            if due is not None:
                period, index, slot = due
                keys, rows = await self._period_rows(repo, period, index, slot, now)
            result.planned = await OutboxRepository(session).add_unique(rows)
            stale = [row_id for row_id, key, _, _ in await repo.pending((PERIOD_REMINDER,))
                     if key not in keys]
            result.cancelled = await repo.cancel(stale)
        return result

    async def _period_rows(self, repo: NudgeRepository, period: Period, index: int,
                           slot: datetime, now: datetime
                           ) -> tuple[set[str], list[dict[str, Any]]]:
        """The keys of the reminders wanted now, and the rows of those not in the outbox yet
        (the planning job runs every few minutes on reminder days: a reminder already planned
        is not rendered again)."""
        tasks = await repo.open_task_leads()
        done, _ = await self._progress(repo.session, now, [task_id for task_id, _ in tasks])
        focal, _ = self._people(await repo.unit_people())
        units = await repo.units()
        reported = await repo.reported(period.key)
        coordinating: dict[int, list[int]] = defaultdict(list)
        if self.settings.include_coordinating:
            for task_id, unit_id in await repo.coordinating():
                coordinating[task_id].append(unit_id)
        owed_ids: dict[int, list[tuple[int, int]]] = defaultdict(list)
        people: dict[int, Recipient] = {}
        for task_id, lead in tasks:
            if task_id in done:
                continue
            for unit_id in (lead, *coordinating.get(task_id, ())):
                if (task_id, unit_id) in reported:
                    continue
                for person in focal.get(unit_id, ()):
                    people[person.user_id] = person
                    owed_ids[person.user_id].append((task_id, unit_id))
        key_of = {user_id: f"period:{period.key}:{index}:{user_id}" for user_id in owed_ids}
        planned = await OutboxRepository(repo.session).present_keys(key_of.values())
        owed_ids = {user_id: pairs for user_id, pairs in owed_ids.items()
                    if key_of[user_id] not in planned}
        # Only the listed tasks and those with a button are named: read just their titles.
        shown: set[int] = set()
        for pairs in owed_ids.values():
            shown.update(task_id for task_id, _ in pairs[:PERIOD_LIST_LIMIT])
            shown.update(list(dict.fromkeys(task_id for task_id, _ in pairs))[:PERIOD_BUTTONS])
        titles = await repo.titles(shown)
        owed = {user_id: [(task_id, *titles.get(task_id, ("", "")), unit_id)
                          for task_id, unit_id in items]
                for user_id, items in owed_ids.items()}
        cutoff = self.calendar.local(period.end).strftime("%H:%M %d/%m/%Y")
        rows = []
        for user_id, items in owed.items():
            person = people[user_id]
            lang = person.language
            lines = [self.i18n.t(lang, "nudges.period_intro", period=period.key, cutoff=cutoff)]
            lines += [self.i18n.t(lang, "nudges.period_item", code=html.escape(code),
                                  title=html.escape(title), unit=html.escape(units.get(unit, "")))
                      for _, code, title, unit in items[:PERIOD_LIST_LIMIT]]
            if len(items) > PERIOD_LIST_LIMIT:
                lines.append(self.i18n.t(lang, "nudges.period_more",
                                         count=len(items) - PERIOD_LIST_LIMIT))
            seen = dict.fromkeys((task_id, code) for task_id, code, _, _ in items)
            buttons = [[(self.i18n.t(lang, "nudges.report_task", code=code), f"rp:start:{task_id}")]
                       for task_id, code in list(seen)[:PERIOD_BUTTONS]]
            text = "\n".join(lines)
            message = OutgoingMessage(f"period:{period.key}:{index}:{user_id}", PERIOD_REMINDER,
                                      person.telegram_id, text=text[:4096], buttons=buttons,
                                      user_id=user_id, due_at=slot)
            rows.append(OutboxService.row(message, now))
        return set(key_of.values()), rows

    # ------------------------------------------------------------------ snooze, unreachable

    async def snooze(self, outbox_id: int, telegram_id: int) -> datetime | None:
        """Send this nudge again one working day later. None when the message is not a nudge
        sent to this person (forged or foreign button data)."""
        now = self.clock.now()
        async with self.db.transaction() as session:
            repo = NudgeRepository(session)
            row = await repo.message(outbox_id)
            if (row is None or row.kind not in (NUDGE, SNOOZED) or row.chat_id != telegram_id
                    or row.state != "sent" or row.task_id is None):
                return None
            parsed = _version_of(row.dedup_key)
            if parsed is None:
                return None
            when = self.calendar.postpone(now, 1)
            offset = row.dedup_key.split(":")[3]
            message = OutgoingMessage(
                f"snooze:{row.task_id}:v{parsed[1]}:{offset}:{row.id}", SNOOZED, row.chat_id,
                user_id=row.user_id, task_id=row.task_id, due_at=when)
            values = OutboxService.row(message, now) | {"payload": dict(row.payload)}
            if not await OutboxRepository(session).add_unique([values]):
                # Pressed twice: the first snooze stands.
                existing = await repo.by_key(message.key)
                if existing is not None:
                    when = existing.due_at
            return when

    async def notify_unreachable(self, user_id: int) -> int:
        """Tell the leaders of the units where this person is a focal point, once per time
        they become unreachable."""
        now = self.clock.now()
        async with self.db.transaction() as session:
            repo = NudgeRepository(session)
            user = await repo.user(user_id)
            if user is None:
                return 0
            since = user["unreachable_since"]
            _, leaders = self._people(await repo.unit_people())
            units = await repo.units()
            rows = []
            for unit_id in await repo.units_of(user_id):
                for leader in leaders.get(unit_id, ()):
                    if leader.user_id == user_id:
                        continue
                    text = self.i18n.t(leader.language, "nudges.unreachable",
                                       name=html.escape(user["name"]),
                                       unit=html.escape(units.get(unit_id, "")))
                    stamp = since.strftime("%Y%m%d%H%M%S") if since else "0"
                    message = OutgoingMessage(
                        f"unreachable:{user_id}:{stamp}:{unit_id}:{leader.user_id}", UNREACHABLE,
                        leader.telegram_id, text=text, user_id=leader.user_id,
                        due_at=self.calendar.next_working_slot(now))
                    rows.append(OutboxService.row(message, now))
            return await OutboxRepository(session).add_unique(rows)
