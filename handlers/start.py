"""/start: invite onboarding and the greeting."""

from __future__ import annotations

from html import escape

from telegram import Update
from telegram.constants import ParseMode
from telegram.ext import CommandHandler, filters

from bot.services.invites import RedeemOutcome
from handlers.context import Context


async def start(update: Update, context: Context) -> None:
    """Redeem an invite code if one came with /start, then greet the user."""
    services = context.services
    tg_user = update.effective_user
    message = update.effective_message
    assert tg_user is not None and message is not None
    name = escape(tg_user.first_name or "")
    if context.args:
        redeemed = await services.invites.redeem(
            context.args[0][:64], tg_user.id, tg_user.first_name, tg_user.last_name,
            tg_user.username,
        )
        person = await services.people.person(tg_user.id, tg_user.first_name)
        lang = person.language or services.i18n.default
        if redeemed.outcome is not RedeemOutcome.OK:
            await message.reply_text(services.i18n.t(lang, f"invite.{redeemed.outcome.value}"))
            return
        role = services.i18n.t(lang, f"role.{redeemed.role}")
        await message.reply_text(
            services.i18n.t(lang, "start.welcome", name=name, role=role,
                            unit=escape(redeemed.unit_name)),
            parse_mode=ParseMode.HTML,
        )
        return
    person = await services.people.person(tg_user.id, tg_user.first_name)
    lang = person.language or services.i18n.default
    if not person.known:
        await message.reply_text(
            services.i18n.t(lang, "start.unknown", name=name, telegram_id=tg_user.id),
            parse_mode=ParseMode.HTML,
        )
        return
    roles = [services.i18n.t(lang, f"role.{r}") for r in sorted(person.roles)]
    roles += [
        services.i18n.t(lang, "start.unit_role", role=services.i18n.t(lang, f"role.{u.role}"),
                        unit=escape(u.unit_name))
        for u in person.units
    ]
    await message.reply_text(
        services.i18n.t(lang, "start.known", name=name, roles="; ".join(roles)),
        parse_mode=ParseMode.HTML,
    )


def handlers() -> list[CommandHandler[Context, None]]:
    return [CommandHandler("start", start, filters=filters.ChatType.PRIVATE)]
