"""Reporting periods and the Government status classes, at their boundaries."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.services.periods import MonthlyRule, WeeklyRule, following, previous
from bot.services.status import (
    StatusClass,
    classify_status,
    completed_on,
    completion_rate,
    count_classes,
)

HANOI = ZoneInfo("Asia/Ho_Chi_Minh")
WEEKLY = WeeklyRule(HANOI, 3, time(17, 0))  # Thursday 17:00


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=HANOI)  # type: ignore[misc]


def test_weekly_period_ends_at_the_thursday_cutoff_in_hanoi() -> None:
    # Thursday 1 Feb 2024 is in ISO week 5.
    period = WEEKLY.period_at(local(2024, 1, 30, 10, 0))
    assert period.key == "2024-W05"
    assert period.end == local(2024, 2, 1, 17, 0)
    assert period.start == local(2024, 1, 25, 17, 0)
    # Exactly at the cut-off still counts; a minute later is next week.
    assert WEEKLY.period_at(local(2024, 2, 1, 17, 0)).key == "2024-W05"
    assert WEEKLY.period_at(local(2024, 2, 1, 17, 1)).key == "2024-W06"
    # 16:30 UTC on Thursday is already Friday 23:30 in Hà Nội.
    assert WEEKLY.period_at(datetime(2024, 2, 1, 16, 30, tzinfo=UTC)).key == "2024-W06"


def test_weekly_keys_round_trip_and_chain() -> None:
    period = WEEKLY.by_key("2024-W05")
    assert period == WEEKLY.period_at(local(2024, 1, 29, 8, 0))
    assert previous(WEEKLY, period).key == "2024-W04"
    assert following(WEEKLY, period).key == "2024-W06"
    assert WEEKLY.by_key("2025-W01").end == local(2025, 1, 2, 17, 0)
    with pytest.raises(ValueError):
        WEEKLY.by_key("2024-05")


def test_monthly_and_quarterly_periods_end_on_the_25th() -> None:
    monthly = MonthlyRule(HANOI, 25, time(17, 0))
    assert monthly.period_at(local(2024, 1, 25, 17, 0)).key == "2024-01"
    assert monthly.period_at(local(2024, 1, 25, 17, 1)).key == "2024-02"
    assert monthly.period_at(local(2024, 12, 30, 9, 0)).key == "2025-01"
    assert monthly.by_key("2024-03").start == local(2024, 2, 25, 17, 0)
    quarterly = MonthlyRule(HANOI, 25, time(17, 0), every=3)
    assert quarterly.period_at(local(2024, 2, 1, 9, 0)).key == "2024-Q1"
    assert quarterly.period_at(local(2024, 3, 26, 9, 0)).key == "2024-Q2"
    assert quarterly.by_key("2024-Q2").start == local(2024, 3, 25, 17, 0)


@given(st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)))
def test_every_moment_falls_in_exactly_its_period(moment: datetime) -> None:
    for rule in (WEEKLY, MonthlyRule(HANOI, 25, time(17, 0)), MonthlyRule(HANOI, 25, time(17, 0), every=3)):
        period = rule.period_at(moment)
        assert period.contains(moment)
        assert rule.by_key(period.key) == period
        assert following(rule, previous(rule, period)) == period


DEADLINE = date(2024, 3, 31)


@pytest.mark.parametrize(
    ("completed", "today", "expected"),
    [
        (date(2024, 3, 31), date(2024, 4, 5), StatusClass.DONE_ON_TIME),  # on the deadline day
        (date(2024, 4, 1), date(2024, 4, 5), StatusClass.DONE_LATE),  # a day after
        (None, date(2024, 3, 31), StatusClass.OPEN_WITHIN),  # due today, not done
        (None, date(2024, 4, 1), StatusClass.OPEN_OVERDUE),  # due yesterday
    ],
)
def test_status_classes_at_the_deadline(completed: date | None, today: date, expected: StatusClass) -> None:
    assert classify_status(DEADLINE, completed, today) is expected


def test_ongoing_tasks_are_never_overdue() -> None:
    assert classify_status(None, None, date(2030, 1, 1)) is StatusClass.OPEN_WITHIN
    assert classify_status(None, date(2024, 5, 1), date(2030, 1, 1)) is StatusClass.DONE_ON_TIME


def test_completion_date_is_the_start_of_the_last_run_of_done() -> None:
    d = date
    assert completed_on([]) is None
    assert completed_on(
        [(d(2024, 3, 1), "in_progress"), (d(2024, 3, 8), "done"), (d(2024, 3, 15), "done")]
    ) == d(2024, 3, 8)
    # Reopened by a later report: not completed.
    assert completed_on([(d(2024, 3, 8), "done"), (d(2024, 3, 15), "stuck")]) is None
    assert completed_on([(d(2024, 3, 8), "done"), (d(2024, 3, 15), "stuck"), (d(2024, 4, 2), "done")]) == d(
        2024, 4, 2
    )


def test_completion_rate_matches_the_published_government_figure() -> None:
    counts = {
        StatusClass.DONE_ON_TIME: 16_000,
        StatusClass.DONE_LATE: 51,
        StatusClass.OPEN_OVERDUE: 223,
        StatusClass.OPEN_WITHIN: 5_000,
    }
    rate = completion_rate(counts)
    assert rate is not None and round(rate * 100, 1) == 98.6
    assert completion_rate(count_classes([StatusClass.OPEN_WITHIN])) is None
