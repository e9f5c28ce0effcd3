"""Deadline nudges and period reminders, planned from the database into the outbox, rendered
when they are sent.

The planner is a pure function of the database and the clock, run by a repeating JobQueue job
and once at start-up; it keeps no state of its own. For each open task with a deadline that the
lead unit has not completed (ReportRepository.completed, see status.py), it works out the latest
nudge offset that has come due — 7/3/1 working days before ([nudges] before_days), the day
itself (on_the_day), then every overdue_every_days working days after — and writes one outbox
row per recipient with the dedup key (task, deadline_version, offset, recipient). So planning
twice sends once; after downtime only the latest missed nudge goes out (several missed nudges
collapse into one), and pending rows that are no longer the latest (superseded, completed,
closed, deadline changed) are cancelled. Every send time is moved into the next working slot
(WorkCalendar), and the dispatcher holds these kinds back outside working hours.

Planning writes no text: a nudge row holds its task, deadline version, offset and recipient,
and a period reminder its period. The dispatcher asks render() for the message when it sends
it, so the text comes from the catalog in the recipient's language with the task's code, title,
deadline and last percent as they are then; a nudge whose task was closed, completed, deleted
or given a new deadline in the meantime, or a reminder with nothing left to report, is not
sent (render returns None and the dispatcher cancels the row). Planning is then a few set-based
statements whatever the number of tasks (storage/repositories/nudges.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from bot.clock import Clock
from bot.config import Config, parse_clock, parse_weekday_clock
from bot.i18n import I18n
from bot.services.calendar import WorkCalendar
from bot.services.outbox import Button, ClaimedMessage, OutboxService, OutgoingMessage, Wording
from bot.services.periods import Period, PeriodRule
from storage.db import Database
from storage.repositories.nudges import NudgeOffset, NudgeRepository
from storage.repositories.outbox import OutboxRepository
from storage.repositories.reports import ReportRepository

NUDGE = "nudge"
SNOOZED = "nudge_snooze"
PERIOD_REMINDER = "period_reminder"
UNREACHABLE = "unreachable"
# Kinds the dispatcher sends only inside working hours.
WORKING_HOURS_KINDS = (NUDGE, SNOOZED, PERIOD_REMINDER, UNREACHABLE)
# Kinds planned without their text: the dispatcher has render() write it when it sends them.
RENDERED_AT_SEND = (NUDGE, SNOOZED, PERIOD_REMINDER)
# The snooze button's data; the dispatcher fills in the outbox row's id when it sends.
OUTBOX_ID = "{outbox_id}"
PERIOD_LIST_LIMIT = 30
PERIOD_BUTTONS = 6


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


def _payload(text: str, buttons: Sequence[Sequence[Button]]) -> dict[str, Any]:
    """A message's payload as the dispatcher sends it (OutgoingMessage.payload)."""
    return OutgoingMessage("", "", 0, text=text, buttons=buttons).payload()


def _offset_named(name: str) -> tuple[int, int] | None:
    """(days_left, overdue) of an offset's name (b7, d0, o4); None if it is not one."""
    kind, days = name[:1], name[1:]
    if not days.isdigit() or kind not in ("b", "d", "o"):
        return None
    return (int(days), 0) if kind == "b" else (0, int(days)) if kind == "o" else (0, 0)


class NudgeService:
    def __init__(
        self,
        config: Config,
        db: Database,
        clock: Clock,
        i18n: I18n,
        calendar: WorkCalendar,
        periods: PeriodRule,
        outbox: OutboxService,
        word: Wording,
    ) -> None:
        self.word = word  # the text of every nudge and notice (see Wording)
        self.config = config
        self.settings = config.nudges
        self.db = db
        self.clock = clock
        self.i18n = i18n
        self.calendar = calendar
        self.periods = periods
        self.outbox = outbox
        self.send_at = parse_clock(self.settings.send_at)
        # At most what the dispatcher sends between two planning runs waits in the outbox.
        self.queue_limit = self.settings.max_per_second * self.settings.plan_interval
        self._slots: dict[date, datetime] = {}  # the same for every deadline (_slot)
        # Offsets of deadlines worked out since the clock last crossed a slot (_offsets).
        self._offsets_seen: dict[date, Offset | None] = {}
        self._offsets_epoch: tuple[date, bool, bool] | None = None

    # ------------------------------------------------------------------ offsets

    def _slot(self, day: date) -> datetime:
        """When a nudge for this day goes out: send_at, moved into working hours."""
        slot = self._slots.get(day)
        if slot is None:
            slot = self._slots[day] = self.calendar.next_working_slot(self.calendar.at(day, self.send_at))
        return slot

    def current_offset(self, deadline: date, now: datetime) -> Offset | None:
        """The latest nudge for this deadline whose time has come, or None."""
        cal, s = self.calendar, self.settings
        best: Offset | None = None

        def consider(offset: Offset) -> None:
            nonlocal best
            if offset.slot <= now and (best is None or offset.slot >= best.slot):
                best = offset

        for days in sorted(set(s.before_days), reverse=True):
            consider(Offset(f"b{days}", self._slot(cal.add_working_days(deadline, -days)), days_left=days))
        if s.on_the_day:
            consider(Offset("d0", self._slot(deadline)))
        today = cal.local(now).date()
        every = s.overdue_every_days
        rounds = cal.working_days_between(deadline, today) // every
        for n in (rounds, rounds - 1):
            if n >= 1:
                days = n * every
                offset = Offset(f"o{days}", self._slot(cal.add_working_days(deadline, days)), overdue=days)
                if offset.slot <= now:
                    consider(offset)
                    break
        return best

    def _offsets(self, deadlines: Sequence[date], now: datetime) -> dict[date, Offset]:
        """The current offset of each deadline that has one. Every slot is a working day's
        start or send_at, so the answers change only when the day changes or one of those two
        times passes: they are kept until then, and the runs in between (every plan_interval)
        work out only deadlines not seen yet."""
        local = self.calendar.local(now)
        epoch = (local.date(), local.time() >= self.calendar.start, local.time() >= self.send_at)
        if epoch != self._offsets_epoch:
            self._offsets_seen, self._offsets_epoch = {}, epoch
        seen = self._offsets_seen
        found = {}
        for deadline in deadlines:
            if deadline not in seen:
                seen[deadline] = self.current_offset(deadline, now)
            offset = seen[deadline]
            if offset is not None:
                found[deadline] = offset
        return found

    # ------------------------------------------------------------------ planning

    async def plan(self, task_ids: Sequence[int] | None = None) -> PlanResult:
        """Write the due deadline nudges and cancel pending ones no longer wanted.

        Set-based: the current offset is worked out once per distinct deadline (the working
        calendar lives in Python); pending nudges no longer wanted are cancelled by one UPDATE
        and the new ones written by one INSERT ... SELECT, without their text (rendered when
        sent): no Python object per row, so a fresh install's first run over a large programme
        stays quick.
        """
        now = self.clock.now()
        result = PlanResult()
        async with self.db.transaction() as session:
            repo = NudgeRepository(session)
            offsets = self._offsets(await repo.deadlines(task_ids), now)
            await repo.begin_plan(
                [self._nudge_offset(deadline, offset) for deadline, offset in offsets.items()], now
            )
            # Cancel first: what is inserted now is wanted by construction.
            result.cancelled = await repo.cancel_superseded((NUDGE, SNOOZED), task_ids)
            # The outbox holds what the dispatcher can send before the next run, no more:
            # the rest is written by later runs (still due, still collapsed to the latest
            # offset). A large backlog (a fresh install over a big, overdue programme) is
            # planned as fast as it can be sent, each run stays short, and nothing sits in the
            # outbox for an hour.
            limit = None
            if task_ids is None:
                limit = max(0, self.queue_limit - await repo.pending_count((NUDGE, SNOOZED)))
            result.planned = (
                await repo.insert_nudges(NUDGE, self.settings.include_coordinating, task_ids, now, limit)
                if limit != 0
                else 0
            )
            await repo.end_plan()
        return result

    def _nudge_offset(self, deadline: date, offset: Offset) -> NudgeOffset:
        escalate = offset.overdue > 0 and offset.overdue >= self.settings.escalate_after_days
        return NudgeOffset(deadline, offset.name, escalate, offset.slot)

    async def on_task_changed(self, task_id: int) -> PlanResult:
        """Re-plan one task after it was completed, closed or its deadline changed: what is
        pending for it and no longer wanted is cancelled."""
        return await self.plan([task_id])

    # ------------------------------------------------------------------ rendering, at send

    async def render(self, message: ClaimedMessage) -> dict[str, Any] | None:
        """The payload (text and buttons) of a nudge or period reminder about to be sent,
        rendered now in the recipient's language from the task as it is now. None when it is
        no longer wanted: the task was deleted, closed or completed, its deadline changed, or
        the person has nothing left to report on."""
        now = self.clock.now()
        async with self.db.reader() as session:
            repo = NudgeRepository(session)
            if message.kind == PERIOD_REMINDER:
                return await self._render_period(repo, message, now)
            return await self._render_nudge(repo, message, now)

    async def _render_nudge(
        self, repo: NudgeRepository, message: ClaimedMessage, now: datetime
    ) -> dict[str, Any] | None:
        nudge = await repo.nudge_to_send(message.id)
        if (
            nudge is None
            or nudge.task_id is None
            or nudge.closed
            or nudge.deadline is None
            or nudge.offset is None
            or nudge.deadline_version != nudge.task_version
        ):
            return None
        named = _offset_named(nudge.offset)
        if named is None:
            return None
        lead = (await ReportRepository(repo.session).lead_progress(now, [nudge.task_id])).get(nudge.task_id)
        if lead is not None and lead.completed:
            return None
        days_left, overdue = named
        fields = {
            "code": nudge.code,
            "title": nudge.title,
            "unit": nudge.unit,
            "deadline": self.i18n.date(nudge.language, nudge.deadline),
        }
        language = nudge.language
        text = self._nudge_text(
            language,
            days_left,
            overdue,
            bool(nudge.payload.get("escalation")),
            fields,
            lead.percent if lead is not None else None,
        )
        return _payload(text, self._buttons(language, nudge.task_id, unchanged=lead is not None))

    def _nudge_text(
        self,
        language: str | None,
        days_left: int,
        overdue: int,
        escalated: bool,
        fields: dict[str, str],
        percent: int | None,
    ) -> str:
        shown = (
            self.i18n.t(language, "nudges.no_report")
            if percent is None
            else self.i18n.t(language, "nudges.percent", percent=percent)
        )
        t = self.word
        if escalated:
            return t(language, "nudges.escalation", days=overdue, percent=shown, **fields)
        if overdue:
            return t(language, "nudges.overdue", days=overdue, percent=shown, **fields)
        if days_left:
            return t(language, "nudges.before", days=days_left, percent=shown, **fields)
        return t(language, "nudges.on_the_day", percent=shown, **fields)

    def _buttons(
        self, language: str | None, task_id: int | str, *, unchanged: bool = False
    ) -> list[list[Button]]:
        """Báo cáo ngay and Nhắc lại sau; and, once the task has a report to copy, Không thay
        đổi (files this period's report as a copy of the last one: handlers/report.py)."""
        rows = [
            [
                Button(self.i18n.t(language, "nudges.report_now"), "report", task_id),
                # The outbox row's id is known only when the message is sent.
                Button(self.i18n.t(language, "nudges.snooze"), "snooze", OUTBOX_ID),
            ]
        ]
        if unchanged:
            rows.append([Button(self.i18n.t(language, "report.button.unchanged"), "unchanged", task_id)])
        return rows

    @staticmethod
    def _people(rows: Sequence[Any]) -> tuple[dict[int, list[Recipient]], dict[int, list[Recipient]]]:
        """Focal points and leaders by unit."""
        focal: dict[int, list[Recipient]] = defaultdict(list)
        leaders: dict[int, list[Recipient]] = defaultdict(list)
        for unit_id, role, user_id, telegram_id, language, first_name in rows:
            person = Recipient(user_id, telegram_id, language, first_name or "")
            (focal if role == "focal" else leaders)[unit_id].append(person)
        return focal, leaders

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
            if (
                moment > period.start
                and slot <= now
                and self.calendar.local(slot).date() == today
                and (best is None or slot >= best[2])
            ):
                best = (period, index, slot)
        return best

    async def plan_period_reminders(self) -> PlanResult:
        """One message to each focal point whose unit has not reported on an active task this
        period (one INSERT ... SELECT, the list rendered when it is sent); superseded pending
        reminders, and those to people who now owe nothing, are cancelled."""
        now = self.clock.now()
        result = PlanResult()
        due = self.due_reminder(now)
        coordinating = self.settings.include_coordinating
        period_key, prefix = self.periods.period_at(now).key, None
        async with self.db.transaction() as session:
            repo = NudgeRepository(session)
            if due is not None:
                period, index, slot = due
                period_key, prefix = period.key, f"period:{period.key}:{index}:"
                result.planned = await repo.insert_period_reminders(
                    PERIOD_REMINDER, prefix, {"period": period.key}, slot, period.key, coordinating, now
                )
            result.cancelled = await repo.cancel_period_reminders(
                PERIOD_REMINDER, prefix, period_key, coordinating, now
            )
        return result

    async def _render_period(
        self, repo: NudgeRepository, message: ClaimedMessage, now: datetime
    ) -> dict[str, Any] | None:
        """The list of tasks the person's units have not reported on in the period yet: the
        first PERIOD_LIST_LIMIT, and a button for each of the first PERIOD_BUTTONS tasks."""
        key = message.payload.get("period")
        if message.user_id is None or not isinstance(key, str):
            return None
        period = self.periods.by_key(key)
        coordinating = self.settings.include_coordinating
        items, total = await repo.owed(message.user_id, period.key, now, coordinating, PERIOD_LIST_LIMIT)
        if not items:
            return None
        tasks = list(dict.fromkeys((item.task_id, item.code) for item in items))
        if len(tasks) < PERIOD_BUTTONS and total > len(items):
            tasks = await repo.owed_tasks(message.user_id, period.key, now, coordinating, PERIOD_BUTTONS)
        lang = await repo.language(message.user_id)
        t = self.i18n.t
        cutoff = self.i18n.datetime(lang, self.calendar.local(period.end))
        lines = [self.word(lang, "nudges.period_intro", period=period.key, cutoff=cutoff)]
        lines += [
            self.word(
                lang,
                "nudges.period_item",
                code=item.code,
                title=item.title,
                unit=item.unit,
            )
            for item in items
        ]
        if total > PERIOD_LIST_LIMIT:
            lines.append(t(lang, "nudges.period_more", count=total - PERIOD_LIST_LIMIT))
        buttons = [
            [Button(t(lang, "nudges.report_task", code=code), "report", task_id)]
            for task_id, code in tasks[:PERIOD_BUTTONS]
        ]
        return _payload("\n".join(lines)[:4096], buttons)

    # ------------------------------------------------------------------ snooze, unreachable

    async def snooze(self, outbox_id: int, telegram_id: int) -> datetime | None:
        """Send this nudge again one working day later. None when the message is not a nudge
        sent to this person (forged or foreign button data)."""
        now = self.clock.now()
        async with self.db.transaction() as session:
            repo = NudgeRepository(session)
            row = await repo.message(outbox_id)
            if (
                row is None
                or row.kind not in (NUDGE, SNOOZED)
                or row.chat_id != telegram_id
                or row.state != "sent"
                or row.task_id is None
            ):
                return None
            if row.deadline_version is None or row.nudge_offset is None:
                return None
            when = self.calendar.postpone(now, 1)
            message = OutgoingMessage(
                f"snooze:{row.task_id}:v{row.deadline_version}:{row.nudge_offset}:{row.id}",
                SNOOZED,
                row.chat_id,
                user_id=row.user_id,
                task_id=row.task_id,
                due_at=when,
            )
            # The repeat is for the same nudge: rendered again when it is sent.
            values = OutboxService.row(message, now) | {
                "payload": dict(row.payload),
                "deadline_version": row.deadline_version,
                "nudge_offset": row.nudge_offset,
            }
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
                    text = self.word(
                        leader.language,
                        "nudges.unreachable",
                        name=user["name"],
                        unit=units.get(unit_id, ""),
                    )
                    stamp = since.strftime("%Y%m%d%H%M%S") if since else "0"
                    message = OutgoingMessage(
                        f"unreachable:{user_id}:{stamp}:{unit_id}:{leader.user_id}",
                        UNREACHABLE,
                        leader.telegram_id,
                        text=text,
                        user_id=leader.user_id,
                        due_at=self.calendar.next_working_slot(now),
                    )
                    rows.append(OutboxService.row(message, now))
            return await OutboxRepository(session).add_unique(rows)
