"""What every admin command shares: who may call it (refusals are answered and audited), the
caller's language, usage messages, errors the caller can fix, and replies within 4096 chars."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING, Any

from telegram import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.constants import ParseMode

from bot.context import Context
from bot.services.admin import Actor, AdminError
from bot.services.people import Person
from handlers.common import alert

if TYPE_CHECKING:
    from bot.services.container import Services

MAX_MESSAGE = 4000
# Who may call a command, by the role named in COMMANDS.
ALLOWED = {
    "admin": frozenset({"admin"}),
    "manager": frozenset({"admin", "manager"}),
}


def actor_of(update: Update) -> Actor:
    user = update.effective_user
    assert user is not None
    return Actor(user.id, user.first_name or "", user.last_name, user.username)


def chunks(lines: Iterable[str], limit: int = MAX_MESSAGE) -> list[str]:
    """Lines packed into messages of at most `limit` characters (a long line is cut)."""
    parts: list[str] = []
    current = ""
    for line in lines:
        line = line[:limit]
        if current and len(current) + 1 + len(line) > limit:
            parts.append(current)
            current = line
        else:
            current = f"{current}\n{line}" if current else line
    if current:
        parts.append(current)
    return parts


def keyboard(rows: Iterable[Iterable[tuple[str, str]]]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(label, callback_data=data) for label, data in row] for row in rows]
    )


async def drop_buttons(query: CallbackQuery) -> None:
    """Take the buttons off the message pressed (if it still has any), so it is pressed once."""
    message = query.message
    if isinstance(message, Message) and message.reply_markup is not None:
        await query.edit_message_reply_markup(None)


@dataclass
class Call:
    """One admin command being handled: the caller, their language, and ways to answer."""

    update: Update
    context: Context
    command: str
    person: Person
    actor: Actor

    @property
    def services(self) -> Services:
        return self.context.services

    @property
    def lang(self) -> str:
        return self.person.language or self.context.services.i18n.default

    @property
    def message(self) -> Message:
        message = self.update.effective_message
        assert message is not None
        return message

    @property
    def args(self) -> list[str]:
        return list(self.context.args or [])

    def rest(self, skip: int) -> str:
        """The message text after the command and `skip` arguments, spacing kept."""
        parts = (self.message.text or "").split(None, skip + 1)
        return parts[skip + 1].strip() if len(parts) > skip + 1 else ""

    def t(self, key: str, /, **params: Any) -> str:
        return self.context.services.i18n.t(self.lang, key, **params)

    async def say(self, key: str, /, markup: InlineKeyboardMarkup | None = None, **params: Any) -> Message:
        return await self.message.reply_text(
            self.t(key, **params), parse_mode=ParseMode.HTML, reply_markup=markup
        )

    async def say_lines(self, lines: list[str]) -> None:
        for part in chunks(lines):
            await self.message.reply_text(part, parse_mode=ParseMode.HTML)

    async def usage(self) -> None:
        await self.say(f"admin.usage.{self.command}")

    def error_text(self, exc: AdminError) -> str:
        """The error in the caller's language; what the user typed is escaped for HTML here."""
        params = {k: escape(v) if isinstance(v, str) else v for k, v in exc.params.items()}
        return self.t(f"admin.error.{exc.key}", **params)

    async def error(self, exc: AdminError) -> None:
        await self.message.reply_text(self.error_text(exc), parse_mode=ParseMode.HTML)


async def begin(update: Update, context: Context, command: str, role: str = "admin") -> Call | None:
    """The call if the caller may run the command; otherwise answer, audit, and None."""
    actor = actor_of(update)
    person = await context.services.people.person(actor.telegram_id, actor.first_name)
    call = Call(update, context, command, person, actor)
    allowed = bool(person.unit_ids("focal")) if role == "focal" else bool(ALLOWED[role] & person.roles)
    if allowed:
        return call
    await context.services.admin.refuse(actor, command)
    if update.callback_query is not None:
        await alert(update, call.t(f"admin.refused.{role}", command=command))
    else:
        await call.say(f"admin.refused.{role}", command=command)
    return None
