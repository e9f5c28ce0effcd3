"""The working calendar: which days and hours people may be messaged.

Working days are the configured weekdays ([work] days), minus the country's public holidays
(the `holidays` package: Tết, 30/4, 1/5, 2/9, ... and the Government's substituted days off),
minus [work] extra_days_off, plus [work] working_weekend_days (a Saturday worked to bridge a
holiday). Working hours are [work] start to end, local time in [bot] timezone. Everything
takes and returns aware datetimes; days are local calendar days.
"""

from __future__ import annotations

from bisect import bisect_left
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays

from bot.config import WEEKDAYS, Config, parse_clock


class WorkCalendar:
    def __init__(self, config: Config) -> None:
        work = config.work
        self.tz: ZoneInfo = config.tz
        self.weekdays = frozenset(WEEKDAYS.index(day) for day in work.days)
        self.start: time = parse_clock(work.start)
        self.end: time = parse_clock(work.end)
        self.country = work.country
        self.days_off = frozenset(date.fromisoformat(d) for d in work.extra_days_off)
        self.extra_working = frozenset(date.fromisoformat(d) for d in work.working_weekend_days)
        self._holidays: holidays.HolidayBase = holidays.country_holidays(self.country, years=[])
        self._cache: dict[date, bool] = {}
        # A running count of working days from _base, so that counting and stepping over
        # many working days (a task overdue for a year) is a lookup, not a walk.
        self._base: date | None = None
        self._counts: list[int] = []

    def is_holiday(self, day: date) -> bool:
        return day in self._holidays  # the package fills in each year on first use

    def is_working_day(self, day: date) -> bool:
        known = self._cache.get(day)
        if known is None:
            if day in self.extra_working:
                known = True
            elif day in self.days_off or self.is_holiday(day):
                known = False
            else:
                known = day.weekday() in self.weekdays
            self._cache[day] = known
        return known

    def _ensure(self, first: date, last: date) -> None:
        base = self._base
        if base is not None and base <= first and last < base + timedelta(len(self._counts)):
            return
        start = min(first, base) if base else first
        end = max(last, base + timedelta(len(self._counts) - 1)) if base else last
        start, end = start - timedelta(days=60), end + timedelta(days=400)
        counts, total, day = [], 0, start
        while day <= end:
            total += self.is_working_day(day)
            counts.append(total)
            day += timedelta(days=1)
        self._base, self._counts = start, counts

    def _count(self, day: date) -> int:
        """Working days in [_base, day]."""
        assert self._base is not None
        return self._counts[(day - self._base).days]

    def add_working_days(self, day: date, count: int) -> date:
        """The count-th working day after day (before it when count < 0); count=0: day itself."""
        if count == 0:
            return day
        # Enough room either side: at most 7 calendar days per working day, plus long holidays.
        span = timedelta(days=abs(count) * 7 + 30)
        self._ensure(day - span if count < 0 else day, day + span if count > 0 else day)
        assert self._base is not None
        # The working day whose running count reaches the target is the one asked for.
        target = self._count(day) + count if count > 0 else self._count(day - timedelta(days=1)) + count + 1
        return self._base + timedelta(days=bisect_left(self._counts, target))

    def working_days_between(self, after: date, until: date) -> int:
        """How many working days lie in (after, until]."""
        if until <= after:
            return 0
        self._ensure(after, until)
        return self._count(until) - self._count(after)

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.tz)

    def at(self, day: date, clock: time) -> datetime:
        """Local day and time of day as an aware UTC datetime."""
        return datetime.combine(day, clock, tzinfo=self.tz).astimezone(UTC)

    def is_working_time(self, moment: datetime) -> bool:
        local = self.local(moment)
        return self.is_working_day(local.date()) and self.start <= local.time() < self.end

    def next_working_slot(self, moment: datetime) -> datetime:
        """moment itself if it is inside working hours, else the start of the next ones."""
        local = self.local(moment)
        day = local.date()
        if self.is_working_day(day):
            if local.time() < self.start:
                return self.at(day, self.start)
            if local.time() < self.end:
                return moment.astimezone(UTC)
        day += timedelta(days=1)
        while not self.is_working_day(day):
            day += timedelta(days=1)
        return self.at(day, self.start)

    def postpone(self, moment: datetime, working_days: int = 1) -> datetime:
        """The same local time working_days working days later, moved into working hours."""
        local = self.local(moment)
        day = self.add_working_days(local.date(), working_days)
        return self.next_working_slot(self.at(day, local.time().replace(tzinfo=None)))
