"""The one place that wires everything: services and the Telegram application.

Nothing here runs at import time; build_application(config) takes the services from
build_services (bot/services/container.py) and creates the PTB Application (whose JobQueue is
the only scheduler).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Coroutine
from functools import cache, partial
from typing import Any

import httpx
from telegram import Update
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    ContextTypes,
    ConversationHandler,
    Defaults,
    JobQueue,
    MessageHandler,
    filters,
)
from telegram.request import BaseRequest, HTTPXRequest

from bot import metrics
from bot.bot_api_http import BotAPIRequest
from bot.cluster import Claim, Cluster
from bot.config import Config
from bot.context import BotData, Context
from bot.health import HealthServer, routes
from bot.i18n import I18n
from bot.jobs.digest import CHECK_INTERVAL, send_due_digest
from bot.jobs.dispatch import dispatch_outbox
from bot.jobs.drafts import close_expired_drafts
from bot.jobs.inbox import PRUNE_INTERVAL, prune_inbox
from bot.jobs.nudges import plan_nudges
from bot.persistence import DatabasePersistence
from bot.services.container import Services, build_services
from bot.updates import InboxUpdater, PerChatUpdateProcessor, UpdateInbox
from handlers import admin, callbacks, modules, report
from handlers.common import refuse_callback
from handlers.help import set_default_menu
from handlers.wording import TelegramWording
from storage.cluster import PgCoordinator, is_postgresql, new_instance_id

log = logging.getLogger(__name__)


async def _private_only(update: Update, context: Context) -> None:
    """Answer anything from a group with a request to talk privately, and show nothing."""
    message = update.effective_message
    text = message.text if message else None
    # Only answer what was addressed to the bot (a command), so a busy group is not spammed.
    if message is not None and text and text.startswith("/"):
        await message.reply_text(context.services.i18n.t(None, "start.private_only"))
    raise ApplicationHandlerStop


async def _refuse_oversize(update: Update, context: Context) -> None:
    """Callback data longer than Telegram allows was not made by this bot: refuse it."""
    await refuse_callback(update, context, "oversize callback data")
    raise ApplicationHandlerStop


async def _refuse_unknown_button(update: Update, context: Context) -> None:
    """A button no flow recognises (garbage or forged): refuse it, audit it, change nothing."""
    await refuse_callback(update, context, "unknown callback data")


async def _note_error(update: object, context: Context) -> None:
    """Log errors we cause once, with the update's id; tell the person that nothing was
    changed (never a traceback); the update is kept in the inbox as failed."""
    error = context.error
    if not isinstance(update, Update):
        log.error("error outside any update: %s: %s", type(error).__name__, error, exc_info=error)
        return
    log.error("update %s failed: %s: %s", update.update_id, type(error).__name__, error, exc_info=error)
    if isinstance(error, Exception):
        context.services.inbox.note_failure(update.update_id, error)
    chat = update.effective_chat
    if chat is None or chat.type != chat.PRIVATE:
        return
    try:
        await context.bot.send_message(chat.id, context.services.i18n.t(None, "error.nothing_changed"))
    except TelegramError as exc:
        log.debug("could not tell chat %s about the failure: %s", chat.id, exc)


async def _announce_ready(context: Context) -> None:
    """Log the one ready line, once polling or the webhook and the job queue are running."""
    services = context.services
    log.info(
        "tiendo ready: @%s, %s, database %s",
        context.bot.username,
        services.config.telegram.mode,
        services.db.safe_url(),
    )
    if sys.flags.optimize < 2:  # after the ready line: a refusal before it stays one line
        log.info(
            "PYTHONOPTIMIZE=2 is not set: the libraries' docstrings stay in memory (about 7 MiB); "
            "./dev.sh run and deploy/systemd set it"
        )


async def _on_startup(application: Application, health: HealthServer | None = None) -> None:  # type: ignore[type-arg]
    services: Services = application.bot_data.services
    if health is not None:  # first: alive (and saying it is not ready yet) during the rest
        health.start()
    cluster: Cluster = application.bot_data.cluster
    if cluster.clustered:
        # Several processes (PostgreSQL): what follows in the else branch is the leader's, done
        # when this process is elected (now or when the leader dies); chats are re-asked by
        # the leader when the process that wrote their step is gone.
        _wire_cluster(application, cluster)
        await cluster.start()
    else:
        # Claims left by a process that died mid-send go back to pending: sent now, not lost.
        released = await services.outbox.release_claims()
        if released:
            log.info("outbox: %s interrupted messages will be sent again", released)
        # Whoever was in the middle of a report gets their current question again, once.
        await report.reask_after_restart(application)
    job_queue = application.job_queue
    assert job_queue is not None
    # Jobs run only after the updater has started, so this fires when updates are flowing.
    job_queue.run_once(_announce_ready, 0, name="ready")
    if cluster.clustered:
        # The leader's first round (planning, then the dispatcher) is lead()'s, in _wire_cluster.
        _start_dispatch_and_digests(application)
    else:
        # What came due while the bot was down is planned once updates flow, not before the
        # first poll: nobody waits for it to be answered (it scans every open task: seconds on
        # a national install). The dispatcher starts after it, so that the latest missed nudge
        # per task and person goes out once and superseded ones are cancelled, never sent.
        job_queue.run_once(_plan_missed_then_dispatch, 0, name="plan_missed")
    interval = services.config.nudges.plan_interval
    _singleton(job_queue, plan_nudges, "plan_nudges", interval, first=interval)
    _singleton(job_queue, prune_inbox, "prune_inbox", PRUNE_INTERVAL, first=60)
    check = services.config.reporting.draft_check_interval
    _singleton(job_queue, close_expired_drafts, "close_expired_drafts", check, first=check)
    # The commands' menu is set once updates flow too: nobody waits for Telegram's answers.
    job_queue.run_once(_set_menu, 0, name="menu")


Job = Callable[[Context], Coroutine[Any, Any, None]]
DISPATCHER = "dispatch_outbox"  # the name of the dispatcher's repeating job


async def _set_menu(context: Context) -> None:
    await set_default_menu(context.bot, context.services.i18n)


async def _plan_missed_then_dispatch(context: Context) -> None:
    """A process alone, at start-up: plan what came due while it was down, then start the
    dispatcher and the digest check (see _on_startup)."""
    try:
        await plan_nudges(context)
    finally:
        _start_dispatch_and_digests(context.application)


def _start_dispatch_and_digests(application: Application) -> None:  # type: ignore[type-arg]
    """The dispatcher half a second from now (the questions asked again at start-up go out
    first) and the digest check after it: it runs at start-up too, so that a schedule passed
    while the bot was down is caught up. Both on the leader only (alone, this process leads)."""
    job_queue = application.job_queue
    assert job_queue is not None
    services: Services = application.bot_data.services
    _singleton(job_queue, dispatch_outbox, DISPATCHER, services.config.nudges.dispatch_interval, first=0.5)
    _singleton(job_queue, send_due_digest, "digest", CHECK_INTERVAL, first=1.0)


def _singleton(job_queue: JobQueue, job: Job, name: str, interval: float, *, first: float) -> None:  # type: ignore[type-arg]
    """A repeating job run on the leader only (alone, this process leads), one run at a time."""
    job_queue.run_repeating(
        _leader_only(job),
        interval=interval,
        first=first,
        name=name,
        job_kwargs={"max_instances": 1, "coalesce": True},
    )


def _leader_only(job: Job) -> Job:
    """The job, run only while this process leads."""

    async def run(context: Context) -> None:
        if context.bot_data.cluster.leading:
            await job(context)

    run.__name__ = run.__qualname__ = job.__name__
    return run


def _wire_cluster(application: Application, cluster: Cluster) -> None:  # type: ignore[type-arg]
    """What the cluster does here when this process leads, takes a chat or lets it go."""
    services: Services = application.bot_data.services
    inbox: UpdateInbox = application.bot_data.inbox

    async def lead() -> None:
        metrics.INTAKE.polls = True  # polling mode: this process polls now (readiness waits for it)
        context = Context.from_application(application)
        # The dead leader's claims go back to pending: sent now, not lost (at least once).
        released = await services.outbox.release_claims()
        if released:
            log.info("outbox: %s interrupted messages will be sent again", released)
        await plan_nudges(context)
        job_queue = application.job_queue
        assert job_queue is not None
        # As at a start alone: the dispatcher half a second after planning (the re-asking of
        # the dead process's questions comes first, in the same round), the digest check after.
        job_queue.run_once(dispatch_outbox, 0.5)
        job_queue.run_once(send_due_digest, 1.0)

    async def take(chat: int) -> bool | None:
        # Taken with nothing pending: the question may never have been shown (re-ask). With
        # updates pending, handling them shows the next question (None: do not re-ask).
        claim, fed = await inbox.claim(chat)
        if claim is Claim.ELSEWHERE:
            return False
        return None if fed or claim is Claim.HELD else True

    async def reload(chat: int) -> None:
        forget(chat)
        for handler in _conversations(application, persistent=True):
            stored = await services.drafts.conversation_of(chat, str(handler.name))
            if stored is not None:
                handler._conversations.update_no_track({stored[0]: stored[1]})  # type: ignore[attr-defined]

    def forget(chat: int) -> None:
        # Every flow's step in this chat as this process last knew it: the report's comes back
        # from the database when the chat is taken again; a flow kept in memory only
        # (/task_add) starts over as after a restart (its answers are in the database).
        services.drafts.forget(chat)
        for handler in _conversations(application):
            handler._conversations.pop((chat, chat), None)

    async def follow() -> None:
        metrics.INTAKE.polls = False  # another process polls; this one serves from the inbox

    metrics.INTAKE.polls = cluster.leading
    metrics.set_leader_probe(lambda: cluster.leading)
    cluster.on_lead = lead
    cluster.on_follow = follow
    cluster.on_take = reload
    cluster.on_release = forget
    cluster.on_orphans = lambda live: report.reask_orphans(application, live, take)


def _conversations(
    application: Application,  # type: ignore[type-arg]
    *,
    persistent: bool = False,
) -> list[ConversationHandler]:  # type: ignore[type-arg]
    """The conversation handlers (only those kept in the database: persistent)."""
    return [
        handler
        for group in application.handlers.values()
        for handler in group
        if isinstance(handler, ConversationHandler) and (handler.persistent or not persistent)
    ]


def _run_dispatcher(application: Application) -> None:  # type: ignore[type-arg]
    job_queue = application.job_queue
    # Before the dispatcher has started (a process alone plans what came due while it was
    # down first), what was queued goes out with its first run.
    if job_queue is not None and job_queue.get_jobs_by_name(DISPATCHER):
        job_queue.run_once(dispatch_outbox, 0)


def kick_dispatcher(application: Application) -> None:  # type: ignore[type-arg]
    """Send what was just queued without waiting for the next dispatcher run (on the leader:
    alone, this process)."""
    application.bot_data.cluster.kick_outbox()


async def _on_shutdown(application: Application) -> None:  # type: ignore[type-arg]
    # Stopped cleanly: every update taken was handled and every question saved was sent, so
    # the next start need not ask this process's reports under way again (issue 16).
    try:
        await application.bot_data.services.drafts.stopped_cleanly()
    except Exception as exc:  # the database may be what the process is stopping for
        log.warning("clean stop not recorded (reports under way will be asked again): %s", exc)
    await application.bot_data.cluster.stop()
    await application.bot_data.services.db.dispose()


PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


def _bot_api_requests(
    request: BaseRequest | None, updates_request: BaseRequest | None
) -> tuple[BaseRequest, BaseRequest]:
    """The two HTTP clients (answers; getUpdates): those given, and for those not, tiendo's
    kept-alive client (bot/bot_api_http.py; a pool of 256 connections; one), or, when the
    environment sets a proxy, python-telegram-bot's httpx clients, which honour it. Both share one
    TLS context, made at the first https connection: each would otherwise load the certificate
    bundle on its own (24 ms and 0.7 MiB a time)."""
    if request is not None and updates_request is not None:
        return request, updates_request
    tls = cache(httpx.create_ssl_context)
    if any(os.environ.get(name) for name in PROXY_VARIABLES):
        log.info("a proxy is set in the environment: Bot API calls go through httpx")
        return (
            request or HTTPXRequest(connection_pool_size=256, httpx_kwargs={"verify": tls()}),
            updates_request or HTTPXRequest(connection_pool_size=1, httpx_kwargs={"verify": tls()}),
        )
    return request or BotAPIRequest(256, tls=tls), updates_request or BotAPIRequest(1, tls=tls)


def build_application(
    config: Config,
    *,
    services: Services | None = None,
    request: BaseRequest | None = None,
    updates_request: BaseRequest | None = None,
    clustered: bool = False,
    i18n: I18n | None = None,
) -> Application:  # type: ignore[type-arg]
    """Create the bot: services, handlers and the job queue, configured but not started.
    clustered (`tiendo run`): on PostgreSQL, one of several processes (bot/cluster.py).
    i18n: the catalogs already loaded (`tiendo run`'s), for services built here."""
    # PTB 22 warns unless told that durations (RetryAfter.retry_after) may be timedeltas.
    os.environ.setdefault("PTB_TIMEDELTA", "1")
    services = services or build_services(config, wording=TelegramWording, i18n=i18n)
    processor = PerChatUpdateProcessor(config.telegram.concurrent_updates)
    health = HealthServer(services)
    builder = (
        ApplicationBuilder()
        .token(config.token)
        .base_url(config.telegram.api_base_url)
        .base_file_url(config.telegram.api_base_file_url)
        .context_types(ContextTypes(context=Context, bot_data=BotData))
        .defaults(Defaults(parse_mode=ParseMode.HTML, tzinfo=config.tz))
        .concurrent_updates(processor)
        # InboxUpdater (below) instead of PTB's, which confirms updates before handling them.
        .updater(None)
        .persistence(DatabasePersistence(services.drafts))
        .post_init(partial(_on_startup, health=health))
        .post_stop(health.stop)
        .post_shutdown(_on_shutdown)
    )
    if config.telegram.rate_limiter:
        builder = builder.rate_limiter(AIORateLimiter(max_retries=0))  # type: ignore[arg-type]
    request, updates_request = _bot_api_requests(request, updates_request)
    builder = builder.request(request).get_updates_request(updates_request)
    application = builder.build()
    application.bot_data.services = services
    cluster = Cluster(
        PgCoordinator(config.database_url, new_instance_id())
        if clustered and is_postgresql(config.database_url)
        else None
    )
    # Each draft names the process that wrote its step: re-asking after a restart skips those
    # of a process that stopped cleanly, and, with several processes, asks those of one that died.
    services.drafts.owner = cluster.instance_id
    if cluster.clustered:
        services.drafts.holds = cluster.holds
    application.bot_data.cluster = cluster
    cluster.on_outbox_kick = lambda: _run_dispatcher(application)
    application.bot_data.kick_dispatcher = lambda: kick_dispatcher(application)
    application.bot_data.callback_data = callbacks.for_action
    inbox = UpdateInbox(services.inbox, application.bot, application.update_queue, cluster)
    application.bot_data.inbox = inbox
    processor.inbox = inbox
    application.updater = InboxUpdater(application.bot, application.update_queue, inbox)
    application.updater.extra_routes = routes(services)  # webhook mode: beside the webhook

    application.add_handler(MessageHandler(filters.ChatType.GROUPS, _private_only), group=-1)
    # Plan files for /import are looked at in their own group, so that another flow waiting for
    # a file (report evidence) still sees every document.
    application.add_handlers(admin.document_handlers(), group=admin.DOCUMENT_GROUP)
    application.add_handler(CallbackQueryHandler(_refuse_oversize, pattern=callbacks.oversize), group=-1)
    for module in modules():
        for handler in module.handlers():
            application.add_handler(handler)
    # After every flow: /cancel with nothing to cancel, then only buttons no flow took.
    application.add_handlers(report.fallback_handlers())
    application.add_handler(CallbackQueryHandler(_refuse_unknown_button))
    application.add_error_handler(_note_error)
    return application
