"""What the process counts and how it is doing, for /metrics and /readyz (bot/health.py).

Prometheus metrics in a registry of tiendo's own (the library's default registry is left to
the library), and the little state that readiness needs: whether updates are arriving.
Where an event happens, one line records it (`metrics.UPDATES.labels(result="done").inc()`,
`metrics.INTAKE.polled()`); nothing here knows of Telegram or the database. Module state, as
there is one bot per process; tests that look at it read differences, or call `reset()`.

Leadership: `leader()` says whether this process runs the singletons (nudge planning, the
dispatcher, digests, draft expiry). One process alone is always the leader; an election
(issue 17) calls `set_leader_probe(fn)` once with a function answering it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

# No `_created` series beside each counter: a timestamp per series that nobody graphs.
disable_created_metrics()
REGISTRY = CollectorRegistry(auto_describe=True)

UPDATES = Counter(
    "tiendo_updates",
    "Updates from Telegram whose handling ended, by result: done, failed (a handler failed), "
    "unreadable (the library could not parse it).",
    ["result"],
    registry=REGISTRY,
)
STEP_SECONDS = Histogram(
    "tiendo_step_seconds",
    "Time from an update's arrival (stored in the inbox) to the end of its handling, by kind "
    "(message, callback_query, ...).",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=REGISTRY,
)
SENDS = Counter(
    "tiendo_outbox_sends",
    "Outbox messages whose turn came, by result: sent, retry (Telegram asked to wait, a network "
    "error, or held while a report is under way), failed, cancelled (no longer wanted).",
    ["result"],
    registry=REGISTRY,
)
NUDGES_PLANNED = Counter(
    "tiendo_nudges_planned",
    "Nudges and period reminders written to the outbox by nudge planning.",
    registry=REGISTRY,
)
OUTBOX_DUE = Gauge(
    "tiendo_outbox_due",
    "Outbox messages due now and not yet sent (pending or being sent), read at each scrape.",
    registry=REGISTRY,
)
OUTBOX_OLDEST = Gauge(
    "tiendo_outbox_oldest_due_age_seconds",
    "How long the oldest message due has been waiting (0 when none), read at each scrape.",
    registry=REGISTRY,
)
LEADER = Gauge(
    "tiendo_leader",
    "1 if this process runs the singletons (planning, dispatcher, digests, draft expiry), else 0.",
    registry=REGISTRY,
)
LAST_INTAKE = Gauge(
    "tiendo_last_intake_age_seconds",
    "Seconds since updates were last received: a successful getUpdates (polling) or a stored "
    "webhook post; -1 before the first.",
    registry=REGISTRY,
)

_leader_probe: Callable[[], bool] = lambda: True  # noqa: E731 (one process alone leads)


def set_leader_probe(probe: Callable[[], bool]) -> None:
    """Where leadership is decided (an election), tell this module how to ask it."""
    global _leader_probe
    _leader_probe = probe


def leader() -> bool:
    return bool(_leader_probe())


LEADER.set_function(lambda: 1.0 if leader() else 0.0)


class Intake:
    """Whether updates are arriving: the updater records each successful getUpdates (polling)
    and each stored webhook post; /readyz asks `receiving()`."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.reset()

    def reset(self) -> None:
        self.mode: str | None = None  # "polling" or "webhook", once started
        self.last: float | None = None
        # Polling: a getUpdates answers at the latest after its long-poll timeout; a
        # success older than this much beyond it means polling has stalled.
        self.poll_timeout = 30.0
        self.grace = 30.0
        # An instance that leaves polling to another one (an elected poller) still serves:
        # set False there, and readiness does not wait for getUpdates of its own.
        self.polls = True

    def started(self, mode: str, poll_timeout: float = 30.0) -> None:
        self.mode, self.poll_timeout = mode, poll_timeout
        if mode == "webhook":
            self.last = self.clock()  # registered with Telegram: from now on posts can come

    def polled(self) -> None:
        self.last = self.clock()

    received = polled  # a webhook post stored

    def age(self) -> float | None:
        return None if self.last is None else self.clock() - self.last

    def receiving(self) -> tuple[bool, str]:
        """Whether updates reach this process, and why not."""
        if self.mode is None:
            return False, "not started"
        if self.mode == "webhook":
            return True, "webhook registered"
        if not self.polls:
            return True, "another instance polls"
        age = self.age()
        if age is None:
            return False, "no getUpdates answered yet"
        if age > self.poll_timeout + self.grace:
            return False, f"last getUpdates answered {age:.0f} s ago"
        return True, f"last getUpdates answered {age:.0f} s ago"


INTAKE = Intake()


def _intake_age() -> float:
    age = INTAKE.age()
    return -1.0 if age is None else age


LAST_INTAKE.set_function(_intake_age)


def reset() -> None:
    """A fresh intake and a leader of one (tests)."""
    INTAKE.reset()
    set_leader_probe(lambda: True)
