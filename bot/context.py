"""The typed callback context: handlers and jobs reach services as context.services, not string
keys. It sits below handlers and jobs (both import it) and above the services."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from telegram.ext import Application, CallbackContext, ExtBot

if TYPE_CHECKING:
    from bot.cluster import Cluster
    from bot.services.container import Services


class BotData:
    """The application's bot_data: the wired services and the hooks the wiring sets, once, in
    build_application."""

    def __init__(self) -> None:
        self.services: Services | None = None
        # Sends what was just queued in the outbox without waiting for the dispatcher's next
        # run; set by the wiring, which knows the dispatcher job (handlers do not import it).
        self.kick_dispatcher: Callable[[], None] = lambda: None
        # The callback data of a button a service named by its action (bot.services.outbox.
        # Button); set by the wiring from handlers/callbacks.py, which owns every such string.
        self.callback_data: Callable[[str, int | str], str] | None = None
        # Leadership and chat claims of this process (bot/cluster.py; `cluster.leading` says
        # whether it runs the singletons). Set by the wiring.
        self.cluster: Cluster = _solo()
        self.inbox: Any = None  # bot.updates.UpdateInbox, set by the wiring


def _solo() -> Cluster:
    from bot.cluster import Cluster

    return Cluster(None)


class Context(CallbackContext[ExtBot[None], dict, dict, BotData]):  # type: ignore[type-arg]
    @property
    def services(self) -> Services:
        services = self.bot_data.services
        assert services is not None, "build_application wires the services"
        return services

    def kick_dispatcher(self) -> None:
        """Send what was just queued without waiting for the next dispatcher run."""
        self.bot_data.kick_dispatcher()

    def callback_data(self, action: str, arg: int | str) -> str:
        """The callback data of a button a service named by its action."""
        encode = self.bot_data.callback_data
        assert encode is not None, "build_application wires the callback codec"
        return encode(action, arg)

    @classmethod
    def from_application(cls, application: Application) -> Context:  # type: ignore[type-arg]
        return cls(application=application)
