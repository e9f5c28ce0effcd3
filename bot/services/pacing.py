"""Telegram's sending limits kept by the process: at most [nudges] max_per_second messages a
second overall, one a second to a private chat and 20 a minute to a group.

SendPacer lives on Services (one per process) so pacing holds across dispatcher runs; the
dispatcher job (bot/jobs/dispatch.py) reserves and gates every send through it.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

PRIVATE_CHAT_INTERVAL = 1.05  # seconds between two messages to one private chat (~1/s)
GROUP_CHAT_INTERVAL = 3.05  # 20 a minute to a group
LOOKAHEAD = 1.0  # claim what can start within this many seconds
# The overall limit is kept over a slightly longer window than Telegram's second, so that
# a little jitter in transit does not put one message too many into a second on arrival.
WINDOW = 1.02


class SendPacer:
    """Reserves send times: overall spacing 1/per_second, and per chat its own interval.

    Lives as long as the process (on Services), so pacing holds across dispatcher runs.
    """

    def __init__(self, per_second: int, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.per_second = per_second
        self.interval = 1.0 / per_second
        self.monotonic = monotonic
        self.next_any = 0.0
        self.next_chat: dict[int, float] = {}
        self.in_flight: set[int] = set()
        self.private_interval = PRIVATE_CHAT_INTERVAL
        self.group_interval = GROUP_CHAT_INTERVAL
        self.starts: deque[float] = deque()  # real start times within the last second
        self._gate = asyncio.Lock()

    def chat_interval(self, chat_id: int) -> float:
        return self.group_interval if chat_id < 0 else self.private_interval

    def busy(self) -> set[int]:
        """Chats that cannot take a message now (one in flight, or sent to too recently)."""
        now = self.monotonic()
        for chat in [c for c, at in self.next_chat.items() if at <= now]:
            del self.next_chat[chat]
        return set(self.next_chat) | self.in_flight

    def capacity(self) -> int:
        """How many sends may start within the lookahead."""
        now = self.monotonic()
        return max(0, int((now + LOOKAHEAD - max(now, self.next_any)) / self.interval))

    def reserve(self, chat_id: int) -> float:
        """The monotonic time at which a message to this chat may go."""
        at = max(self.monotonic(), self.next_any, self.next_chat.get(chat_id, 0.0))
        self.next_any = at + self.interval
        self.next_chat[chat_id] = at + self.chat_interval(chat_id)
        self.in_flight.add(chat_id)
        return at

    async def gate(self, chat_id: int) -> None:
        """Wait until a send may really start: never more than per_second starts in any
        window of WINDOW seconds, at least half an interval apart. Reserved times are a plan; if
        the event loop was held up, the sends due meanwhile catch up without a burst."""
        async with self._gate:
            while True:
                now = self.monotonic()
                while self.starts and now - self.starts[0] >= WINDOW:
                    self.starts.popleft()
                wait = 0.0
                if len(self.starts) >= self.per_second:
                    wait = self.starts[0] + WINDOW - now
                if self.starts:
                    wait = max(wait, self.starts[-1] + self.interval / 2 - now)
                if wait <= 0:
                    break
                await asyncio.sleep(wait)
            self.starts.append(now)
            # The chat's interval counts from the real start.
            self.next_chat[chat_id] = max(self.next_chat.get(chat_id, 0.0), now + self.chat_interval(chat_id))

    def done(self, chat_id: int, *, reached: bool = True) -> None:
        self.in_flight.discard(chat_id)
        if not reached:
            self.next_chat.pop(chat_id, None)  # refused outright: no need to wait
        else:
            # Counted from the answer too: it came after Telegram had the message, so the next
            # one cannot arrive within a second of it even if this one was slow in transit.
            self.next_chat[chat_id] = max(
                self.next_chat.get(chat_id, 0.0), self.monotonic() + self.chat_interval(chat_id)
            )

    def soonest_free(self) -> float | None:
        """Seconds until the next busy chat frees up, if any."""
        if not self.next_chat:
            return None
        return max(0.0, min(self.next_chat.values()) - self.monotonic())
