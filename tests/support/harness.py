"""In-process bot for handler tests: the real Application and services, a FakeBotAPI behind
StandinRequest, a FixedClock, and helpers that feed real Updates through process_update.

    harness = await Harness.start(config, db)
    replies = await harness.send(501, "/start")      # the messages the bot sent in answer
    await harness.press(501, replies[-1].message_id, "data")
    await harness.dispatch()                          # run the outbox dispatcher once
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from telegram import Update
from telegram.ext import Application

from bot.app import build_application
from bot.clock import FixedClock
from bot.config import Config
from bot.context import Context
from bot.jobs.dispatch import dispatch_outbox
from bot.services.container import Services, build_services
from handlers.wording import TelegramWording
from storage.db import Database
from tests.support.botapi import FakeBotAPI, SentMessage, StandinRequest


@dataclass
class Harness:
    api: FakeBotAPI
    app: Application  # type: ignore[type-arg]
    services: Services
    clock: FixedClock

    @classmethod
    async def start(
        cls, config: Config, db: Database, *, now: datetime = datetime(2024, 1, 31, 2, 0, tzinfo=UTC)
    ) -> Harness:
        api = FakeBotAPI()
        clock = FixedClock(now)
        # The test's database (already migrated) instead of a second engine.
        services = build_services(config, wording=TelegramWording, clock=clock, db=db)
        app = build_application(
            config, services=services, request=StandinRequest(api), updates_request=StandinRequest(api)
        )
        await app.initialize()
        return cls(api, app, services, clock)

    async def stop(self) -> None:
        await self.app.shutdown()

    async def _process(self, update: dict[str, object]) -> None:
        await self.app.process_update(Update.de_json(update, self.app.bot))

    def _since(self, chat_id: int, before: int) -> list[SentMessage]:
        return self.api.sent(chat_id)[before:]

    async def send(self, user_id: int, text: str, **kwargs: object) -> list[SentMessage]:
        """A user writes; returns what the bot sent to that chat in answer."""
        before = len(self.api.sent(user_id))
        await self._process(self.api.send_text(user_id, text, **kwargs))  # type: ignore[arg-type]
        return self._since(user_id, before)

    async def press(
        self, user_id: int, message_id: int, data: str, check: bool = True, too_old: bool = False
    ) -> list[SentMessage]:
        """A user presses an inline button; returns new messages (edits show on the message)."""
        before = len(self.api.sent(user_id))
        await self._process(self.api.press_button(user_id, message_id, data, check=check, too_old=too_old))
        return self._since(user_id, before)

    async def send_document(
        self, user_id: int, filename: str, content: bytes, mime_type: str = "application/pdf"
    ) -> list[SentMessage]:
        before = len(self.api.sent(user_id))
        await self._process(self.api.send_document(user_id, filename, content, mime_type))
        return self._since(user_id, before)

    async def dispatch(self) -> None:
        """Run the outbox dispatcher once, as the repeating job would."""
        await dispatch_outbox(Context.from_application(self.app))
