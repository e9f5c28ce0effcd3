"""/digest (on demand), /subscribe and /unsubscribe (the scheduled digest)."""

from __future__ import annotations

from html import escape

from telegram import Message, Update
from telegram.constants import ParseMode
from telegram.ext import BaseHandler, CommandHandler, filters

from bot.context import Context
from bot.services.digest import split_request
from bot.services.periods import Period
from bot.services.programme import ProgrammeError, ProgrammeInfo
from bot.services.report_data import UnknownScope
from handlers.common import caller

COMMANDS: list[tuple[str, str]] = [
    ("digest", "manager"),
    ("digest", "leader"),
    ("subscribe", "manager"),
    ("unsubscribe", "manager"),
]


async def _request(
    context: Context, message: Message, lang: str, args: list[str]
) -> tuple[ProgrammeInfo | None, Period] | None:
    """The programme and period `/digest [CODE] [PERIOD]` asks for; None after answering why not."""
    services = context.services
    code, key = split_request(args)
    try:
        try:
            programme = await services.digest.programme(code[:48] if code else None)
        except ProgrammeError as exc:
            if not (exc.key == "programme.unknown" and key is None):
                raise
            # One word that is no programme's code: read it as a (malformed) period.
            programme, key = await services.digest.programme(None), code
    except ProgrammeError as exc:
        params = {k: escape(str(v)) for k, v in exc.params.items()}
        await message.reply_text(services.i18n.t(lang, exc.key, **params), parse_mode=ParseMode.HTML)
        return None
    try:
        return programme, services.digest.period(key, programme)
    except ValueError:
        example = services.digest.period(None, programme).key
        await message.reply_text(
            services.i18n.t(lang, "digest.bad_period", value=(key or "")[:20], example=example)
        )
        return None


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
    request = await _request(context, message, lang, list(context.args or []))
    if request is None:
        return
    programme, period = request
    scopes: list[str | None] = [None] if {"manager", "admin"} & person.roles else list(leader_units)
    for unit_code in scopes:
        try:
            data = await services.digest.build(period, unit_code, programme)
        except UnknownScope:
            continue
        folder = services.config.data_path / "reports" / "on-demand" / str(user.id)
        rendered = await services.digest.render(data, folder, lang)
        captions = services.digest.captions(lang, data.period)
        for text in rendered.texts:
            await message.reply_text(text, parse_mode=ParseMode.HTML)
        files = rendered.files
        with files["png"].open("rb") as handle:
            await message.reply_photo(handle, caption=captions["png"])
        for fmt in ("docx", "xlsx"):
            with files[fmt].open("rb") as handle:
                await message.reply_document(handle, filename=files[fmt].name, caption=captions[fmt])


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
