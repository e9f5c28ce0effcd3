"""The typed callback context: handlers reach services as context.services, not string keys."""

from __future__ import annotations

from typing import TYPE_CHECKING

from telegram.ext import Application, CallbackContext, ExtBot

if TYPE_CHECKING:
    from bot.app import Services


class BotData:
    """The application's bot_data: the wired services, set once by build_application."""

    def __init__(self) -> None:
        self.services: Services | None = None


class Context(CallbackContext[ExtBot[None], dict, dict, BotData]):  # type: ignore[type-arg]
    @property
    def services(self) -> Services:
        services = self.bot_data.services
        assert services is not None, "build_application wires the services"
        return services

    @classmethod
    def from_application(cls, application: Application) -> Context:  # type: ignore[type-arg]
        return cls(application=application)
