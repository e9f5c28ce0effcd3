"""Programmes from chat: /programmes (list, managers) and /programme_close CODE (admins).
A programme is added or updated by importing its plan file (/import)."""

from __future__ import annotations

from html import escape

from telegram import Update
from telegram.ext import BaseHandler, CommandHandler, filters

from bot.context import Context
from bot.services.programme import ProgrammeError, ProgrammeInfo
from handlers.admin.common import Call, begin


def _day(value: object) -> str:
    return value.strftime("%d/%m/%Y") if hasattr(value, "strftime") else "—"


def programme_line(call: Call, programme: ProgrammeInfo) -> str:
    return call.t(
        "programme.line",
        code=escape(programme.code),
        short=escape(programme.short_code),
        state=call.t(f"programme.state_{programme.state}"),
        title=escape(programme.title) or "—",
        decision=escape(programme.decision) or call.t("programme.decision_none"),
        issued=_day(programme.decision_date),
        tasks=programme.tasks,
        open=programme.open_tasks,
    )


async def programmes(update: Update, context: Context) -> None:
    """List the programmes, active and closed."""
    call = await begin(update, context, "programmes", "manager")
    if call is None:
        return
    found = await call.services.digest.programmes.all()
    if not found:
        await call.say("programme.none")
        return
    await call.say_lines([call.t("programme.list_title"), *(programme_line(call, p) + "\n" for p in found)])


def closing_text(call: Call, programme: ProgrammeInfo) -> str:
    figures = programme.closing or {}
    rate = figures.get("rate")
    return call.t(
        "programme.closed",
        code=escape(programme.code),
        total=figures.get("total", 0),
        completed=figures.get("done_on_time", 0) + figures.get("done_late", 0),
        on_time=figures.get("done_on_time", 0),
        late=figures.get("done_late", 0),
        open=figures.get("open_within", 0) + figures.get("open_overdue", 0),
        overdue=figures.get("open_overdue", 0),
        rate=call.t("programme.closing_rate_none")
        if rate is None
        else call.context.services.i18n.percent(call.lang, rate),
    )


async def programme_close(update: Update, context: Context) -> None:
    """Close a programme: /programme_close CODE."""
    call = await begin(update, context, "programme_close")
    if call is None:
        return
    if len(call.args) != 1:
        await call.usage()
        return
    directory = call.services.digest.programmes
    try:
        closed = await directory.close(
            call.args[0],
            call.t("programme.close_reason", code=call.args[0][:48]),
            actor=call.actor.label,
            actor_telegram_id=call.actor.telegram_id,
        )
    except ProgrammeError as exc:
        await call.say_lines([call.t(exc.key, **{k: escape(str(v)) for k, v in exc.params.items()})])
        return
    await call.say_lines([closing_text(call, closed)])


def handlers() -> list[BaseHandler]:  # type: ignore[type-arg]
    private = filters.ChatType.PRIVATE
    return [
        CommandHandler("programmes", programmes, filters=private),
        CommandHandler("programme_close", programme_close, filters=private),
    ]
