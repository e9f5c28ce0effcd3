"""Deadline extensions: a lead unit's focal point asks, an admin approves or rejects."""

from __future__ import annotations

from datetime import date

from bot.services.admin.common import (
    MAX_TEXT,
    Actor,
    AdminError,
    PendingExtension,
    clean,
)
from bot.services.admin.tasks import TaskAdmin
from bot.services.outbox import Button, OutgoingMessage
from storage.models import DeadlineExtension, User
from storage.repositories.extensions import ExtensionRepository
from storage.repositories.users import UserRepository


class ExtensionAdmin(TaskAdmin):
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
                raise AdminError("not_lead_focal", code=task.code, unit=task.lead_unit.code)
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
            self._audit(
                session,
                "extension.request",
                actor,
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
                        text=self.word(
                            lang,
                            "admin.extension.ask",
                            code=task.code,
                            title=task.title,
                            unit=task.lead_unit.code,
                            who=user.first_name or str(user.telegram_id),
                            old=self.fmt_date(task.deadline, lang),
                            new=self.fmt_date(new, lang),
                            reason=reason,
                        ),
                        buttons=(
                            (
                                Button(
                                    self.i18n.t(lang, "admin.button.approve"), "extension_ok", extension.id
                                ),
                                Button(
                                    self.i18n.t(lang, "admin.button.reject"), "extension_no", extension.id
                                ),
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
                    code=task.code,
                    state=self.i18n.t(None, f"admin.extension.{extension.state}"),
                )
            decider = await self._actor_user(session, actor)
            extension.state = "approved" if approve else "rejected"
            extension.decided_by_id = decider.id
            extension.decided_at = self.clock.now()
            if approve:
                if task.closed_at is not None:
                    raise AdminError("task_closed", code=task.code)
                _, notices = await self._move_deadline(
                    session,
                    actor,
                    task,
                    extension.new_deadline,
                    "extension.approve",
                    f"extension {extension.id}",
                )
            else:
                self._audit(
                    session,
                    "extension.reject",
                    actor,
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
                        text=self.word(
                            lang,
                            f"admin.extension.told_{extension.state}",
                            code=task.code,
                            new=self.fmt_date(extension.new_deadline, lang),
                            old=self.fmt_date(extension.old_deadline, lang),
                            who=actor.first_name or actor.label,
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
