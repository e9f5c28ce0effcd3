"""The text of messages services queue, worded as Telegram HTML (bot/services/outbox.Wording).

Services fill catalog messages with plain values (a task's title, a person's name, as typed);
Telegram parses the text as HTML, so every value is escaped here, where the format is known:
a title "R&D <2025>" reaches people as typed instead of breaking the message.
"""

from __future__ import annotations

from html import escape
from typing import Any

from bot.i18n import I18n


class TelegramWording:
    """bot.services.outbox.Wording for Telegram HTML."""

    def __init__(self, i18n: I18n) -> None:
        self.i18n = i18n

    def __call__(self, language: str | None, key: str, /, **values: Any) -> str:
        return self.i18n.t(
            language, key, **{name: escape(v) if isinstance(v, str) else v for name, v in values.items()}
        )
