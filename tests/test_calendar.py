"""The working calendar: weekends, Vietnamese holidays (Tết 2025, 30/4–1/5), swaps, hours."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from bot.config import Config
from bot.services.calendar import WorkCalendar

HN = ZoneInfo("Asia/Ho_Chi_Minh")


def hanoi(*args: int) -> datetime:
    return datetime(*args, tzinfo=HN).astimezone(UTC)  # type: ignore[misc]


def calendar(**work: object) -> WorkCalendar:
    return WorkCalendar(Config().with_overrides(work=work))


def test_weekends_and_hours() -> None:
    cal = calendar()
    assert cal.is_working_day(date(2024, 3, 15))  # Friday
    assert not cal.is_working_day(date(2024, 3, 16))  # Saturday
    assert cal.next_working_slot(hanoi(2024, 3, 16, 9, 0)) == hanoi(2024, 3, 18, 8, 0)
    assert cal.next_working_slot(hanoi(2024, 3, 15, 17, 0)) == hanoi(2024, 3, 18, 8, 0)
    assert cal.next_working_slot(hanoi(2024, 3, 15, 7, 30)) == hanoi(2024, 3, 15, 8, 0)
    assert cal.next_working_slot(hanoi(2024, 3, 15, 16, 59)) == hanoi(2024, 3, 15, 16, 59)
    assert cal.add_working_days(date(2024, 3, 15), 1) == date(2024, 3, 18)
    assert cal.add_working_days(date(2024, 3, 18), -1) == date(2024, 3, 15)
    assert cal.working_days_between(date(2024, 3, 15), date(2024, 3, 19)) == 2


def test_tet_2025_is_not_worked() -> None:
    cal = calendar()
    # Tết Ất Tỵ: Saturday 25/1 to Sunday 2/2/2025 off; work resumes Monday 3/2.
    for day in range(25, 32):
        assert not cal.is_working_day(date(2025, 1, day))
    assert not cal.is_working_day(date(2025, 2, 1))
    assert not cal.is_working_day(date(2025, 2, 2))
    assert cal.next_working_slot(hanoi(2025, 1, 27, 9, 0)) == hanoi(2025, 2, 3, 8, 0)
    assert cal.add_working_days(date(2025, 1, 24), 1) == date(2025, 2, 3)
    assert cal.add_working_days(date(2025, 2, 3), -1) == date(2025, 1, 24)


def test_reunification_and_labour_day_2025_with_the_swapped_saturday() -> None:
    cal = calendar()
    # 30/4 and 1/5 are holidays, 2/5 is the substituted day off: back on Monday 5/5.
    assert cal.next_working_slot(hanoi(2025, 4, 30, 9, 0)) == hanoi(2025, 5, 5, 8, 0)
    assert cal.add_working_days(date(2025, 4, 29), 1) == date(2025, 5, 5)
    assert not cal.is_working_day(date(2025, 4, 26))  # a Saturday, unless configured
    swapped = calendar(working_weekend_days=["2025-04-26"])
    assert swapped.is_working_day(date(2025, 4, 26))
    assert swapped.add_working_days(date(2025, 4, 28), -1) == date(2025, 4, 26)


def test_extra_days_off_and_other_working_days() -> None:
    cal = calendar(extra_days_off=["2024-03-18"])
    assert cal.next_working_slot(hanoi(2024, 3, 16, 9, 0)) == hanoi(2024, 3, 19, 8, 0)
    every_day = calendar(
        days=["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"],
        start="00:00",
        end="23:59",
    )
    assert every_day.is_working_time(hanoi(2024, 3, 16, 3, 0))


def test_stepping_far_agrees_with_walking_day_by_day() -> None:
    cal = calendar()
    start = date(2024, 12, 20)
    for count in range(-300, 301, 7):
        walked, left = start, abs(count)
        while left:
            walked = walked.fromordinal(walked.toordinal() + (1 if count > 0 else -1))
            left -= cal.is_working_day(walked)
        assert cal.add_working_days(start, count) == walked


def test_holidays_handed_over_are_used_and_other_years_computed(monkeypatch: object) -> None:
    """`tiendo run` computes the years around today in its start-up child and hands them over:
    the bot then needs the `holidays` package only for a year nobody computed."""
    from bot.services import calendar as module

    computed = module.compute_public_holidays("VN", [2025])
    assert date(2025, 1, 29) in computed[2025] and date(2025, 9, 2) in computed[2025]
    cal = calendar()
    cal.holidays.learn({2025: [date(2025, 3, 3)]})  # a made-up day off: the learned set is used
    asked: list[list[int]] = []

    def compute(country: str, years: list[int]) -> dict[int, list[date]]:
        asked.append(list(years))
        return computed

    monkeypatch.setattr(module, "compute_public_holidays", compute)  # type: ignore[attr-defined]
    assert not cal.is_working_day(date(2025, 3, 3))
    assert cal.is_working_day(date(2025, 1, 29)) and asked == []
    monkeypatch.setattr(module, "compute_public_holidays", lambda c, y: {2026: [date(2026, 1, 1)]})  # type: ignore[attr-defined]
    assert not cal.is_working_day(date(2026, 1, 1))
