"""Short notices that go out through the outbox when something happens (a report came in)."""

from __future__ import annotations

from html import escape
from typing import Any

from bot.i18n import I18n
from bot.services.outbox import OutboxService, OutgoingMessage
from bot.services.people import PeopleService, Person
from bot.services.reporting import Receipt


class NoticeService:
    def __init__(self, i18n: I18n, people: PeopleService, outbox: OutboxService) -> None:
        self.i18n = i18n
        self.people = people
        self.outbox = outbox

    async def report_submitted(
        self, reporter: Person, unit_id: int, receipt: Receipt, answers: dict[str, Any]
    ) -> int:
        """Tell the reporting unit's leaders, once per revision. `answers` holds task_id,
        task_code, task_title, status and percent."""
        messages = []
        for user_id, telegram_id, language in await self.people.leaders_of(unit_id):
            if telegram_id == reporter.telegram_id:
                continue
            status = self.i18n.t(language, f"report.status.{answers.get('status')}")
            messages.append(
                OutgoingMessage(
                    key=f"report:{receipt.report_id}:{receipt.revision}:leader:{user_id}",
                    kind="notice",
                    chat_id=telegram_id,
                    user_id=user_id,
                    task_id=int(answers["task_id"]),
                    text=self.i18n.t(
                        language,
                        "report.leader_notice",
                        name=escape(reporter.first_name),
                        code=escape(str(answers.get("task_code", ""))),
                        title=escape(str(answers.get("task_title", ""))[:200]),
                        status=status,
                        percent=answers.get("percent"),
                        id=receipt.report_id,
                        revision=receipt.revision,
                    ),
                )
            )
        return await self.outbox.enqueue(messages)
