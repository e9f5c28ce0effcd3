"""Tasks from chat: create, edit, close, assign units, move the deadline, history; each
change audited with the values before and after, and the units told."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.admin.common import (
    EDITABLE_FIELDS,
    MAX_TEXT,
    Actor,
    AdminError,
    AuditView,
    Change,
    TaskView,
    audit_view,
    clean,
    parse_target,
    task_values,
    view,
)
from bot.services.admin.notices import TaskNotices
from bot.services.outbox import OutgoingMessage
from bot.services.plans import TASK_CODE
from storage.models import Task, TaskUnit
from storage.repositories.audit import AuditRepository
from storage.repositories.drafts import DraftRepository
from storage.repositories.tasks import TaskRepository


class TaskAdmin(TaskNotices):
    async def group_codes(self) -> list[str]:
        async with self.db.reader() as session:
            repo = TaskRepository(session)
            return [g.code for g in await repo.groups(await repo.current_programme_id())]

    async def check_group(self, code: str) -> str:
        code = clean(code)
        if code not in await self.group_codes():
            raise AdminError("unknown_group", code=code)
        return code

    async def check_new_task_code(self, code: str) -> str:
        code = clean(code)
        if not TASK_CODE.match(code):
            raise AdminError("bad_task_code", code=code)
        async with self.db.reader() as session:
            repo = TaskRepository(session)
            if await repo.by_codes([code], await repo.current_programme_id()):
                raise AdminError("task_exists", code=code)
        return code

    async def check_units(self, codes: list[str]) -> list[str]:
        async with self.db.reader() as session:
            return [u.code for u in await self._units(session, codes)]

    async def task(self, code: str) -> TaskView:
        async with self.db.reader() as session:
            return view(await self._task(session, code, open_only=False))

    async def create_task(self, actor: Actor, draft: dict[str, Any]) -> Change:
        """Create the task the /task_add conversation collected, and tell its units."""
        async with self.db.transaction() as session:
            tasks = TaskRepository(session)
            # New tasks go into the active programme issued last.
            programme_id = await tasks.current_programme_id()
            if await tasks.by_codes([draft["code"]], programme_id):
                raise AdminError("task_exists", code=draft["code"])
            groups = await tasks.groups_by_codes([draft["group"]], programme_id)
            if draft["group"] not in groups:
                raise AdminError("unknown_group", code=draft["group"])
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
            after = task_values(task)
            entry = self._audit(
                session,
                "task.create",
                actor,
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
            before = task_values(task)
            if field_name == "group":
                groups = await TaskRepository(session).groups_by_codes([value], task.programme_id)
                if value not in groups:
                    raise AdminError("unknown_group", code=value)
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
            after = task_values(task)
            changed = {k for k in after if after[k] != before[k]}
            self._audit(
                session,
                "task.edit",
                actor,
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
            entry = self._audit(
                session,
                "task.close",
                actor,
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
            entry = self._audit(
                session,
                "task.assign",
                actor,
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
        entry = self._audit(
            session,
            action,
            actor,
            entity="task",
            entity_id=task.code,
            before=before,
            after=after,
            detail=detail,
        )
        await session.flush()
        notices = await self._notices(session, task, "deadline", entry, old=old)
        return Change(task.code, before, after, len(notices)), notices

    async def history(self, code: str, limit: int = 30) -> tuple[TaskView, list[AuditView]]:
        async with self.db.reader() as session:
            task = await self._task(session, code, open_only=False)
            entries = await AuditRepository(session).for_entity("task", task.code, limit)
            return view(task), [audit_view(e) for e in entries]
