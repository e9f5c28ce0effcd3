"""Several `tiendo run` processes on one PostgreSQL database: who leads, who handles which chat.

One process is elected leader (the PostgreSQL session advisory lock of storage/cluster.py,
tried every `check_interval` seconds by the others and re-checked by the leader as often): it
polls Telegram (in polling mode) and runs the singletons: nudge planning, the outbox dispatcher
(so Telegram's 30 messages a second are counted in one place), digests, draft expiry, inbox
pruning. When it dies, its session ends, the lock is free, and another process wins it at its
next try: a takeover within a few seconds.

Every process handles updates. A chat is handled by the process holding its advisory lock: it
takes the lock when the chat has pending updates in the inbox (found when it stores them, when
told by NOTIFY, or by a sweep every `check_interval`), reloads the chat's conversation step and
draft from the database, and keeps the lock while the chat is active; after `linger` idle
seconds it forgets the chat and frees the lock. Taking a chat counts one attempt for each of
its pending updates (bot/services/inbox.py).

On SQLite there is one process: `Cluster(None)` leads from the start and owns every chat; a
second `tiendo run` on the same file is refused (storage/cluster.py, SoloLock).

`Cluster.leading` is the flag to read for metrics and health.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import Awaitable, Callable

from storage.cluster import (
    INBOX_CHANNEL,
    LEADER_LOCK,
    OUTBOX_CHANNEL,
    CoordinationLost,
    PgCoordinator,
    chat_lock,
    new_instance_id,
)

log = logging.getLogger(__name__)

CHECK_INTERVAL = 2.0  # seconds between leadership tries, sweeps and idle-chat checks
LINGER = 120.0  # seconds a chat stays with its process after its last update


class Claim(enum.Enum):
    HELD = "held"  # this process already handles the chat
    TAKEN = "taken"  # this process has just taken it: reload its state, then handle
    ELSEWHERE = "elsewhere"  # another process handles it


Hook = Callable[[], Awaitable[None]]
ChatHook = Callable[[int], Awaitable[None]]


async def _nothing() -> None:
    return None


async def _nothing_for(_chat: int) -> None:
    return None


class Cluster:
    def __init__(
        self,
        coordinator: PgCoordinator | None,
        *,
        check_interval: float = CHECK_INTERVAL,
        linger: float = LINGER,
    ) -> None:
        self.coordinator = coordinator
        self.clustered = coordinator is not None
        self.instance_id = coordinator.instance_id if coordinator is not None else new_instance_id()
        self.check_interval = check_interval
        self.linger = linger
        # Alone (SQLite), this process leads from the start.
        self.leading = not self.clustered
        self.leader_since: float | None = time.monotonic() if self.leading else None
        # Lock key -> (chats under it, last used, monotonic).
        self._held: dict[tuple[int, int], tuple[set[int], float]] = {}
        self._claiming = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._live: set[str] | None = None
        self._orphans_left = False
        # Set by the wiring.
        self.on_lead: Hook = _nothing
        self.on_follow: Hook = _nothing
        self.on_take: ChatHook = _nothing_for  # reload the chat's state before handling it
        self.on_release: Callable[[int], None] = lambda chat: None  # forget the chat's state
        self.look: ChatHook = _nothing_for  # take the chat if free, handle its pending updates
        self.sweep: Hook = _nothing  # take chats whose updates nobody handles
        self.busy: Callable[[int], bool] = lambda chat: False  # updates of the chat in flight
        # Leader: re-ask the people whose report step was written by a process now gone;
        # returns False while some could not be reached (their chat held elsewhere).
        self.on_orphans: Callable[[set[str]], Awaitable[bool]] = lambda live: _true()
        self.on_outbox_kick: Callable[[], None] = lambda: None

    # ------------------------------------------------------------------ chats

    def holds(self, chat: int) -> bool:
        """Whether this process handles the chat now (always, alone)."""
        return not self.clustered or chat_lock(chat) in self._held

    def touch(self, chat: int) -> None:
        entry = self._held.get(chat_lock(chat))
        if entry is not None:
            self._held[chat_lock(chat)] = (entry[0] | {chat}, time.monotonic())

    async def take(self, chat: int) -> Claim:
        """Handle the chat here if no other process does."""
        if not self.clustered:
            return Claim.HELD
        key = chat_lock(chat)
        async with self._claiming:
            entry = self._held.get(key)
            if entry is not None:
                self._held[key] = (entry[0] | {chat}, time.monotonic())
                if chat in entry[0]:
                    return Claim.HELD
            elif not await self._coordinator.try_lock(key):
                return Claim.ELSEWHERE
            else:
                self._held[key] = ({chat}, time.monotonic())
            await self.on_take(chat)
        return Claim.TAKEN

    async def _release_idle(self) -> None:
        now = time.monotonic()
        for key, (chats, used) in list(self._held.items()):
            if now - used < self.linger or any(self.busy(chat) for chat in chats):
                continue
            async with self._claiming:
                if self._held.get(key, (None, None))[1] != used:
                    continue  # used meanwhile
                for chat in chats:
                    self.on_release(chat)
                del self._held[key]
                await self._coordinator.unlock(key)
            for chat in chats:
                await self.look(chat)

    # ------------------------------------------------------------------ leadership

    @property
    def _coordinator(self) -> PgCoordinator:
        assert self.coordinator is not None
        return self.coordinator

    async def start(self) -> None:
        """Connect, listen, and keep electing (in the background) until stop()."""
        if self.coordinator is None:
            return
        await self.coordinator.listen(OUTBOX_CHANNEL, lambda _payload: self._outbox_kicked())
        await self.coordinator.listen(INBOX_CHANNEL, self._inbox_told)
        await self.coordinator.connect()
        await self._round()
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="cluster")

    async def stop(self) -> None:
        # The flag as well as the cancel: on Python 3.11, asyncio.wait_for loses a cancellation
        # that arrives as what it waits for completes (asyncpg's connect may use it); the round
        # then returns, and the loop must not go on with stop() waiting for it.
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.coordinator is not None:
            await self.coordinator.close()

    async def _run(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self.check_interval)
            try:
                await self._round()
            except (OSError, RuntimeError, ValueError, LookupError, AttributeError, TypeError) as exc:
                # A fault of ours or of the database in one round must not end the elections.
                log.error("cluster: round failed: %s: %s", type(exc).__name__, exc, exc_info=exc)

    async def _round(self) -> None:
        coordinator = self._coordinator
        try:
            if not coordinator.connected:
                await coordinator.connect()
                log.info("cluster: connected again as %s", self.instance_id)
            if self.leading:
                await coordinator.ping()
            elif await coordinator.try_lock(LEADER_LOCK):
                await self._lead()
            if self.leading:
                await self._watch()
            await self._release_idle()
            await self.sweep()
        except CoordinationLost as exc:
            log.warning("cluster: connection to the database lost (%s); leadership and chats let go", exc)
            await self._lost()

    async def _lead(self) -> None:
        self.leading = True
        self.leader_since = time.monotonic()
        self._live = None
        log.info("cluster: %s leads (polling, nudges, dispatch, digests, draft expiry)", self.instance_id)
        await self.on_lead()

    async def _watch(self) -> None:
        """Leader: when a process is gone, re-ask the people whose step it wrote last."""
        live = await self._coordinator.live_instances()
        gone = self._live is None or bool(self._live - live)
        if gone:
            log.debug("cluster: processes alive %s (before: %s)", sorted(live), sorted(self._live or ()))
        self._live = live
        if gone or self._orphans_left:
            self._orphans_left = not await self.on_orphans(live)

    async def _lost(self) -> None:
        was_leading = self.leading
        self.leading = False
        self.leader_since = None
        for chats, _used in self._held.values():
            for chat in chats:
                self.on_release(chat)
        self._held.clear()
        await self._coordinator.close()
        if was_leading:
            await self.on_follow()

    # ------------------------------------------------------------------ wake-ups

    def kick_outbox(self) -> None:
        """Something was queued: the dispatcher runs now, here if leading, else on the leader."""
        if self.leading:
            self.on_outbox_kick()
        elif self.coordinator is not None:
            _background(self.coordinator.notify(OUTBOX_CHANNEL), "outbox wake-up")

    def tell_holder(self, chat: int) -> None:
        """An update of a chat another process handles was stored here: wake that process."""
        if self.coordinator is not None:
            _background(self.coordinator.notify(INBOX_CHANNEL, str(chat)), "inbox wake-up")

    def _outbox_kicked(self) -> None:
        if self.leading:
            self.on_outbox_kick()

    def _inbox_told(self, payload: str) -> None:
        with contextlib.suppress(ValueError):
            chat = int(payload)
            _background(self.look(chat), "inbox look")


async def _true() -> bool:
    return True


_tasks: set[asyncio.Task[None]] = set()


def _background(coroutine: Awaitable[None], what: str) -> None:
    async def run() -> None:
        try:
            await coroutine
        except CoordinationLost as exc:
            log.warning("cluster: %s not sent: %s", what, exc)

    task = asyncio.create_task(run())
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
