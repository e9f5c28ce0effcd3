"""The Government Office's status classes and completion rate (shared/DOMAIN.md).

- Đã hoàn thành đúng hạn: completed on or before the deadline
- Đã hoàn thành quá hạn: completed after the deadline
- Chưa hoàn thành, trong hạn: not completed, deadline not passed (and tasks with no deadline)
- Chưa hoàn thành, quá hạn: not completed, deadline passed

Completion rate = completed / (completed + not completed and overdue): over the tasks that have
come due. All dates are calendar days in the configured time zone.

When a task is completed, and when (the one definition; every view uses it):
- Only the lead unit's reports count (a coordinating unit's "done" does not complete a task).
- The lead unit's submissions on the task in time order are its reports and their corrections
  (each revision is one submission). At a moment, the task is completed when the latest
  submission up to then says done.
- It was completed at the moment "done" was first claimed in that last unbroken run of "done"
  submissions: a later "done" (next period's report, or a correction that keeps "done", e.g. of a
  typo the next day) does not move that moment; a submission with another status ends the run,
  so "done" corrected to "in progress" reopens the task, and "in progress" corrected to "done"
  completes it at the correction's time.
- The status class compares the local day of that moment with the deadline (classify_status).

Where it is computed: ReportRepository.lead_progress (storage/repositories/reports.py) reads it
for many tasks at once, from the lead unit's latest report and its status_since (when the
unit's current run of that status began, kept by ReportingService.submit). /tasks, /stats,
/overdue, the export, the consolidated report and the nudges all call it. completed_on below is
the same definition over a plain list, the reference the query is tested against.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, time, timedelta, tzinfo
from typing import TypeVar


class StatusClass(enum.StrEnum):
    DONE_ON_TIME = "done_on_time"
    DONE_LATE = "done_late"
    OPEN_WITHIN = "open_within"
    OPEN_OVERDUE = "open_overdue"

    @property
    def completed(self) -> bool:
        return self in (StatusClass.DONE_ON_TIME, StatusClass.DONE_LATE)


# The order reports list them in.
STATUS_ORDER = (
    StatusClass.DONE_ON_TIME,
    StatusClass.DONE_LATE,
    StatusClass.OPEN_WITHIN,
    StatusClass.OPEN_OVERDUE,
)


def classify_status(deadline: date | None, completed_on: date | None, today: date) -> StatusClass:
    """The status class of a task on `today`.

    Completed on the deadline day is on time; not completed on the deadline day is still within
    the deadline; from the day after, it is overdue. A task with no deadline is never late.
    """
    if completed_on is not None:
        if deadline is None or completed_on <= deadline:
            return StatusClass.DONE_ON_TIME
        return StatusClass.DONE_LATE
    if deadline is not None and today > deadline:
        return StatusClass.OPEN_OVERDUE
    return StatusClass.OPEN_WITHIN


Moment = TypeVar("Moment", bound=date)  # a day, or a moment (datetime)


def completed_on(history: Sequence[tuple[Moment, str]]) -> Moment | None:
    """When a task was completed, from its lead unit's submissions in time order (moment or
    day, status); the definition above over a plain list.

    The task is completed if the latest submission says done; it was completed at the first
    submission of that last unbroken run of "done" (a later "done" repeats it, it does not move
    the completion moment).
    """
    day: Moment | None = None
    for report_day, status in history:
        if status == "done":
            if day is None:
                day = report_day
        else:
            day = None
    return day


def end_of_day(day: date, tz: tzinfo) -> datetime:
    """The moment a local day ends: statuses "on a day" count every report sent that day."""
    return datetime.combine(day + timedelta(days=1), time.min, tzinfo=tz)


def completion_rate(counts: Mapping[StatusClass, int]) -> float | None:
    """Completed over the tasks that have come due; None when nothing has come due yet."""
    done = counts.get(StatusClass.DONE_ON_TIME, 0) + counts.get(StatusClass.DONE_LATE, 0)
    due = done + counts.get(StatusClass.OPEN_OVERDUE, 0)
    return done / due if due else None


def count_classes(classes: Iterable[StatusClass]) -> dict[StatusClass, int]:
    counts = dict.fromkeys(STATUS_ORDER, 0)
    for status in classes:
        counts[status] += 1
    return counts
