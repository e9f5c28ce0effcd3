"""Short notices that go out through the outbox when something happens (a report came in)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.i18n import I18n
from bot.services.outbox import OutgoingMessage, Wording
from bot.services.people import PeopleService, Person
from bot.services.reporting import Receipt


class NoticeService:
    def __init__(self, i18n: I18n, people: PeopleService, word: Wording) -> None:
        self.i18n = i18n
        self.word = word  # the text of every notice (see Wording)
        self.people = people

    async def report_submitted(
        self, reporter: Person, unit_id: int, answers: dict[str, Any]
    ) -> Callable[[Receipt], list[OutgoingMessage]]:
        """The notices to the reporting unit's leaders, once per revision, made from the
        receipt in the report's transaction (ReportingService.submit's follow_up). `answers`
        holds task_id, task_code and task_title."""
        leaders = [
            (user_id, telegram_id, language)
            for user_id, telegram_id, language in await self.people.leaders_of(unit_id)
            if telegram_id != reporter.telegram_id
        ]

        def notices(receipt: Receipt) -> list[OutgoingMessage]:
            return [
                OutgoingMessage(
                    key=f"report:{receipt.report_id}:{receipt.revision}:leader:{user_id}",
                    kind="notice",
                    chat_id=telegram_id,
                    user_id=user_id,
                    task_id=int(answers["task_id"]),
                    text=self.word(
                        language,
                        "report.leader_notice",
                        name=reporter.first_name,
                        code=str(answers.get("task_code", "")),
                        title=str(answers.get("task_title", ""))[:200],
                        status=self.i18n.t(language, f"report.status.{receipt.status}"),
                        percent=receipt.percent,
                        id=receipt.report_id,
                        revision=receipt.revision,
                    ),
                )
                for user_id, telegram_id, language in leaders
            ]

        return notices
