"""The working calendar: which days and hours people may be messaged.

Working days are the configured weekdays ([work] days), minus the country's public holidays
(the `holidays` package: Tết, 30/4, 1/5, 2/9, ... and the Government's substituted days off),
minus [work] extra_days_off, plus [work] working_weekend_days (a Saturday worked to bridge a
holiday). Working hours are [work] start to end, local time in [bot] timezone. Everything
takes and returns aware datetimes; days are local calendar days.

The `holidays` package is heavy to hold: loading one country's calendar imports every country's
module (~12 MiB that a bot at rest never gives back). So the dates are kept per year as plain
sets (PublicHolidays): `tiendo run` computes the years around today in its start-up child
(bot/cli.py) and hands them over; a year nobody computed is computed on first use.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.config import WEEKDAYS, Config, parse_clock

# The years `tiendo run` computes ahead: this one, those a closed programme's reports or an old
# overdue task may reach back to, and the deadlines ahead.
YEARS_BEFORE, YEARS_AFTER = 5, 5


def compute_public_holidays(country: str, years: Iterable[int]) -> dict[int, list[date]]:
    """Each year's public holidays in country (an ISO code the `holidays` package knows),
    including the Government's substituted days off."""
    import holidays  # heavy: see the module's docstring

    wanted = sorted(set(years))
    found: dict[int, list[date]] = {year: [] for year in wanted}
    # The neighbouring years too: a day off observed in lieu may fall across New Year.
    around = {y for year in wanted for y in (year - 1, year, year + 1)}
    for day in sorted(holidays.country_holidays(country, years=sorted(around))):
        if day.year in found:
            found[day.year].append(day)
    return found


def years_around(today: date) -> range:
    return range(today.year - YEARS_BEFORE, today.year + YEARS_AFTER + 1)


class PublicHolidays:
    """A country's public holidays, a set of dates per year, computed once per year."""

    def __init__(self, country: str) -> None:
        self.country = country
        self._years: dict[int, frozenset[date]] = {}

    def learn(self, years: Mapping[int, Iterable[date]]) -> None:
        """Take years computed elsewhere (by compute_public_holidays, for this country)."""
        for year, days in years.items():
            self._years[year] = frozenset(days)

    def __contains__(self, day: date) -> bool:
        known = self._years.get(day.year)
        if known is None:
            self.learn(compute_public_holidays(self.country, [day.year]))
            known = self._years[day.year]
        return day in known


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
        self.holidays = PublicHolidays(self.country)
        self._cache: dict[date, bool] = {}
        # A running count of working days from _base, so that counting and stepping over
        # many working days (a task overdue for a year) is a lookup, not a walk.
        self._base: date | None = None
        self._counts: list[int] = []

    def is_holiday(self, day: date) -> bool:
        return day in self.holidays

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
