"""What every area of chat administration shares: the errors an admin can fix (AdminError),
who acts (Actor), the plain results commands return, and AdminBase, the lookups and
formatting every area uses."""

from __future__ import annotations

import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.config import Config
from bot.i18n import I18n
from bot.services.outbox import OutboxService, Wording
from bot.services.plans import parse_deadline
from bot.services.programme import ProgrammeService
from storage.db import Database
from storage.models import AuditEntry, Task, Unit, User
from storage.repositories.audit import AuditRepository
from storage.repositories.tasks import TaskRepository
from storage.repositories.units import UnitRepository
from storage.repositories.users import UserRepository

# Fields /task_edit may change; deadline and units have their own commands (they notify).
EDITABLE_FIELDS = (
    "title",
    "group",
    "description",
    "legal_source",
    "expected_output",
    "target_value",
    "target_unit",
    "target_label",
)
ROLES = ("admin", "manager", "focal", "leader")
MAX_NAME = 300
MAX_TEXT = 2000


class AdminError(Exception):
    """A request the user can correct; `key` names the message under admin.error."""

    def __init__(self, key: str, **params: Any) -> None:
        super().__init__(key)
        self.key = key
        self.params = params


@dataclass(frozen=True)
class Actor:
    """Who acts: the Telegram user behind the update."""

    telegram_id: int
    first_name: str = ""
    last_name: str | None = None
    username: str | None = None

    @property
    def label(self) -> str:
        return f"tg:{self.telegram_id}"


@dataclass(frozen=True)
class UnitInfo:
    code: str
    name: str
    focal_points: int


@dataclass(frozen=True)
class TaskView:
    id: int
    code: str
    group: str
    title: str
    lead: str
    coordinating: tuple[str, ...]
    deadline: date | None
    expected_output: str
    target_value: float | None
    target_unit: str | None
    closed: bool = False


@dataclass(frozen=True)
class UserInfo:
    telegram_id: int
    name: str
    username: str | None
    roles: tuple[str, ...]  # "admin", "manager", "focal:VP", ...
    reachable: bool


@dataclass(frozen=True)
class Change:
    """What a command changed: the task (or user), and the values before and after."""

    subject: str
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)
    notified: int = 0


@dataclass(frozen=True)
class PendingExtension:
    id: int
    task_code: str
    old_deadline: date | None
    new_deadline: date
    reason: str
    state: str
    requester_telegram_id: int | None


@dataclass(frozen=True)
class AuditView:
    """One audit log entry, as /audit and /history show it."""

    at: datetime
    actor: str
    action: str
    entity: str
    entity_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    detail: str


def audit_view(entry: AuditEntry) -> AuditView:
    return AuditView(
        entry.at,
        entry.actor,
        entry.action,
        entry.entity,
        entry.entity_id,
        entry.before,
        entry.after,
        entry.detail,
    )


def clean(text: str) -> str:
    return unicodedata.normalize("NFC", text).strip()


def view(task: Task) -> TaskView:
    return TaskView(
        task.id,
        task.code,
        task.group.code,
        task.title,
        task.lead_unit.code,
        tuple(tu.unit.code for tu in task.coordinating),
        task.deadline,
        task.expected_output,
        task.target_value,
        task.target_unit,
        task.closed_at is not None,
    )


def task_values(task: Task) -> dict[str, Any]:
    return {
        "group": task.group.code,
        "title": task.title,
        "description": task.description,
        "legal_source": task.legal_source,
        "lead_unit": task.lead_unit.code,
        "coordinating_units": [tu.unit.code for tu in task.coordinating],
        "deadline": task.deadline.isoformat() if task.deadline else None,
        "expected_output": task.expected_output,
        "target_value": task.target_value,
        "target_unit": task.target_unit,
        "target_label": task.target_label,
    }


def parse_target(text: str) -> tuple[float | None, str | None]:
    """'85%' -> (85.0, '%'); '12' -> (12.0, None); '-' or '' -> (None, None)."""
    value = clean(text).replace(" ", "")
    if value in ("", "-", "0/0"):
        return None, None
    unit = "%" if value.endswith("%") else None
    number = value.rstrip("%").replace(",", ".")
    try:
        return float(number), unit
    except ValueError:
        raise AdminError("bad_number", value=text) from None


class AdminBase:
    """The state and lookups every area of administration shares (see AdminService)."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        config: Config,
        i18n: I18n,
        outbox: OutboxService,
        programme: ProgrammeService,
        word: Wording,
        on_task_changed: Callable[[int], Awaitable[object]] | None = None,
    ) -> None:
        self.db = db
        self.word = word  # the text of every message queued for someone (see Wording)
        # Called after a task's deadline, units or state changed, so that reminders planned
        # for the old state are re-planned at once (NudgeService.on_task_changed).
        self.on_task_changed = on_task_changed
        self.programme = programme
        self.clock = clock
        self.config = config
        self.i18n = i18n
        self.outbox = outbox
        self.config_admins = frozenset(config.bot.admins)

    # --- small helpers ----------------------------------------------------------------------

    def today(self) -> date:
        return self.clock.now().astimezone(self.config.tz).date()

    def fmt_date(self, day: date | None, lang: str | None = None) -> str:
        return self.i18n.date(lang, day) if day else self.i18n.t(lang, "admin.ongoing")

    def parse_date(self, text: str, *, force: bool = False, allow_ongoing: bool = True) -> date | None:
        """A deadline typed by a person: 31/12/2024 or 2024-12-31 (or 'ongoing'); not in the
        past unless forced (corrections)."""
        try:
            day = parse_deadline(text)
        except ValueError:
            raise AdminError("bad_date", value=text) from None
        if day is None:
            if not allow_ongoing:
                raise AdminError("bad_date", value=text)
            return None
        if day < self.today() and not force:
            raise AdminError("past_date", value=self.fmt_date(day))
        return day

    async def _actor_user(self, session: AsyncSession, actor: Actor) -> User:
        return await UserRepository(session).upsert(
            actor.telegram_id, actor.first_name, actor.last_name, actor.username
        )

    async def _task(self, session: AsyncSession, code: str, *, open_only: bool = True) -> Task:
        task = await TaskRepository(session).by_code(clean(code))
        if task is None:
            raise AdminError("unknown_task", code=code)
        if open_only and task.closed_at is not None:
            raise AdminError("task_closed", code=task.code)
        return task

    async def _task_by_id(self, session: AsyncSession, task_id: int) -> Task:
        task = await TaskRepository(session).by_id(task_id)
        assert task is not None
        return task

    async def _units(self, session: AsyncSession, codes: list[str]) -> list[Unit]:
        codes = [clean(c) for c in codes]
        found = await UnitRepository(session).by_codes(codes)
        missing = [c for c in codes if c not in found]
        if missing:
            raise AdminError("unknown_unit", code=", ".join(missing))
        return [found[c] for c in dict.fromkeys(codes)]

    def _audit(self, session: AsyncSession, action: str, actor: Actor, **change: Any) -> AuditEntry:
        """Record in the audit log, in the session's transaction, what the actor did (change:
        entity, entity_id, before, after, detail as AuditRepository.record takes them)."""
        return AuditRepository(session).record(
            action, actor=actor.label, actor_telegram_id=actor.telegram_id, **change
        )

    async def refuse(self, actor: Actor, command: str) -> None:
        """Record that someone without the right tried an admin command."""
        async with self.db.transaction() as session:
            self._audit(
                session,
                "admin.refused",
                actor,
                entity="command",
                entity_id=command[:64],
            )

    async def _task_changed(self, task_id: int) -> None:
        if self.on_task_changed is not None:
            await self.on_task_changed(task_id)
