"""Short notices that go out through the outbox when something happens (a report came in)."""

from __future__ import annotations

from html import escape
from typing import Any

from bot.i18n import I18n
from bot.services.outbox import OutboxService, OutgoingMessage
from bot.services.people import PeopleService, Person
from bot.services.reporting import Receipt
from bot.services.tasks import TaskView


class NoticeService:
    def __init__(self, i18n: I18n, people: PeopleService, outbox: OutboxService) -> None:
        self.i18n = i18n
        self.people = people
        self.outbox = outbox

    async def report_submitted(self, reporter: Person, task: TaskView, receipt: Receipt,
                               answers: dict[str, Any]) -> int:
        """Tell the reporting unit's leaders, once per revision."""
        if task.unit_id is None:
            return 0
        messages = []
        for user_id, telegram_id, language in await self.people.leaders_of(task.unit_id):
            if telegram_id == reporter.telegram_id:
                continue
            status = self.i18n.t(language, f"report.status.{answers.get('status')}")
            messages.append(OutgoingMessage(
                key=f"report:{receipt.report_id}:{receipt.revision}:leader:{user_id}",
                kind="notice", chat_id=telegram_id, user_id=user_id, task_id=task.task_id,
                text=self.i18n.t(language, "report.leader_notice",
                                 name=escape(reporter.first_name), code=escape(task.code),
                                 title=escape(task.title[:200]), status=status,
                                 percent=answers.get("percent"), id=receipt.report_id,
                                 revision=receipt.revision),
            ))
        return await self.outbox.enqueue(messages)
