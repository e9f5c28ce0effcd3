"""How updates reach the handlers: stored first, confirmed to Telegram after, handled in order
per chat, each once.

python-telegram-bot's Updater confirms a batch of updates (the next getUpdates offset) before
their handlers run, so a kill -9 in between lost them; and when one update could not be parsed
it fetched the same batch again forever. InboxUpdater takes its place (`tiendo run`, polling
or webhook): every update is stored raw in the inbox table (bot/services/inbox.py) before the
offset moves past it or the webhook answers 200, then parsed and put on the Application's
queue. The handlers run it with its HandledMark set (storage/handled.py): its first write
transaction records it done, so after a crash at any moment the next start handles what is
still pending, oldest first, and nothing twice. An update the library cannot parse is logged
once with its id, kept (raw) as failed, and skipped.

With several processes on one PostgreSQL database (bot/cluster.py), an update is handled by
the process that holds its chat: the one that stores it hands it over directly if it holds the
chat or can take it, and otherwise wakes the holder (NOTIFY), which reads the chat's pending
updates from the inbox; a sweep takes the chats nobody handles (their process died).

Updates of different chats run concurrently; updates of one chat run one after another.
PTB's ConversationHandler records the new step only after the handler that answered has
returned. With plain concurrent updates, a quick user's next answer (sent as soon as the
question arrives) can be processed before that, find no conversation step and be lost. Holding
each chat's updates in order keeps a conversation sequential while other people's updates go
on in parallel.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dtm
import json
import logging
import ssl
import time
from collections.abc import Awaitable, Mapping, Sequence
from http import HTTPStatus
from pathlib import Path
from typing import Any

import tornado.web
from telegram import Bot, Update
from telegram.error import RetryAfter, TelegramError
from telegram.ext import BaseUpdateProcessor, ExtBot, Updater
from telegram.ext._utils.webhookhandler import WebhookServer

from bot import metrics
from bot.cluster import Claim, Cluster
from bot.services.inbox import InboxService, StoredUpdate, update_id_of, update_kind
from storage.handled import handling

log = logging.getLogger(__name__)

# Waits between failed getUpdates calls: doubled after each failure up to the last.
_BACKOFF = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


def chat_key(update: object) -> int | None:
    """The chat whose updates must run in order (its user's when it has no chat): the same
    key as the inbox's chat_id column."""
    if isinstance(update, Update):
        if update.effective_chat is not None:
            return update.effective_chat.id
        if update.effective_user is not None:
            return update.effective_user.id
    return None


class UpdateInbox:
    """Between the inbox table and PTB: stores what arrives, feeds the Application's queue,
    and marks each update once its handlers are through."""

    def __init__(
        self, service: InboxService, bot: Bot, queue: asyncio.Queue[object], cluster: Cluster | None = None
    ) -> None:
        self.service = service
        self.bot = bot
        self.queue = queue
        self.cluster = cluster or Cluster(None)
        # Updates fed from the inbox and not yet handled, with their chat (others, e.g. tests
        # calling Application.process_update, are not marked).
        self._fed: dict[int, int] = {}
        self._in_flight: dict[int, int] = {}  # chat -> updates fed and not yet through
        self.cluster.busy = lambda chat: bool(self._in_flight.get(chat))
        self.cluster.look = self.look
        self.cluster.sweep = self.sweep
        # Their kind and when they were fed, for the step latency (bot/metrics.py).
        self._arrived: dict[int, tuple[str, float]] = {}

    async def accept(self, payloads: Sequence[Mapping[str, Any]]) -> int:
        """Store the updates, then hand the new ones to the handlers; how many were new.
        Raises if they could not be stored (then they must not be confirmed)."""
        new = await self.service.store(payloads)
        if not self.cluster.clustered:
            for stored in new:
                await self._feed(stored)
            return len(new)
        by_chat: dict[int, list[StoredUpdate]] = {}
        for stored in new:
            by_chat.setdefault(stored.chat, []).append(stored)
        for chat, updates in by_chat.items():
            claim = await self.cluster.take(chat)
            if claim is Claim.TAKEN:
                await self._take_over(chat)
            elif claim is Claim.HELD:
                for stored in updates:
                    await self._feed(stored)
            else:
                self.cluster.tell_holder(chat)
        return len(new)

    async def look(self, chat: int) -> None:
        """Several processes: if the chat has updates to handle, take it if no process handles
        it, and hand over those not handed over yet (woken by NOTIFY, or after letting the chat
        go: an update may have come meanwhile)."""
        if self.cluster.holds(chat) or await self.service.pending_of(chat):
            await self.claim(chat)

    async def claim(self, chat: int) -> tuple[Claim, int]:
        """Take the chat if no process handles it, and hand over its pending updates not handed
        over yet; how it stands and how many updates were handed over."""
        claim = await self.cluster.take(chat)
        if claim is Claim.TAKEN:
            pending = await self.service.take_chat(chat)
        elif claim is Claim.HELD:
            pending = await self.service.pending_of(chat)
        else:
            return claim, 0
        fed = 0
        for stored in pending:
            fed += await self._feed(stored)
        log.debug("chat %s %s; updates handed over %s of %s", chat, claim.value, fed, len(pending))
        return claim, fed

    async def sweep(self) -> None:
        """Several processes: take the chats with pending updates that no process handles (and
        hand over what a lost wake-up left behind in those this process handles)."""
        for chat in await self.service.pending_chats():
            await self.claim(chat)

    async def _take_over(self, chat: int) -> None:
        for stored in await self.service.take_chat(chat):
            await self._feed(stored)

    async def replay(self) -> int:
        """At start-up, before anything new: hand over what is still pending, oldest first.
        (Several processes: each chat's pending updates go to the process that takes it.)"""
        if self.cluster.clustered:
            return 0
        pending = await self.service.restart()
        if pending:
            log.info("inbox: %s updates received before the last stop are handled now", len(pending))
        for stored in pending:
            await self._feed(stored)
        return len(pending)

    async def _feed(self, stored: StoredUpdate) -> int:
        """Hand the update to the handlers (1), unless handed over already (0)."""
        if stored.update_id in self._fed:
            return 0  # handed over already, still under way
        try:
            update = Update.de_json(stored.payload, self.bot)
        except Exception as exc:  # whatever the library cannot read must not stop the bot
            log.error(
                "update %s cannot be read (%s: %s); kept in the inbox as failed, skipped",
                stored.update_id,
                type(exc).__name__,
                exc,
            )
            await self.service.fail(stored.update_id, f"unreadable: {type(exc).__name__}: {exc}"[:2000])
            metrics.UPDATES.labels(result="unreadable").inc()
            return 0
        if isinstance(self.bot, ExtBot):
            self.bot.insert_callback_data(update)
        self._fed[update.update_id] = stored.chat
        self._in_flight[stored.chat] = self._in_flight.get(stored.chat, 0) + 1
        self._arrived[update.update_id] = (update_kind(stored.payload), time.monotonic())
        await self.queue.put(update)
        return 1

    async def run(self, update: object, coroutine: Awaitable[Any]) -> None:
        """Run the update's handlers; record it handled (or failed) when they are through."""
        if not isinstance(update, Update) or update.update_id not in self._fed:
            await coroutine
            return
        mark = self.service.handling(update.update_id)
        try:
            with handling(mark):
                await coroutine
        finally:
            kind, arrived = self._arrived.pop(update.update_id)
            metrics.STEP_SECONDS.labels(kind=kind).observe(time.monotonic() - arrived)
            try:
                await self.service.finish(mark)
            except Exception as exc:  # the database went away: handled again after a restart
                log.warning("update %s handled but not recorded as handled: %s", update.update_id, exc)
            finally:
                # Only once recorded: a look at the chat's pending updates meanwhile must not
                # hand it over again.
                chat = self._fed.pop(update.update_id, 0)
                left = self._in_flight.get(chat, 1) - 1
                if left > 0:
                    self._in_flight[chat] = left
                else:
                    self._in_flight.pop(chat, None)
                self.cluster.touch(chat)


class PerChatUpdateProcessor(BaseUpdateProcessor):
    def __init__(self, max_concurrent_updates: int, inbox: UpdateInbox | None = None) -> None:
        super().__init__(max_concurrent_updates)
        self.inbox = inbox
        self._locks: dict[object, asyncio.Lock] = {}
        self._waiting: dict[object, int] = {}

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        key = chat_key(update)
        if key is None:
            await self._run(update, coroutine)
            return
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._waiting[key] = self._waiting.get(key, 0) + 1
        try:
            # A chat's later updates wait here holding a slot; a person rarely has more
            # than one or two updates in flight, so slots stay free for everyone else.
            async with lock:
                await self._run(update, coroutine)
        finally:
            self._waiting[key] -= 1
            if not self._waiting[key]:
                del self._waiting[key]
                del self._locks[key]

    async def _run(self, update: object, coroutine: Awaitable[Any]) -> None:
        if self.inbox is None:
            await coroutine
        else:
            await self.inbox.run(update, coroutine)

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None


class _Outage:
    """getUpdates failing: logged once when it starts and once when it ends."""

    def __init__(self) -> None:
        self.failures = 0

    def failed(self, exc: Exception) -> float:
        if not self.failures:
            log.warning("getUpdates failed (%s: %s); trying again", type(exc).__name__, exc)
        self.failures += 1
        if isinstance(exc, RetryAfter):
            retry = exc.retry_after
            return retry.total_seconds() if isinstance(retry, dtm.timedelta) else float(retry)
        return _BACKOFF[min(self.failures, len(_BACKOFF)) - 1]

    def succeeded(self) -> None:
        if self.failures:
            log.info("getUpdates works again after %s failed attempts", self.failures)
            self.failures = 0


def _seconds(timeout: object) -> float:
    if isinstance(timeout, dtm.timedelta):
        return timeout.total_seconds()
    return float(timeout) if isinstance(timeout, int | float) else 10.0


class InboxUpdater(Updater):
    """PTB's Updater, storing every update in the inbox before confirming it."""

    def __init__(self, bot: Bot, update_queue: asyncio.Queue[object], inbox: UpdateInbox) -> None:
        super().__init__(bot, update_queue)
        self.inbox = inbox
        self._poller: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._offset: int | None = None
        self._poll_params: dict[str, Any] = {}
        # More paths for the webhook's listener (bot/health.py: /healthz, /readyz, /metrics).
        self.extra_routes: list[Any] = []

    async def _start_polling(  # type: ignore[override]
        self,
        poll_interval: float,
        timeout: object,
        bootstrap_retries: int,
        drop_pending_updates: bool | None,
        allowed_updates: Sequence[str] | None,
        ready: asyncio.Event,
        error_callback: object,
    ) -> None:
        await self._bootstrap(
            bootstrap_retries,
            drop_pending_updates=drop_pending_updates,
            webhook_url="",
            allowed_updates=None,
        )
        await self.inbox.replay()
        self._stopping.clear()
        self._poll_params = {"timeout": _seconds(timeout)}
        if allowed_updates is not None:
            self._poll_params["allowed_updates"] = list(allowed_updates)
        self._poller = asyncio.create_task(self._poll(poll_interval), name="InboxUpdater:poll")
        metrics.INTAKE.started("polling", self._poll_params["timeout"])
        ready.set()

    async def _get_updates(self, timeout: float) -> list[Any]:
        data = dict(self._poll_params, timeout=timeout)
        if self._offset is not None:
            data["offset"] = self._offset
        # Bot._post, not Bot.get_updates: the raw JSON is stored as it came, and an update
        # the library cannot parse must not fail the whole batch.
        result = await self.bot._post("getUpdates", data, read_timeout=timeout + 10.0)
        return result if isinstance(result, list) else []

    async def _poll(self, poll_interval: float) -> None:
        outage = _Outage()
        while not self._stopping.is_set():
            if not self.inbox.cluster.leading:  # several processes: only the leader polls
                await self._pause(0.2)
                continue
            fetch = asyncio.ensure_future(self._get_updates(self._poll_params["timeout"]))
            stop = asyncio.ensure_future(self._stopping.wait())
            await asyncio.wait((fetch, stop), return_when=asyncio.FIRST_COMPLETED)
            stop.cancel()
            if not fetch.done():  # stopping: what this poll would bring comes again next time
                fetch.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await fetch
                return
            try:
                payloads = fetch.result()
                await self._take(payloads)
            except (TelegramError, OSError, RuntimeError) as exc:
                # RuntimeError/OSError: the database could not store them; they are not
                # confirmed, so Telegram sends them again.
                await self._pause(outage.failed(exc))
                continue
            outage.succeeded()
            metrics.INTAKE.polled()
            if poll_interval:
                await self._pause(poll_interval)

    async def _take(self, payloads: list[Any]) -> None:
        """Store what getUpdates brought, then move the offset past it."""
        if not payloads:
            return
        valid = [p for p in payloads if update_id_of(p) is not None]
        if len(valid) < len(payloads):
            log.error("getUpdates brought %s items that are not updates; skipped", len(payloads) - len(valid))
        if valid:
            await self.inbox.accept(valid)
            self._offset = max(p["update_id"] for p in valid) + 1

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _stop_polling(self) -> None:
        if self._poller is None:
            return
        self._stopping.set()
        with contextlib.suppress(asyncio.CancelledError):
            await self._poller
        self._poller = None
        # Confirm what is stored, so that the next start is not sent it again (harmless
        # if it were: an update already stored is not stored or handled twice).
        if self._offset is not None:
            with contextlib.suppress(TelegramError, OSError):
                await self._get_updates(0)

    async def _start_webhook(  # type: ignore[override]
        self,
        listen: str,
        port: int,
        url_path: str,
        bootstrap_retries: int,
        allowed_updates: Sequence[str] | None,
        cert: str | Path | None = None,
        key: str | Path | None = None,
        drop_pending_updates: bool | None = None,
        webhook_url: str | None = None,
        ready: asyncio.Event | None = None,
        ip_address: str | None = None,
        max_connections: int = 40,
        secret_token: str | None = None,
        unix: Any = None,
    ) -> None:
        if not url_path.startswith("/"):
            url_path = f"/{url_path}"
        app = tornado.web.Application(
            [
                (rf"{url_path}/?", InboxWebhookHandler, {"inbox": self.inbox, "secret_token": secret_token}),
                *self.extra_routes,
            ],
            log_function=lambda handler: None,
        )
        ssl_ctx = None
        if cert is not None and key is not None:
            ssl_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ssl_ctx.load_cert_chain(cert, key)
        self._httpd = WebhookServer(listen, port, app, ssl_ctx, unix)  # type: ignore[arg-type]
        if not webhook_url:
            protocol = "https" if ssl_ctx else "http"
            webhook_url = self._gen_webhook_url(protocol, listen, port, url_path)
        await self._bootstrap(
            cert=Path(cert).read_bytes() if cert else None,
            max_retries=bootstrap_retries,
            drop_pending_updates=drop_pending_updates,
            webhook_url=webhook_url,
            allowed_updates=allowed_updates,
            ip_address=ip_address,
            max_connections=max_connections,
            secret_token=secret_token,
        )
        await self.inbox.replay()
        metrics.INTAKE.started("webhook")
        await self._httpd.serve_forever(ready=ready)


class InboxWebhookHandler(tornado.web.RequestHandler):
    """Telegram's POST of one update: stored, then answered 200 (Telegram sends it again
    until it gets a 200). A body that is not an update is answered 400, never 500."""

    SUPPORTED_METHODS = ("POST",)  # type: ignore[assignment]

    def initialize(self, inbox: UpdateInbox, secret_token: str | None) -> None:
        self.inbox = inbox
        self.secret_token = secret_token

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", 'application/json; charset="utf-8"')

    async def post(self) -> None:
        if self.request.headers.get("Content-Type") != "application/json":
            raise tornado.web.HTTPError(HTTPStatus.FORBIDDEN)
        if self.secret_token is not None and self.request.headers.get("X-Telegram-Bot-Api-Secret-Token") != (
            self.secret_token
        ):
            raise tornado.web.HTTPError(HTTPStatus.FORBIDDEN)
        try:
            payload = json.loads(self.request.body)
        except ValueError:  # not JSON, or not UTF-8
            payload = None
        update_id = update_id_of(payload)
        if update_id is None:
            log.warning("webhook: a POST whose body is not an update; answered 400")
            raise tornado.web.HTTPError(HTTPStatus.BAD_REQUEST)
        try:
            await self.inbox.accept([payload])
        except (OSError, RuntimeError) as exc:  # not stored: Telegram will send it again
            log.warning("webhook: update %s not stored (%s); answered 503", update_id, exc)
            raise tornado.web.HTTPError(HTTPStatus.SERVICE_UNAVAILABLE) from None
        metrics.INTAKE.received()
        self.set_status(HTTPStatus.OK)

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if not isinstance(value, tornado.web.HTTPError):
            log.error("webhook: %s: %s", typ.__name__ if typ else "error", value)
