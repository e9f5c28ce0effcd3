"""The notices a change to a task sends to the focal points of its units."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.admin.common import (
    AdminBase,
)
from bot.services.outbox import Button, OutgoingMessage
from storage.models import AuditEntry, Task, User
from storage.repositories.users import UserRepository


class TaskNotices(AdminBase):
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
                "code": task.code,
                "title": task.title,
                "unit": task.lead_unit.name,
                "part": self.i18n.t(lang, f"admin.part.{part}"),
                "deadline": self.fmt_date(task.deadline, lang),
                "old": self.fmt_date(extra.get("old"), lang),
                "reason": extra.get("reason", ""),
            }
            text = self.word(lang, f"admin.notice.{kind}", **params)
            buttons = (
                ()
                if kind == "closed"
                else ((Button(self.i18n.t(lang, "admin.button.report"), "report", task.id),),)
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
