"""/help, /lang and the per-role command menus (setMyCommands with a scope per chat)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeChat,
    BotCommandScopeDefault,
    Update,
)
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, filters

from bot.context import Context
from bot.i18n import I18n
from bot.services.people import Person
from handlers import callbacks
from handlers.common import acknowledge, caller, keyboard, refuse_callback

COMMANDS = [("help", "any"), ("lang", "any")]


def person_roles(person: Person) -> set[str]:
    return {"any"} | {u.role for u in person.units} | set(person.roles)


def commands_for(roles: set[str]) -> list[str]:
    """The commands these roles may use, in the order the modules list them, once each."""
    from handlers import all_commands

    seen: list[str] = []
    for command, role in all_commands():
        if (role in roles or "admin" in roles) and command not in seen:
            seen.append(command)
    return seen


def bot_commands(i18n: I18n, language: str | None, commands: Iterable[str]) -> list[BotCommand]:
    # Telegram shows at most 256 characters per description.
    return [BotCommand(c, i18n.t(language, f"help.{c}")[:256]) for c in commands]


async def set_default_menu(bot: Bot, i18n: I18n) -> None:
    """What someone the bot does not know yet sees: /start, /help, /lang."""
    for language in i18n.languages:
        await bot.set_my_commands(
            bot_commands(i18n, language, commands_for({"any"})),
            scope=BotCommandScopeDefault(),
            language_code=None if language == i18n.default else language,
        )


async def set_menu(bot: Bot, i18n: I18n, person: Person, chat_id: int) -> None:
    """Show this person only their commands, in their language."""
    language = person.language or i18n.default
    await bot.set_my_commands(
        bot_commands(i18n, language, commands_for(person_roles(person))),
        scope=BotCommandScopeChat(chat_id),
    )


async def help_command(update: Update, context: Context) -> None:
    """List the caller's commands, one line each."""
    person, lang = await caller(update, context)
    t = context.services.i18n.t
    lines = [t(lang, "help.header")]
    lines += [
        t(lang, "help.line", command=c, text=t(lang, f"help.{c}")) for c in commands_for(person_roles(person))
    ]
    if not person.known:
        lines.append(t(lang, "help.unknown"))
    message = update.effective_message
    assert message is not None
    await message.reply_text("\n".join(lines))


async def lang(update: Update, context: Context) -> None:
    """/lang [vi|en]: switch the language the bot speaks to this user."""
    person, current = await caller(update, context)
    i18n = context.services.i18n
    message = update.effective_message
    assert message is not None
    choice = context.args[0].lower()[:8] if context.args else None
    if choice is None:
        rows = [[(i18n.t(code, "lang.name"), callbacks.language(code)) for code in i18n.languages]]
        await message.reply_text(i18n.t(current, "lang.ask"), reply_markup=keyboard(rows))
        return
    await _switch(update, context, person, choice, current)


async def lang_button(update: Update, context: Context) -> None:
    """A language button from /lang."""
    query = update.callback_query
    assert query is not None
    person, current = await caller(update, context)
    choice = callbacks.parse_language(query.data if isinstance(query.data, str) else "")
    if choice not in context.services.i18n.languages:
        await refuse_callback(update, context, "unknown language button", current)
        return
    if update.effective_message is None:
        # Telegram sends buttons of inline-mode messages without one: not a button we made.
        await refuse_callback(update, context, "language button without a message", current)
        return
    await acknowledge(update)
    await _switch(update, context, person, choice, current)


async def _switch(update: Update, context: Context, person: Person, choice: str, current: str) -> None:
    i18n = context.services.i18n
    message = update.effective_message
    assert message is not None
    if choice not in i18n.languages:
        await message.reply_text(i18n.t(current, "lang.unknown", languages=", ".join(i18n.languages)))
        return
    if not await context.services.people.set_language(person.telegram_id, choice):
        await message.reply_text(i18n.t(current, "lang.unknown_user"))
        return
    person = await context.services.people.person(person.telegram_id, person.first_name)
    await message.reply_text(i18n.t(choice, "lang.done"))
    chat = update.effective_chat
    assert chat is not None
    await set_menu(context.bot, i18n, person, chat.id)


def handlers() -> list[BaseHandler[Update, Context, Any]]:
    private = filters.ChatType.PRIVATE
    return [
        CommandHandler("help", help_command, filters=private),
        CommandHandler("lang", lang, filters=private),
        CallbackQueryHandler(lang_button, pattern=callbacks.LANGUAGE_ANY),
    ]
