"""Reporting periods: weekly with a cut-off, monthly and quarterly, in the configured time zone.

A period is the half-open span (previous cut-off, cut-off]; a report submitted exactly at the
cut-off belongs to the period it closes. Periods are named by their cut-off: `2024-W05` (ISO
week of the cut-off day), `2024-01` (month), `2024-Q1` (quarter). Nothing else in the code
assumes weeks: it asks a PeriodRule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from bot.config import WEEKDAYS, Config, parse_clock


@dataclass(frozen=True, order=True)
class Period:
    key: str
    start: datetime  # exclusive, aware UTC
    end: datetime  # inclusive (the cut-off), aware UTC

    def contains(self, moment: datetime) -> bool:
        return self.start < moment <= self.end


class PeriodRule(Protocol):
    def period_at(self, moment: datetime) -> Period: ...

    def by_key(self, key: str) -> Period: ...


def previous(rule: PeriodRule, period: Period) -> Period:
    return rule.period_at(period.start)


def following(rule: PeriodRule, period: Period) -> Period:
    return rule.period_at(period.end + timedelta(microseconds=1))


def _at(day: date, clock: time, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, clock, tzinfo=tz).astimezone(UTC)


@dataclass(frozen=True)
class WeeklyRule:
    tz: ZoneInfo
    weekday: int  # Monday = 0
    cutoff: time

    def _cutoff_in_week(self, year: int, week: int) -> datetime:
        return _at(date.fromisocalendar(year, week, self.weekday + 1), self.cutoff, self.tz)

    def period_at(self, moment: datetime) -> Period:
        local = moment.astimezone(self.tz)
        days_ahead = (self.weekday - local.weekday()) % 7
        end = _at(local.date() + timedelta(days=days_ahead), self.cutoff, self.tz)
        if end < moment:
            end = _at(local.date() + timedelta(days=days_ahead + 7), self.cutoff, self.tz)
        end_day = end.astimezone(self.tz).date()
        year, week, _ = end_day.isocalendar()
        return Period(f"{year}-W{week:02d}", end - timedelta(days=7), end)

    def by_key(self, key: str) -> Period:
        match = re.fullmatch(r"(\d{4})-W(\d{2})", key)
        if not match:
            raise ValueError(f"not a week like 2024-W05: {key!r}")
        end = self._cutoff_in_week(int(match.group(1)), int(match.group(2)))
        return Period(key, end - timedelta(days=7), end)


@dataclass(frozen=True)
class MonthlyRule:
    """Months (every=1) or quarters (every=3), each ending on cutoff_day at the cut-off time."""

    tz: ZoneInfo
    day: int
    cutoff: time
    every: int = 1

    def _end(self, year: int, month: int) -> datetime:
        return _at(date(year, month, self.day), self.cutoff, self.tz)

    def _key(self, year: int, month: int) -> str:
        if self.every == 3:
            return f"{year}-Q{(month - 1) // 3 + 1}"
        return f"{year}-{month:02d}"

    def _shift(self, year: int, month: int, months: int) -> tuple[int, int]:
        index = year * 12 + (month - 1) + months
        return index // 12, index % 12 + 1

    def period_at(self, moment: datetime) -> Period:
        local = moment.astimezone(self.tz)
        year, month = local.year, local.month
        if self.every == 3:
            month = ((month - 1) // 3) * 3 + 3  # the quarter's last month
        end = self._end(year, month)
        if end < moment:
            year, month = self._shift(year, month, self.every)
            end = self._end(year, month)
        start_year, start_month = self._shift(year, month, -self.every)
        return Period(self._key(year, month), self._end(start_year, start_month), end)

    def by_key(self, key: str) -> Period:
        if self.every == 3:
            match = re.fullmatch(r"(\d{4})-Q([1-4])", key)
            if not match:
                raise ValueError(f"not a quarter like 2024-Q1: {key!r}")
            year, month = int(match.group(1)), int(match.group(2)) * 3
        else:
            match = re.fullmatch(r"(\d{4})-(\d{2})", key)
            if not match or not 1 <= int(match.group(2)) <= 12:
                raise ValueError(f"not a month like 2024-01: {key!r}")
            year, month = int(match.group(1)), int(match.group(2))
        return self.period_at(self._end(year, month))


def period_rule(config: Config) -> PeriodRule:
    rep = config.reporting
    cutoff = parse_clock(rep.cutoff_time)
    if rep.period == "weekly":
        return WeeklyRule(config.tz, WEEKDAYS.index(rep.cutoff_weekday), cutoff)
    return MonthlyRule(config.tz, rep.cutoff_day, cutoff, 3 if rep.period == "quarterly" else 1)
