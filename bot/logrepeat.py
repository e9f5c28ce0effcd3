"""Repeated identical log lines are rate-limited: a fault that recurs many times a second
(a lost network, a broken update Telegram keeps sending) logs once, not megabytes."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable

# A line seen again within this many seconds is counted, not written.
WINDOW = 60.0
# How many distinct lines are remembered (the oldest are forgotten first).
MAX_LINES = 1024


class RepeatFilter(logging.Filter):
    def __init__(self, window: float = WINDOW, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.window = window
        self.clock = clock
        # (logger, level, message) -> [when last written, repeats not written since]
        self._seen: OrderedDict[tuple[str, int, str], list[float]] = OrderedDict()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        key = (record.name, record.levelno, message)
        now = self.clock()
        seen = self._seen.get(key)
        if seen is not None and now - seen[0] < self.window:
            seen[1] += 1
            return False
        if seen is not None and seen[1]:
            record.msg = f"{message} (and {int(seen[1])} more times in the last {int(now - seen[0])} s)"
            record.args = None
        self._seen[key] = [now, 0]
        self._seen.move_to_end(key)
        while len(self._seen) > MAX_LINES:
            self._seen.popitem(last=False)
        return True
