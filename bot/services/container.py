"""The Services container: every service a handler, job, the CLI or the demo may use, built
once per process by build_services (the wiring in bot/app.py hands it to the application)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from bot.clock import Clock, SystemClock
from bot.config import Config
from bot.i18n import I18n
from bot.services.admin import AdminService
from bot.services.audit import AuditService
from bot.services.calendar import WorkCalendar
from bot.services.digest import DigestService
from bot.services.drafts import DraftService
from bot.services.evidence import EvidenceStore
from bot.services.inbox import InboxService
from bot.services.invites import InviteService
from bot.services.notices import NoticeService
from bot.services.nudges import NudgeService
from bot.services.outbox import OutboxService, Wording
from bot.services.overview import OverviewService
from bot.services.pacing import SendPacer
from bot.services.people import PeopleService
from bot.services.periods import PeriodRule, period_rule
from bot.services.plans import PlanLimits
from bot.services.programme import ProgrammeService
from bot.services.reporting import ReportingService
from bot.services.tasks import HistoryService, TaskService
from storage.db import Database


@dataclass
class Services:
    """Everything a handler or job may use, created once per process."""

    config: Config
    db: Database
    clock: Clock
    i18n: I18n
    periods: PeriodRule
    people: PeopleService
    invites: InviteService
    outbox: OutboxService
    programme: ProgrammeService
    reporting: ReportingService
    admin: AdminService
    overview: OverviewService
    digest: DigestService
    tasks: TaskService
    history: HistoryService
    drafts: DraftService
    evidence: EvidenceStore
    notices: NoticeService
    audit: AuditService
    calendar: WorkCalendar
    nudges: NudgeService
    pacer: SendPacer
    inbox: InboxService


def build_services(
    config: Config,
    *,
    wording: Callable[[I18n], Wording],
    clock: Clock | None = None,
    db: Database | None = None,
    i18n: I18n | None = None,
) -> Services:
    """Every service, once. `wording` makes, from the catalogs, how the texts of queued messages
    are worded: the surface's (handlers.wording.TelegramWording), which escapes what people typed.
    `i18n`: the catalogs the caller has loaded already (the CLI's), so a process holds one copy."""
    db = db or Database(config.database_url, echo=config.database.echo)
    clock = clock or SystemClock()
    periods = period_rule(config)
    i18n = i18n or I18n(config.bot.language)
    word = wording(i18n)
    outbox = OutboxService(db, clock)
    programme = ProgrammeService(db, PlanLimits(**dataclasses.asdict(config.imports)))
    people = PeopleService(db, frozenset(config.bot.admins))
    calendar = WorkCalendar(config)
    nudge_service = NudgeService(config, db, clock, i18n, calendar, periods, outbox, word)
    return Services(
        config=config,
        db=db,
        clock=clock,
        i18n=i18n,
        periods=periods,
        people=people,
        invites=InviteService(db, clock),
        outbox=outbox,
        programme=programme,
        reporting=ReportingService(db, clock, periods, on_task_changed=nudge_service.on_task_changed),
        admin=AdminService(
            db, clock, config, i18n, outbox, programme, word, on_task_changed=nudge_service.on_task_changed
        ),
        overview=OverviewService(db, clock, config),
        digest=DigestService(config, db, clock, i18n, periods),
        tasks=TaskService(db, config.tz),
        history=HistoryService(db),
        drafts=DraftService(db, clock),
        evidence=EvidenceStore(
            config.data_path / "evidence",
            config.reporting.evidence_max_mb,
            config.reporting.evidence_extensions,
        ),
        notices=NoticeService(i18n, people, word),
        audit=AuditService(db),
        calendar=calendar,
        nudges=nudge_service,
        pacer=SendPacer(config.nudges.max_per_second),
        inbox=InboxService(db, clock),
    )
