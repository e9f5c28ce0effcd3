"""Deadline extensions: a lead unit's focal point asks (/extend), an admin decides (ex:)."""

from __future__ import annotations

from html import escape

from telegram import Update
from telegram.constants import ParseMode
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, filters

from bot.context import Context
from bot.services.admin import AdminError
from handlers import callbacks
from handlers.admin.common import begin, drop_buttons
from handlers.common import acknowledge


async def extend(update: Update, context: Context) -> None:
    """Ask to move a deadline: /extend CODE DATE reason…"""
    call = await begin(update, context, "extend", "focal")
    if call is None:
        return
    reason = call.rest(2)
    if len(call.args) < 3 or not reason:
        return await call.usage()
    admin = call.services.admin
    try:
        new = admin.parse_date(call.args[1], allow_ongoing=False)
        assert new is not None
        await admin.request_extension(call.actor, call.args[0], new, reason)
    except AdminError as exc:
        return await call.error(exc)
    await call.say("admin.extension.sent", code=escape(call.args[0]), new=admin.fmt_date(new, call.lang))


async def decide(update: Update, context: Context) -> None:
    """Duyệt / Từ chối on an extension request."""
    query = update.callback_query
    assert query is not None and query.data is not None
    call = await begin(update, context, "extend_decide")
    if call is None:
        return
    approve, extension_id = callbacks.parse_extension(query.data)
    await acknowledge(update)
    admin = call.services.admin
    try:
        result = await admin.decide_extension(call.actor, extension_id, approve)
    except AdminError as exc:
        await drop_buttons(query)
        await call.message.reply_text(call.error_text(exc), parse_mode=ParseMode.HTML)
        return
    await drop_buttons(query)
    await call.message.reply_text(
        call.t(
            f"admin.extension.decided_{result.state}",
            code=escape(result.task_code),
            new=admin.fmt_date(result.new_deadline, call.lang),
        ),
        parse_mode=ParseMode.HTML,
    )


def handlers() -> list[BaseHandler]:  # type: ignore[type-arg]
    return [
        CommandHandler("extend", extend, filters=filters.ChatType.PRIVATE),
        CallbackQueryHandler(decide, pattern=callbacks.EXTENSION_DECISION),
    ]
