"""Running the programme from chat: units, tasks, assignment, deadlines, roles, broadcasts,
deadline extensions, and the notices these send. Every change is audited with the values
before and after; every notice goes through the outbox.

Errors the admin can fix raise AdminError(key, **params); the key is a catalog key under
"admin.error." that the handler shows in the admin's language.
"""

from __future__ import annotations

import base64
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from html import escape
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.config import Config
from bot.i18n import I18n
from bot.services.outbox import OutboxService, OutgoingMessage
from bot.services.plans import TASK_CODE, UNIT_CODE, parse_deadline
from bot.services.programme import ImportResult, ProgrammeService
from storage.db import Database
from storage.models import AuditEntry, DeadlineExtension, Task, TaskUnit, Unit, User
from storage.repositories.audit import AuditRepository
from storage.repositories.drafts import DraftRepository
from storage.repositories.extensions import ExtensionRepository
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


def clean(text: str) -> str:
    return unicodedata.normalize("NFC", text).strip()


def _view(task: Task) -> TaskView:
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


def _task_values(task: Task) -> dict[str, Any]:
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
        raise AdminError("bad_number", value=escape(text)) from None


class AdminService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        config: Config,
        i18n: I18n,
        outbox: OutboxService,
        programme: ProgrammeService,
        on_task_changed: Callable[[int], Awaitable[object]] | None = None,
    ) -> None:
        self.db = db
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
            raise AdminError("bad_date", value=escape(text)) from None
        if day is None:
            if not allow_ongoing:
                raise AdminError("bad_date", value=escape(text))
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
            raise AdminError("unknown_task", code=escape(code))
        if open_only and task.closed_at is not None:
            raise AdminError("task_closed", code=escape(task.code))
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
            raise AdminError("unknown_unit", code=escape(", ".join(missing)))
        return [found[c] for c in dict.fromkeys(codes)]

    async def refuse(self, actor: Actor, command: str) -> None:
        """Record that someone without the right tried an admin command."""
        async with self.db.transaction() as session:
            AuditRepository(session).record(
                "admin.refused",
                actor=actor.label,
                actor_telegram_id=actor.telegram_id,
                entity="command",
                entity_id=command[:64],
            )

    # --- units -----------------------------------------------------------------------------

    async def add_unit(self, actor: Actor, code: str, name: str) -> UnitInfo:
        code, name = clean(code), clean(name)
        if not UNIT_CODE.match(code):
            raise AdminError("bad_unit_code", code=escape(code))
        if not name or len(name) > MAX_NAME:
            raise AdminError("bad_name")
        async with self.db.transaction() as session:
            units = UnitRepository(session)
            if await units.by_code(code) is not None:
                raise AdminError("unit_exists", code=escape(code))
            unit = await units.add(code, name)
            AuditRepository(session).record(
                "unit.create",
                actor=actor.label,
                actor_telegram_id=actor.telegram_id,
                entity="unit",
                entity_id=unit.code,
                after={"code": code, "name": name},
            )
            return UnitInfo(unit.code, unit.name, 0)

    async def units(self) -> list[UnitInfo]:
        async with self.db.reader() as session:
            counts = await UserRepository(session).focal_counts()
            return [
                UnitInfo(u.code, u.name, counts.get(u.id, 0)) for u in await UnitRepository(session).all()
            ]

    async def group_codes(self) -> list[str]:
        async with self.db.reader() as session:
            repo = TaskRepository(session)
            return [g.code for g in await repo.groups(await repo.current_programme_id())]

    # --- tasks -----------------------------------------------------------------------------

    async def check_group(self, code: str) -> str:
        code = clean(code)
        if code not in await self.group_codes():
            raise AdminError("unknown_group", code=escape(code))
        return code

    async def check_new_task_code(self, code: str) -> str:
        code = clean(code)
        if not TASK_CODE.match(code):
            raise AdminError("bad_task_code", code=escape(code))
        async with self.db.reader() as session:
            repo = TaskRepository(session)
            if await repo.by_codes([code], await repo.current_programme_id()):
                raise AdminError("task_exists", code=escape(code))
        return code

    async def check_units(self, codes: list[str]) -> list[str]:
        async with self.db.reader() as session:
            return [u.code for u in await self._units(session, codes)]

    async def task(self, code: str) -> TaskView:
        async with self.db.reader() as session:
            return _view(await self._task(session, code, open_only=False))

    async def create_task(self, actor: Actor, draft: dict[str, Any]) -> Change:
        """Create the task the /task_add conversation collected, and tell its units."""
        async with self.db.transaction() as session:
            tasks = TaskRepository(session)
            # New tasks go into the active programme issued last.
            programme_id = await tasks.current_programme_id()
            if await tasks.by_codes([draft["code"]], programme_id):
                raise AdminError("task_exists", code=escape(draft["code"]))
            groups = await tasks.groups_by_codes([draft["group"]], programme_id)
            if draft["group"] not in groups:
                raise AdminError("unknown_group", code=escape(draft["group"]))
            units = await self._units(session, [draft["lead"], *draft.get("coordinating", [])])
            task = Task(
                programme_id=programme_id,
                code=draft["code"],
                group=groups[draft["group"]],
                title=draft["title"],
                lead_unit=units[0],
                deadline=date.fromisoformat(draft["deadline"]) if draft.get("deadline") else None,
                expected_output=draft.get("expected_output", ""),
                target_value=draft.get("target_value"),
                target_unit=draft.get("target_unit"),
                position=await tasks.max_position() + 1,
                deadline_version=1,
                coordinating=[TaskUnit(unit=u, position=i) for i, u in enumerate(units[1:])],
            )
            session.add(task)
            await session.flush()
            task = await self._task_by_id(session, task.id)
            after = _task_values(task)
            entry = AuditRepository(session).record(
                "task.create",
                actor=actor.label,
                actor_telegram_id=actor.telegram_id,
                entity="task",
                entity_id=task.code,
                after=after,
            )
            await DraftRepository(session).drop((await self._actor_user(session, actor)).id, "task_add")
            await session.flush()
            notices = await self._notices(session, task, "assigned", entry)
        await self.outbox.enqueue(notices)
        return Change(task.code, {}, after, len(notices))

    async def edit_task(self, actor: Actor, code: str, field_name: str, value: str) -> Change:
        field_name = clean(field_name).lower()
        if field_name not in EDITABLE_FIELDS:
            raise AdminError("bad_field", fields=", ".join(EDITABLE_FIELDS))
        value = clean(value)
        async with self.db.transaction() as session:
            task = await self._task(session, code)
            before = _task_values(task)
            if field_name == "group":
                groups = await TaskRepository(session).groups_by_codes([value], task.programme_id)
                if value not in groups:
                    raise AdminError("unknown_group", code=escape(value))
                task.group = groups[value]
            elif field_name == "target_value":
                task.target_value, unit = parse_target(value)
                if unit:
                    task.target_unit = unit
            elif field_name == "title" and not value:
                raise AdminError("bad_name")
            else:
                if len(value) > MAX_TEXT:
                    raise AdminError("too_long", limit=MAX_TEXT)
                setattr(task, field_name, value or (None if field_name.startswith("target") else ""))
            await session.flush()
            after = _task_values(task)
            changed = {k for k in after if after[k] != before[k]}
            AuditRepository(session).record(
                "task.edit",
                actor=actor.label,
                actor_telegram_id=actor.telegram_id,
                entity="task",
                entity_id=task.code,
                before={k: before[k] for k in changed},
                after={k: after[k] for k in changed},
            )
            return Change(task.code, {k: before[k] for k in changed}, {k: after[k] for k in changed})

    async def close_task(self, actor: Actor, code: str, reason: str) -> Change:
        reason = clean(reason)
        if not reason:
            raise AdminError("no_reason")
        async with self.db.transaction() as session:
            task = await self._task(session, code)
            task.closed_at = self.clock.now()
            task.close_reason = reason[:MAX_TEXT]
            entry = AuditRepository(session).record(
                "task.close",
                actor=actor.label,
                actor_telegram_id=actor.telegram_id,
                entity="task",
                entity_id=task.code,
                before={"closed": False},
                after={"closed": True, "reason": task.close_reason},
            )
            await session.flush()
            task_id = task.id
            notices = await self._notices(session, task, "closed", entry, reason=reason)
        # Reminders planned for a withdrawn task must not go out.
        await self.outbox.cancel_for_task(task_id)
        await self._task_changed(task_id)
        await self.outbox.enqueue(notices)
        return Change(task.code, {}, {"reason": reason}, len(notices))

    async def assign(self, actor: Actor, code: str, unit_codes: list[str]) -> Change:
        async with self.db.transaction() as session:
            task = await self._task(session, code)
            units = await self._units(session, unit_codes)
            before = {
                "lead_unit": task.lead_unit.code,
                "coordinating_units": [tu.unit.code for tu in task.coordinating],
            }
            task.lead_unit = units[0]
            kept = {tu.unit_id: tu for tu in task.coordinating}
            coordinating = []
            for i, unit in enumerate(units[1:]):
                task_unit = kept.get(unit.id) or TaskUnit(unit=unit)
                task_unit.position = i
                coordinating.append(task_unit)
            task.coordinating = coordinating
            await session.flush()
            after = {
                "lead_unit": task.lead_unit.code,
                "coordinating_units": [tu.unit.code for tu in task.coordinating],
            }
            entry = AuditRepository(session).record(
                "task.assign",
                actor=actor.label,
                actor_telegram_id=actor.telegram_id,
                entity="task",
                entity_id=task.code,
                before=before,
                after=after,
            )
            await session.flush()
            notices = await self._notices(session, task, "assigned", entry)
            task_id = task.id
        await self._task_changed(task_id)
        await self.outbox.enqueue(notices)
        return Change(task.code, before, after, len(notices))

    async def set_deadline(
        self, actor: Actor, code: str, new: date | None, *, action: str = "task.deadline", detail: str = ""
    ) -> Change:
        async with self.db.transaction() as session:
            task = await self._task(session, code)
            change = await self._move_deadline(session, actor, task, new, action, detail)
            task_id = task.id
        await self._task_changed(task_id)
        await self.outbox.enqueue(change[1])
        return change[0]

    async def _task_changed(self, task_id: int) -> None:
        if self.on_task_changed is not None:
            await self.on_task_changed(task_id)

    async def _move_deadline(
        self,
        session: AsyncSession,
        actor: Actor,
        task: Task,
        new: date | None,
        action: str,
        detail: str,
    ) -> tuple[Change, list[OutgoingMessage]]:
        old = task.deadline
        if old == new:
            raise AdminError("same_deadline", date=self.fmt_date(new))
        task.deadline = new
        task.deadline_version += 1
        before = {"deadline": old.isoformat() if old else None}
        after = {"deadline": new.isoformat() if new else None, "deadline_version": task.deadline_version}
        entry = AuditRepository(session).record(
            action,
            actor=actor.label,
            actor_telegram_id=actor.telegram_id,
            entity="task",
            entity_id=task.code,
            before=before,
            after=after,
            detail=detail,
        )
        await session.flush()
        notices = await self._notices(session, task, "deadline", entry, old=old)
        return Change(task.code, before, after, len(notices)), notices

    async def history(self, code: str, limit: int = 30) -> tuple[TaskView, list[AuditEntry]]:
        async with self.db.reader() as session:
            task = await self._task(session, code, open_only=False)
            return _view(task), await AuditRepository(session).for_entity("task", task.code, limit)

    # --- notices ---------------------------------------------------------------------------

    async def _notices(
        self, session: AsyncSession, task: Task, kind: str, entry: AuditEntry, **extra: Any
    ) -> list[OutgoingMessage]:
        """The notice of this event to the focal points of the task's units, in their language."""
        users = UserRepository(session)
        recipients: dict[int, tuple[User, str]] = {}
        units = [(task.lead_unit, "lead")] + [(tu.unit, "coordinating") for tu in task.coordinating]
        for unit, part in units:
            for user in await users.unit_members(unit.id, "focal"):
                if user.reachable:
                    recipients.setdefault(user.id, (user, part))
        messages = []
        for user, part in recipients.values():
            lang = user.language or self.i18n.default
            params = {
                "code": escape(task.code),
                "title": escape(task.title),
                "unit": escape(task.lead_unit.name),
                "part": self.i18n.t(lang, f"admin.part.{part}"),
                "deadline": self.fmt_date(task.deadline, lang),
                "old": self.fmt_date(extra.get("old"), lang),
                "reason": escape(extra.get("reason", "")),
            }
            text = self.i18n.t(lang, f"admin.notice.{kind}", **params)
            buttons = (
                ()
                if kind == "closed"
                else (((self.i18n.t(lang, "admin.button.report"), f"rp:start:{task.id}"),),)
            )
            messages.append(
                OutgoingMessage(
                    key=f"notice:{kind}:{entry.id}:{user.id}",
                    kind="notice",
                    chat_id=user.telegram_id,
                    text=text,
                    buttons=buttons,
                    user_id=user.id,
                    task_id=task.id,
                )
            )
        return messages

    # --- people ----------------------------------------------------------------------------

    async def users(self) -> list[UserInfo]:
        async with self.db.reader() as session:
            found = await UserRepository(session).everyone()
        infos = []
        for user in found:
            roles = sorted(
                {r.role for r in user.roles}
                | ({"admin"} if user.telegram_id in self.config_admins else set())
            )
            roles += sorted(f"{m.role}:{m.unit.code}" for m in user.memberships)
            name = " ".join(p for p in (user.first_name, user.last_name) if p)
            infos.append(UserInfo(user.telegram_id, name, user.username, tuple(roles), user.reachable))
        return infos

    async def _find_user(self, session: AsyncSession, ref: str) -> User:
        ref = clean(ref)
        users = UserRepository(session)
        user = None
        if ref.lstrip("-").isdigit():
            user = await users.by_telegram_id(int(ref))
        elif ref.startswith("@") and len(ref) > 1:
            found = await users.by_username(ref)
            user = await users.by_telegram_id(found.telegram_id) if found else None
        if user is None:
            raise AdminError("unknown_user", user=escape(ref))
        return user

    @staticmethod
    def _roles_of(user: User) -> list[str]:
        return sorted({r.role for r in user.roles}) + sorted(
            f"{m.role}:{m.unit.code}" for m in user.memberships
        )

    async def set_role(self, actor: Actor, ref: str, role: str, unit_code: str | None) -> Change:
        role = clean(role).lower()
        if role not in ROLES:
            raise AdminError("bad_role", roles=", ".join(ROLES))
        async with self.db.transaction() as session:
            users = UserRepository(session)
            user = await self._find_user(session, ref)
            before = self._roles_of(user)
            granter = await self._actor_user(session, actor)
            if role in ("admin", "manager"):
                await users.grant_role(user, role, granter)
            else:
                if not unit_code:
                    raise AdminError("role_needs_unit")
                (unit,) = await self._units(session, [unit_code])
                await users.add_membership(user, unit, role)
            after = self._roles_of(user)
            AuditRepository(session).record(
                "user.role",
                actor=actor.label,
                actor_telegram_id=actor.telegram_id,
                entity="user",
                entity_id=user.telegram_id,
                before={"roles": before},
                after={"roles": after},
            )
            return Change(str(user.telegram_id), {"roles": before}, {"roles": after})

    async def revoke(self, actor: Actor, ref: str) -> Change:
        async with self.db.transaction() as session:
            user = await self._find_user(session, ref)
            before = self._roles_of(user)
            await UserRepository(session).revoke_all(user)
            after = ["admin"] if user.telegram_id in self.config_admins else []
            AuditRepository(session).record(
                "user.revoke",
                actor=actor.label,
                actor_telegram_id=actor.telegram_id,
                entity="user",
                entity_id=user.telegram_id,
                before={"roles": before},
                after={"roles": after},
            )
            return Change(str(user.telegram_id), {"roles": before}, {"roles": after})

    async def record_export(self, actor: Actor) -> None:
        async with self.db.transaction() as session:
            AuditRepository(session).record(
                "programme.export", actor=actor.label, actor_telegram_id=actor.telegram_id, entity="programme"
            )

    async def audit(self, limit: int) -> list[AuditEntry]:
        async with self.db.reader() as session:
            return await AuditRepository(session).latest(limit)

    # --- drafts (pending imports, broadcasts, /task_add) -----------------------------------

    async def save_draft(self, actor: Actor, flow: str, data: dict[str, Any]) -> int:
        """Keep a flow's state in the database (a restart loses nothing); returns its version."""
        async with self.db.transaction() as session:
            user = await self._actor_user(session, actor)
            return (await DraftRepository(session).put(user.id, flow, data)).version

    async def draft(self, actor: Actor, flow: str) -> tuple[dict[str, Any], int] | None:
        async with self.db.reader() as session:
            user = await UserRepository(session).by_telegram_id(actor.telegram_id)
            if user is None:
                return None
            draft = await DraftRepository(session).get(user.id, flow)
            return (dict(draft.data), draft.version) if draft else None

    async def drop_draft(self, actor: Actor, flow: str) -> None:
        async with self.db.transaction() as session:
            user = await UserRepository(session).by_telegram_id(actor.telegram_id)
            if user is not None:
                await DraftRepository(session).drop(user.id, flow)

    # --- broadcast -------------------------------------------------------------------------

    async def broadcast_recipients(self) -> list[User]:
        async with self.db.reader() as session:
            return [
                u
                for u in await UserRepository(session).everyone()
                if u.reachable and (u.roles or u.memberships)
            ]

    async def broadcast(self, actor: Actor, version: int) -> int:
        """Queue the confirmed broadcast for everyone the bot knows; returns how many."""
        pending = await self.draft(actor, "broadcast")
        if pending is None or pending[1] != version:
            raise AdminError("stale")
        body = pending[0]["text"]
        recipients = await self.broadcast_recipients()
        messages = [
            OutgoingMessage(
                key=f"broadcast:{actor.telegram_id}:{version}:{self.clock.now().isoformat()}:{user.id}",
                kind="broadcast",
                chat_id=user.telegram_id,
                user_id=user.id,
                text=self.i18n.t(user.language, "admin.broadcast.message", text=escape(body)),
            )
            for user in recipients
        ]
        async with self.db.transaction() as session:
            user = await self._actor_user(session, actor)
            await DraftRepository(session).drop(user.id, "broadcast")
            AuditRepository(session).record(
                "broadcast.send",
                actor=actor.label,
                actor_telegram_id=actor.telegram_id,
                entity="broadcast",
                after={"text": body, "recipients": len(messages)},
            )
        await self.outbox.enqueue(messages)
        return len(messages)

    # --- deadline extensions ---------------------------------------------------------------

    async def request_extension(self, actor: Actor, code: str, new: date, reason: str) -> int:
        """A focal point of the lead unit asks to move the deadline; admins are asked."""
        reason = clean(reason)
        if not reason:
            raise AdminError("no_reason")
        async with self.db.transaction() as session:
            task = await self._task(session, code)
            user = await UserRepository(session).by_telegram_id(actor.telegram_id)
            if user is None or not any(
                m.unit_id == task.lead_unit_id and m.role == "focal" for m in user.memberships
            ):
                raise AdminError("not_lead_focal", code=escape(task.code), unit=escape(task.lead_unit.code))
            if task.deadline == new:
                raise AdminError("same_deadline", date=self.fmt_date(new))
            extension = ExtensionRepository(session).add(
                DeadlineExtension(
                    task_id=task.id,
                    unit_id=task.lead_unit_id,
                    requested_by_id=user.id,
                    old_deadline=task.deadline,
                    new_deadline=new,
                    reason=reason[:MAX_TEXT],
                    state="pending",
                    created_at=self.clock.now(),
                )
            )
            await session.flush()
            AuditRepository(session).record(
                "extension.request",
                actor=actor.label,
                actor_telegram_id=actor.telegram_id,
                entity="task",
                entity_id=task.code,
                before={"deadline": task.deadline.isoformat() if task.deadline else None},
                after={"deadline": new.isoformat(), "extension": extension.id, "reason": reason},
            )
            admins = {u.telegram_id: u for u in await UserRepository(session).with_role("admin")}
            chats = sorted(set(admins) | self.config_admins)
            messages = []
            for chat_id in chats:
                lang = admins[chat_id].language if chat_id in admins else None
                messages.append(
                    OutgoingMessage(
                        key=f"extension:{extension.id}:ask:{chat_id}",
                        kind="extension",
                        chat_id=chat_id,
                        user_id=admins[chat_id].id if chat_id in admins else None,
                        task_id=task.id,
                        text=self.i18n.t(
                            lang,
                            "admin.extension.ask",
                            code=escape(task.code),
                            title=escape(task.title),
                            unit=escape(task.lead_unit.code),
                            who=escape(user.first_name or str(user.telegram_id)),
                            old=self.fmt_date(task.deadline, lang),
                            new=self.fmt_date(new, lang),
                            reason=escape(reason),
                        ),
                        buttons=(
                            (
                                (self.i18n.t(lang, "admin.button.approve"), f"ex:ok:{extension.id}"),
                                (self.i18n.t(lang, "admin.button.reject"), f"ex:no:{extension.id}"),
                            ),
                        ),
                    )
                )
            extension_id = extension.id
        await self.outbox.enqueue(messages)
        return extension_id

    async def decide_extension(self, actor: Actor, extension_id: int, approve: bool) -> PendingExtension:
        """Approve (the deadline moves, the units are told) or reject; the requester is told."""
        notices: list[OutgoingMessage] = []
        async with self.db.transaction() as session:
            extension = await ExtensionRepository(session).get(extension_id)
            if extension is None:
                raise AdminError("unknown_extension")
            task = await self._task_by_id(session, extension.task_id)
            if extension.state != "pending":
                raise AdminError(
                    "already_decided",
                    code=escape(task.code),
                    state=self.i18n.t(None, f"admin.extension.{extension.state}"),
                )
            decider = await self._actor_user(session, actor)
            extension.state = "approved" if approve else "rejected"
            extension.decided_by_id = decider.id
            extension.decided_at = self.clock.now()
            if approve:
                if task.closed_at is not None:
                    raise AdminError("task_closed", code=escape(task.code))
                _, notices = await self._move_deadline(
                    session,
                    actor,
                    task,
                    extension.new_deadline,
                    "extension.approve",
                    f"extension {extension.id}",
                )
            else:
                AuditRepository(session).record(
                    "extension.reject",
                    actor=actor.label,
                    actor_telegram_id=actor.telegram_id,
                    entity="task",
                    entity_id=task.code,
                    after={"extension": extension.id, "deadline": extension.new_deadline.isoformat()},
                )
            requester = (
                await session.get(User, extension.requested_by_id) if extension.requested_by_id else None
            )
            if requester is not None:
                lang = requester.language
                notices.append(
                    OutgoingMessage(
                        key=f"extension:{extension.id}:decision",
                        kind="extension",
                        chat_id=requester.telegram_id,
                        user_id=requester.id,
                        task_id=task.id,
                        text=self.i18n.t(
                            lang,
                            f"admin.extension.told_{extension.state}",
                            code=escape(task.code),
                            new=self.fmt_date(extension.new_deadline, lang),
                            old=self.fmt_date(extension.old_deadline, lang),
                            who=escape(actor.first_name or actor.label),
                        ),
                    )
                )
            result = PendingExtension(
                extension.id,
                task.code,
                extension.old_deadline,
                extension.new_deadline,
                extension.reason,
                extension.state,
                requester.telegram_id if requester else None,
            )
            task_id = task.id
        if approve:
            await self._task_changed(task_id)
        await self.outbox.enqueue(notices)
        return result

    # --- plan import from chat -------------------------------------------------------------

    async def stage_import(
        self, actor: Actor, filename: str, data: bytes, programme: str | None = None
    ) -> tuple[ImportResult, int]:
        """Preview a plan file and keep it (in the database) until Áp dụng or Hủy.

        Returns the preview and the draft version the buttons must carry; a file with errors is
        not kept, so it can never be applied (a corrected file may follow).
        """
        if len(data) > self.config.admin.import_max_kb * 1024:
            raise AdminError("file_too_big", kb=self.config.admin.import_max_kb)
        plan = await self.programme.read_plan(data, filename, programme)
        result = await self.programme.preview(plan)
        named = {"programme": programme} if programme else {}
        if result.errors:
            # Keep waiting: the admin may send the corrected file straight away.
            await self.save_draft(actor, "import", {"state": "awaiting", **named})
            return result, 0
        version = await self.save_draft(
            actor,
            "import",
            {
                "state": "preview",
                **named,
                "filename": filename,
                "data": base64.b64encode(data).decode("ascii"),
            },
        )
        return result, version

    async def apply_import(self, actor: Actor, version: int) -> ImportResult:
        """Apply the pending import the buttons of this version showed; re-checked first."""
        pending = await self.draft(actor, "import")
        if pending is None or pending[1] != version or pending[0].get("state") != "preview":
            raise AdminError("stale")
        data = base64.b64decode(pending[0]["data"])
        plan = await self.programme.read_plan(data, pending[0]["filename"], pending[0].get("programme"))
        result = await self.programme.apply(plan, actor=actor.label, actor_telegram_id=actor.telegram_id)
        if result.applied:
            await self.drop_draft(actor, "import")
        return result
