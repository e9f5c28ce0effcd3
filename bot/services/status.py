"""The Government Office's status classes and completion rate (shared/DOMAIN.md).

- Đã hoàn thành đúng hạn: completed on or before the deadline
- Đã hoàn thành quá hạn: completed after the deadline
- Chưa hoàn thành, trong hạn: not completed, deadline not passed (and tasks with no deadline)
- Chưa hoàn thành, quá hạn: not completed, deadline passed

Completion rate = completed / (completed + not completed and overdue): over the tasks that have
come due. All dates are calendar days in the configured time zone.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from datetime import date


class StatusClass(enum.StrEnum):
    DONE_ON_TIME = "done_on_time"
    DONE_LATE = "done_late"
    OPEN_WITHIN = "open_within"
    OPEN_OVERDUE = "open_overdue"

    @property
    def completed(self) -> bool:
        return self in (StatusClass.DONE_ON_TIME, StatusClass.DONE_LATE)


# The order reports list them in.
STATUS_ORDER = (StatusClass.DONE_ON_TIME, StatusClass.DONE_LATE, StatusClass.OPEN_WITHIN,
                StatusClass.OPEN_OVERDUE)


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


def completed_on(history: Sequence[tuple[date, str]]) -> date | None:
    """When a task was completed, from its lead unit's reports in time order (day, status).

    The task is completed if the latest report says done; it was completed on the day of the
    first report of that last unbroken run of "done" reports (a later "done" repeats it, it does
    not move the completion date).
    """
    day: date | None = None
    for report_day, status in history:
        if status == "done":
            if day is None:
                day = report_day
        else:
            day = None
    return day


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
