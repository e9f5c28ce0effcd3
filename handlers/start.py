"""/start: invite onboarding, the greeting and the known user's summary."""

from __future__ import annotations

from html import escape
from typing import Any

from telegram import Update
from telegram.ext import BaseHandler, CommandHandler, filters

from bot.context import Context
from bot.services.invites import RedeemOutcome
from bot.services.people import Person
from bot.services.status import StatusClass
from handlers.common import caller
from handlers.help import commands_for, person_roles, set_menu

COMMANDS = [("start", "any")]


async def _summary(context: Context, person: Person, lang: str) -> str:
    """Roles and units, the unit's task counts, and the commands to use next."""
    t = context.services.i18n.t
    lines = []
    if person.units:
        today = context.services.clock.now().astimezone(context.services.config.tz).date()
        views = await context.services.tasks.for_person(person, today)
        overdue = sum(1 for v in views if v.status is StatusClass.OPEN_OVERDUE)
        lines.append(t(lang, "start.tasks", count=len(views), overdue=overdue))
    commands = commands_for(person_roles(person))
    lines.append(t(lang, "start.commands", commands=", ".join(f"/{c}" for c in commands if c != "start")))
    return "\n".join(lines)


async def start(update: Update, context: Context) -> None:
    """Redeem an invite code if one came with /start, then greet the user."""
    services = context.services
    tg_user = update.effective_user
    message = update.effective_message
    chat = update.effective_chat
    assert tg_user is not None and message is not None and chat is not None
    name = escape(tg_user.first_name or "")
    if context.args:
        redeemed = await services.invites.redeem(
            context.args[0][:64],
            tg_user.id,
            tg_user.first_name,
            tg_user.last_name,
            tg_user.username,
        )
        person, lang = await caller(update, context)
        if redeemed.outcome is not RedeemOutcome.OK:
            await message.reply_text(services.i18n.t(lang, f"invite.{redeemed.outcome.value}"))
            return
        role = services.i18n.t(lang, f"role.{redeemed.role}")
        welcome = services.i18n.t(
            lang, "start.welcome", name=name, role=role, unit=escape(redeemed.unit_name)
        )
        await message.reply_text(welcome + "\n" + await _summary(context, person, lang))
        await set_menu(context.bot, services.i18n, person, chat.id)
        return
    # Someone who blocked the bot and comes back presses Start: reach them again.
    await services.people.mark_reachable(tg_user.id)
    person, lang = await caller(update, context)
    if not person.known:
        await message.reply_text(
            services.i18n.t(lang, "start.unknown", name=name, telegram_id=tg_user.id),
        )
        return
    roles = [services.i18n.t(lang, f"role.{r}") for r in sorted(person.roles)]
    roles += [
        services.i18n.t(
            lang, "start.unit_role", role=services.i18n.t(lang, f"role.{u.role}"), unit=escape(u.unit_name)
        )
        for u in person.units
    ]
    known = services.i18n.t(lang, "start.known", name=name, roles="; ".join(roles))
    await message.reply_text(known + "\n" + await _summary(context, person, lang))
    await set_menu(context.bot, services.i18n, person, chat.id)


def handlers() -> list[BaseHandler[Update, Context, Any]]:
    return [CommandHandler("start", start, filters=filters.ChatType.PRIVATE)]
