"""/digest (on demand), /subscribe and /unsubscribe (the scheduled digest)."""

from __future__ import annotations

import asyncio

from telegram import Update
from telegram.constants import ParseMode
from telegram.ext import BaseHandler, CommandHandler, filters

from bot.context import Context
from bot.services.report_data import UnknownScope
from handlers.common import caller

COMMANDS: list[tuple[str, str]] = [
    ("digest", "manager"),
    ("digest", "leader"),
    ("subscribe", "manager"),
    ("unsubscribe", "manager"),
]


async def digest(update: Update, context: Context) -> None:
    """Send the consolidated report: the programme for managers/admins, a unit for leaders."""
    services = context.services
    user, message = update.effective_user, update.effective_message
    assert user is not None and message is not None
    person, lang = await caller(update, context)
    leader_units = sorted(u.unit_code for u in person.units if u.role == "leader")
    if not ({"manager", "admin"} & person.roles or leader_units):
        await message.reply_text(services.i18n.t(lang, "digest.no_access"))
        return
    key = context.args[0] if context.args else None
    try:
        period = services.digest.period(key)
    except ValueError:
        await message.reply_text(
            services.i18n.t(
                lang, "digest.bad_period", value=(key or "")[:20], example=services.digest.period().key
            )
        )
        return
    scopes: list[str | None] = [None] if {"manager", "admin"} & person.roles else list(leader_units)
    for unit_code in scopes:
        try:
            data = await services.digest.build(period, unit_code)
        except UnknownScope:
            continue
        renderer = services.digest.renderer(lang)
        folder = services.config.data_path / "reports" / "on-demand" / str(user.id)
        # Rendering Word, Excel and the chart is CPU work: keep the event loop answering.
        files = await asyncio.to_thread(services.digest.write_files, data, folder, lang)
        for text in renderer.telegram(data):
            await message.reply_text(text, parse_mode=ParseMode.HTML)
        with files["png"].open("rb") as handle:
            await message.reply_photo(handle, caption=renderer.t("digest.chart_caption", period=data.period))
        for fmt in ("docx", "xlsx"):
            with files[fmt].open("rb") as handle:
                await message.reply_document(
                    handle,
                    filename=files[fmt].name,
                    caption=renderer.t(f"digest.{fmt}_caption", period=data.period),
                )


async def subscribe(update: Update, context: Context) -> None:
    """Subscribe the user to the scheduled digest."""
    services = context.services
    user, message = update.effective_user, update.effective_message
    assert user is not None and message is not None
    person, lang = await caller(update, context)
    if not person.roles & {"admin", "manager"}:
        # The programme-wide digest shows every unit: only managers and admins may ask for it;
        # unit leaders already get their own unit's version on the same schedule.
        key = "digest.subscribe_leader" if person.units else "digest.subscribe_unknown"
        await message.reply_text(services.i18n.t(lang, key))
        return
    outcome = await services.digest.subscribe(user.id)
    key = {None: "digest.subscribe_unknown", False: "digest.already_subscribed", True: "digest.subscribed"}[
        outcome
    ]
    await message.reply_text(services.i18n.t(lang, key))


async def unsubscribe(update: Update, context: Context) -> None:
    """Stop sending the scheduled digest to the user."""
    services = context.services
    user, message = update.effective_user, update.effective_message
    assert user is not None and message is not None
    _, lang = await caller(update, context)
    done = await services.digest.unsubscribe(user.id)
    await message.reply_text(
        services.i18n.t(lang, "digest.unsubscribed" if done else "digest.not_subscribed")
    )


def handlers() -> list[BaseHandler]:  # type: ignore[type-arg]
    private = filters.ChatType.PRIVATE
    return [
        CommandHandler("digest", digest, filters=private),
        CommandHandler("subscribe", subscribe, filters=private),
        CommandHandler("unsubscribe", unsubscribe, filters=private),
    ]
