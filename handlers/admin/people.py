"""People and messages: /invite, /users, /role, /revoke, /broadcast, /audit."""

from __future__ import annotations

from html import escape

from telegram import Update
from telegram.constants import ParseMode
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, filters

from bot.config import parse_duration
from bot.context import Context
from bot.services.admin import AdminError
from bot.services.invites import UnknownUnit, deep_link
from handlers import callbacks
from handlers.admin.common import begin, keyboard
from handlers.common import acknowledge

INVITE_ROLES = ("focal", "leader", "manager")


async def invite(update: Update, context: Context) -> None:
    """Make a single-use invite link: /invite UNIT [focal|leader|manager]"""
    call = await begin(update, context, "invite")
    if call is None:
        return
    args = call.args
    role = args[1].lower() if len(args) == 2 else "focal"
    if len(args) not in (1, 2) or role not in INVITE_ROLES:
        return await call.usage()
    expiry = parse_duration(call.services.config.invites.default_expiry)
    try:
        new = await call.services.invites.create(
            args[0], role, expiry, actor=call.actor.label, actor_telegram_id=call.actor.telegram_id
        )
    except UnknownUnit:
        return await call.error(AdminError("unknown_unit", code=escape(args[0])))
    username = context.bot.username or call.services.config.telegram.username
    expires = call.services.i18n.datetime(call.lang, new.expires_at, call.services.config.tz)
    await call.say(
        "admin.invite.done",
        role=call.t(f"role.{role}"),
        unit=escape(new.unit_name),
        link=escape(deep_link(username, new.code)),
        expires=expires,
    )


async def users(update: Update, context: Context) -> None:
    """List the people the bot knows, with their roles."""
    call = await begin(update, context, "users")
    if call is None:
        return
    found = await call.services.admin.users()
    lines = [call.t("admin.users.title", count=len(found))]
    for user in found:
        lines.append(
            call.t(
                "admin.users.line",
                id=user.telegram_id,
                name=escape(user.name) or "—",
                username=f" @{escape(user.username)}" if user.username else "",
                roles=escape(", ".join(user.roles)) or call.t("admin.users.no_role"),
                unreachable="" if user.reachable else call.t("admin.users.unreachable"),
            )
        )
    await call.say_lines(lines)


async def role(update: Update, context: Context) -> None:
    """Give someone a role: /role USER admin|manager or /role USER focal|leader UNIT"""
    call = await begin(update, context, "role")
    if call is None:
        return
    if len(call.args) not in (2, 3):
        return await call.usage()
    unit = call.args[2] if len(call.args) == 3 else None
    try:
        change = await call.services.admin.set_role(call.actor, call.args[0], call.args[1], unit)
    except AdminError as exc:
        return await call.error(exc)
    await call.say(
        "admin.role.done",
        user=change.subject,
        before=escape(", ".join(change.before["roles"])) or "—",
        after=escape(", ".join(change.after["roles"])) or "—",
    )


async def revoke(update: Update, context: Context) -> None:
    """Take every role and unit from someone: /revoke USER"""
    call = await begin(update, context, "revoke")
    if call is None:
        return
    if len(call.args) != 1:
        return await call.usage()
    try:
        change = await call.services.admin.revoke(call.actor, call.args[0])
    except AdminError as exc:
        return await call.error(exc)
    key = "admin.revoke.config_admin" if change.after["roles"] else "admin.revoke.done"
    await call.say(key, user=change.subject, before=escape(", ".join(change.before["roles"])) or "—")


async def broadcast(update: Update, context: Context) -> None:
    """Show a message to everyone and its recipient count; it goes out on Gửi."""
    call = await begin(update, context, "broadcast")
    if call is None:
        return
    text = call.rest(0)
    if not text:
        return await call.usage()
    if len(text) > 3500:
        return await call.error(AdminError("too_long", limit=3500))
    version = await call.services.admin.save_draft(call.actor, "broadcast", {"text": text})
    count = await call.services.admin.count_broadcast_recipients()
    await call.say(
        "admin.broadcast.preview",
        text=escape(text),
        count=count,
        markup=keyboard(
            [
                [
                    (call.t("admin.button.send"), callbacks.confirm(callbacks.BROADCAST, True, version)),
                    (call.t("admin.button.cancel"), callbacks.confirm(callbacks.BROADCAST, False, version)),
                ]
            ]
        ),
    )


async def broadcast_confirm(update: Update, context: Context) -> None:
    """Send (through the outbox) or drop the broadcast shown."""
    query = update.callback_query
    assert query is not None and query.data is not None
    call = await begin(update, context, "broadcast")
    if call is None:
        return
    ok, version = callbacks.parse_confirm(query.data)
    await acknowledge(update)
    if not ok:
        await call.services.admin.drop_draft(call.actor, "broadcast")
        await query.edit_message_text(call.t("admin.broadcast.cancelled"))
        return
    try:
        count = await call.services.admin.broadcast(call.actor, version)
    except AdminError as exc:
        await query.edit_message_text(call.error_text(exc))
        return
    await query.edit_message_text(call.t("admin.broadcast.queued", count=count), parse_mode=ParseMode.HTML)


async def audit(update: Update, context: Context) -> None:
    """Show the latest audit entries: /audit [n]"""
    call = await begin(update, context, "audit")
    if call is None:
        return
    args = call.args
    if len(args) > 1 or (args and not (args[0].isdigit() and 1 <= int(args[0]) <= 100)):
        return await call.usage()
    limit = int(args[0]) if args else call.services.config.admin.audit_default
    entries = await call.services.admin.audit(limit)
    tz = call.services.config.tz
    lines = [call.t("admin.audit.title", count=len(entries))]
    for entry in reversed(entries):
        target = f"{entry.entity}:{entry.entity_id}" if entry.entity else ""
        change = ""
        if entry.before or entry.after:
            change = call.t(
                "admin.audit.change",
                before=escape(str(entry.before or {}))[:300],
                after=escape(str(entry.after or {}))[:300],
            )
        lines.append(
            call.t(
                "admin.audit.line",
                at=call.services.i18n.datetime(call.lang, entry.at, tz),
                who=escape(entry.actor or "-"),
                action=escape(entry.action),
                target=escape(target),
                change=change,
            )
        )
    await call.say_lines(lines)


def handlers() -> list[BaseHandler]:  # type: ignore[type-arg]
    private = filters.ChatType.PRIVATE
    return [
        CommandHandler("invite", invite, filters=private),
        CommandHandler("users", users, filters=private),
        CommandHandler("role", role, filters=private),
        CommandHandler("revoke", revoke, filters=private),
        CommandHandler("broadcast", broadcast, filters=private),
        CallbackQueryHandler(broadcast_confirm, pattern=callbacks.confirm_pattern(callbacks.BROADCAST)),
        CommandHandler("audit", audit, filters=private),
    ]
