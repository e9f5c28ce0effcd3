"""Units and tasks: /unit_add, /unit_list, /task_add (guided), /task_edit, /task_close,
/assign, /deadline, /history."""

from __future__ import annotations

from datetime import date
from html import escape
from typing import Any

from telegram import Update
from telegram.constants import ParseMode
from telegram.ext import (
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    filters,
)

from bot.context import Context
from bot.services.admin import AdminError, TaskView, clean, parse_target
from handlers import callbacks
from handlers.admin.common import Call, begin, keyboard
from handlers.common import acknowledge, alert

# The /task_add questions in order; the draft in the database says which one is next, so a
# restart (or a later /task_add) resumes where the admin stopped.
STEPS = ("group", "code", "title", "lead", "coordinating", "deadline", "output", "target")
ANSWER = 0
SKIP = {"-", "—", "không", "none", "no"}


def _fmt_value(call: Call, value: Any) -> str:
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, list):
        return escape(", ".join(str(v) for v in value))
    return escape(str(value))[:200]


def _changes(call: Call, before: dict[str, Any] | None, after: dict[str, Any] | None) -> str:
    """The fields that changed, one per line: field: old → new."""
    before, after = before or {}, after or {}
    return "\n".join(
        call.t(
            "admin.change_line",
            field=escape(k),
            old=_fmt_value(call, before.get(k)),
            new=_fmt_value(call, after.get(k)),
        )
        for k in after
        if before.get(k) != after.get(k)
    )


def task_card(call: Call, task: TaskView) -> str:
    target = ""
    if task.target_value is not None:
        target = f"{task.target_value:g}{task.target_unit or ''}"
    return call.t(
        "admin.task_card",
        code=escape(task.code),
        title=escape(task.title),
        group=escape(task.group),
        lead=escape(task.lead),
        coordinating=escape(", ".join(task.coordinating)) or "—",
        deadline=call.services.admin.fmt_date(task.deadline, call.lang),
        output=escape(task.expected_output) or "—",
        target=target or "—",
    )


async def unit_add(update: Update, context: Context) -> None:
    """Add a unit: /unit_add CODE Name…"""
    call = await begin(update, context, "unit_add")
    if call is None:
        return
    name = call.rest(1)
    if not call.args or not name:
        return await call.usage()
    try:
        unit = await call.services.admin.add_unit(call.actor, call.args[0], name)
    except AdminError as exc:
        return await call.error(exc)
    await call.say("admin.unit_add.done", code=escape(unit.code), name=escape(unit.name))


async def unit_list(update: Update, context: Context) -> None:
    """List the units with how many focal points each has."""
    call = await begin(update, context, "unit_list", "manager")
    if call is None:
        return
    units = await call.services.admin.units()
    lines = [call.t("admin.unit_list.title", count=len(units))]
    lines += [
        call.t("admin.unit_list.line", code=escape(u.code), name=escape(u.name), focal=u.focal_points)
        for u in units
    ]
    await call.say_lines(lines)


# --- /task_add -------------------------------------------------------------------------------


async def _ask(call: Call, data: dict[str, Any]) -> None:
    step = data["step"]
    params: dict[str, Any] = {}
    if step == "group":
        params["groups"] = escape(", ".join(await call.services.admin.group_codes()))
    elif step in ("lead", "coordinating"):
        params["units"] = escape(", ".join(u.code for u in await call.services.admin.units()))
    await call.say(f"admin.task_add.ask.{step}", **params)


async def task_add_start(update: Update, context: Context) -> int:
    """Start (or resume) the guided creation of a task."""
    call = await begin(update, context, "task_add")
    if call is None:
        return ConversationHandler.END
    pending = await call.services.admin.draft(call.actor, "task_add")
    if pending is not None and pending[0].get("step") in STEPS:
        data = pending[0]
        await call.say("admin.task_add.resume")
    else:
        data = {"step": STEPS[0]}
        await call.services.admin.save_draft(call.actor, "task_add", data)
        await call.say("admin.task_add.intro")
    await _ask(call, data)
    return ANSWER


async def _take(call: Call, step: str, text: str, data: dict[str, Any]) -> None:
    """Check one answer and put it into the draft; AdminError if it will not do."""
    admin = call.services.admin
    if step == "group":
        data["group"] = await admin.check_group(text)
    elif step == "code":
        data["code"] = await admin.check_new_task_code(text)
    elif step == "title":
        if not text or len(text) > 1000:
            raise AdminError("bad_name")
        data["title"] = text
    elif step == "lead":
        data["lead"] = (await admin.check_units([text]))[0]
    elif step == "coordinating":
        codes = [] if text.lower() in SKIP else text.replace(",", " ").replace(";", " ").split()
        data["coordinating"] = [c for c in await admin.check_units(codes) if c != data["lead"]]
    elif step == "deadline":
        day = admin.parse_date(text)
        data["deadline"] = day.isoformat() if day else None
    elif step == "output":
        data["expected_output"] = "" if text.lower() in SKIP else text[:2000]
    elif step == "target":
        data["target_value"], data["target_unit"] = parse_target("" if text.lower() in SKIP else text)


async def task_add_answer(update: Update, context: Context) -> int:
    """Take the answer to the current question and ask the next one (or confirm)."""
    call = await begin(update, context, "task_add")
    if call is None:
        return ConversationHandler.END
    pending = await call.services.admin.draft(call.actor, "task_add")
    if pending is None or pending[0].get("step") not in STEPS:
        return ConversationHandler.END
    data = pending[0]
    step = data["step"]
    try:
        await _take(call, step, clean(call.message.text or ""), data)
    except AdminError as exc:
        await call.error(exc)
        await _ask(call, data)
        return ANSWER
    index = STEPS.index(step)
    if index + 1 < len(STEPS):
        data["step"] = STEPS[index + 1]
        await call.services.admin.save_draft(call.actor, "task_add", data)
        await _ask(call, data)
        return ANSWER
    data["step"] = "confirm"
    version = await call.services.admin.save_draft(call.actor, "task_add", data)
    deadline = date.fromisoformat(data["deadline"]) if data.get("deadline") else None
    view = TaskView(
        0,
        data["code"],
        data["group"],
        data["title"],
        data["lead"],
        tuple(data["coordinating"]),
        deadline,
        data["expected_output"],
        data.get("target_value"),
        data.get("target_unit"),
    )
    await call.message.reply_text(
        call.t("admin.task_add.confirm") + "\n\n" + task_card(call, view),
        parse_mode=ParseMode.HTML,
        reply_markup=keyboard(
            [
                [
                    (call.t("admin.button.create"), callbacks.confirm(callbacks.TASK_ADD, True, version)),
                    (call.t("admin.button.cancel"), callbacks.confirm(callbacks.TASK_ADD, False, version)),
                ]
            ]
        ),
    )
    return ConversationHandler.END


async def task_add_cancel(update: Update, context: Context) -> int:
    """Drop the task being written."""
    call = await begin(update, context, "task_add")
    if call is not None:
        await call.services.admin.drop_draft(call.actor, "task_add")
        await call.say("admin.task_add.cancelled")
    return ConversationHandler.END


async def task_add_confirm(update: Update, context: Context) -> None:
    """Create the task (Tạo) or drop it (Hủy), from the confirmation buttons."""
    query = update.callback_query
    assert query is not None and query.data is not None
    call = await begin(update, context, "task_add")
    if call is None:
        return
    ok, version = callbacks.parse_confirm(query.data)
    pending = await call.services.admin.draft(call.actor, "task_add")
    if pending is None or pending[1] != version or pending[0].get("step") != "confirm":
        await alert(update, call.t("admin.error.stale"))
        return
    await acknowledge(update)
    if not ok:
        await call.services.admin.drop_draft(call.actor, "task_add")
        await query.edit_message_text(call.t("admin.task_add.cancelled"))
        return
    try:
        change = await call.services.admin.create_task(call.actor, pending[0])
    except AdminError as exc:
        await query.edit_message_text(call.error_text(exc), parse_mode=ParseMode.HTML)
        return
    task = await call.services.admin.task(change.subject)
    await query.edit_message_text(
        call.t("admin.task_add.done", notified=change.notified) + "\n\n" + task_card(call, task),
        parse_mode=ParseMode.HTML,
    )


# --- one-line commands on tasks ----------------------------------------------------------------


async def task_edit(update: Update, context: Context) -> None:
    """Change one field of a task: /task_edit CODE FIELD value…"""
    call = await begin(update, context, "task_edit")
    if call is None:
        return
    if not call.args:
        return await call.usage()
    try:
        if len(call.args) == 1:
            task = await call.services.admin.task(call.args[0])
            await call.say("admin.task_edit.fields", card=task_card(call, task))
            return
        change = await call.services.admin.edit_task(call.actor, call.args[0], call.args[1], call.rest(2))
    except AdminError as exc:
        return await call.error(exc)
    if not change.after:
        await call.say("admin.task_edit.same", code=escape(change.subject))
        return
    await call.say(
        "admin.task_edit.done",
        code=escape(change.subject),
        changes=_changes(call, change.before, change.after),
    )


async def task_close(update: Update, context: Context) -> None:
    """Withdraw a task, with the reason: /task_close CODE reason…"""
    call = await begin(update, context, "task_close")
    if call is None:
        return
    reason = call.rest(1)
    if not call.args or not reason:
        return await call.usage()
    try:
        change = await call.services.admin.close_task(call.actor, call.args[0], reason)
    except AdminError as exc:
        return await call.error(exc)
    await call.say(
        "admin.task_close.done", code=escape(change.subject), reason=escape(reason), notified=change.notified
    )


async def assign(update: Update, context: Context) -> None:
    """Set a task's units: /assign CODE LEAD [COORDINATING…]"""
    call = await begin(update, context, "assign")
    if call is None:
        return
    if len(call.args) < 2:
        return await call.usage()
    try:
        change = await call.services.admin.assign(call.actor, call.args[0], call.args[1:])
    except AdminError as exc:
        return await call.error(exc)
    await call.say(
        "admin.assign.done",
        code=escape(change.subject),
        changes=_changes(call, change.before, change.after),
        notified=change.notified,
    )


async def deadline(update: Update, context: Context) -> None:
    """Move a task's deadline: /deadline CODE DATE [force]"""
    call = await begin(update, context, "deadline")
    if call is None:
        return
    args = call.args
    if len(args) == 3 and f"{args[1]} {args[2]}".lower() in ("thường xuyên", "thuong xuyen"):
        args = [args[0], "ongoing"]
    force = len(args) == 3 and args[2].lower() in ("force", "sửa", "sua")
    if len(args) != 2 and not force:
        return await call.usage()
    admin = call.services.admin
    try:
        new = admin.parse_date(args[1], force=force)
        change = await admin.set_deadline(call.actor, args[0], new, detail="forced" if force else "")
    except AdminError as exc:
        return await call.error(exc)
    old = change.before["deadline"]
    await call.say(
        "admin.deadline.done",
        code=escape(change.subject),
        old=admin.fmt_date(date.fromisoformat(old) if old else None, call.lang),
        new=admin.fmt_date(new, call.lang),
        notified=change.notified,
    )


async def history(update: Update, context: Context) -> None:
    """Show what happened to a task: /history CODE"""
    call = await begin(update, context, "history", "manager")
    if call is None:
        return
    if len(call.args) != 1:
        return await call.usage()
    try:
        task, entries = await call.services.admin.history(call.args[0])
    except AdminError as exc:
        return await call.error(exc)
    tz = call.services.config.tz
    lines = [call.t("admin.history.title", code=escape(task.code), title=escape(task.title))]
    for entry in reversed(entries):
        # A creation lists every field: the action says enough; a change shows what moved.
        change = _changes(call, entry.before, entry.after) if entry.before else ""
        lines.append(
            call.t(
                "admin.history.line",
                at=call.services.i18n.datetime(call.lang, entry.at, tz),
                who=escape(entry.actor or "-"),
                action=escape(entry.action),
                change=f"\n{change}" if change else "",
            )
        )
    if not entries:
        lines.append(call.t("admin.history.empty"))
    await call.say_lines(lines)


def handlers() -> list[BaseHandler]:  # type: ignore[type-arg]
    private = filters.ChatType.PRIVATE
    conversation = ConversationHandler(
        entry_points=[CommandHandler("task_add", task_add_start, filters=private)],
        states={ANSWER: [MessageHandler(filters.TEXT & ~filters.COMMAND & private, task_add_answer)]},
        fallbacks=[CommandHandler("cancel", task_add_cancel, filters=private)],
        name="admin_task_add",
        allow_reentry=True,
    )
    return [
        CommandHandler("unit_add", unit_add, filters=private),
        CommandHandler("unit_list", unit_list, filters=private),
        conversation,
        CallbackQueryHandler(task_add_confirm, pattern=callbacks.confirm_pattern(callbacks.TASK_ADD)),
        CommandHandler("task_edit", task_edit, filters=private),
        CommandHandler("task_close", task_close, filters=private),
        CommandHandler("assign", assign, filters=private),
        CommandHandler("deadline", deadline, filters=private),
        # /history is registered by handlers.tasks, which hands managers and admins here.
    ]
