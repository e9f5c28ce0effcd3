"""/tasks (the caller's units' tasks with their status) and /history (recent reports)."""

from __future__ import annotations

from html import escape
from typing import Any

from telegram import Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, filters

from bot.context import Context
from bot.services.tasks import TaskView
from handlers import callbacks
from handlers.common import acknowledge, caller, keyboard, page_row, refuse_callback

PAGE_SIZE = 6
COMMANDS = [("tasks", "focal"), ("tasks", "leader"), ("history", "focal"), ("history", "leader")]


def render_task(context: Context, lang: str, view: TaskView) -> str:
    t, date = context.services.i18n.t, context.services.i18n.date
    deadline = date(lang, view.deadline) if view.deadline else t(lang, "tasks.ongoing")
    last = (
        t(lang, "tasks.last_report", day=date(lang, view.last_report_on), percent=view.last_percent)
        if view.last_report_on
        else t(lang, "tasks.no_report")
    )
    return t(
        lang,
        "tasks.item",
        code=escape(view.code),
        title=escape(view.title[:300]),
        deadline=deadline,
        status=t(lang, f"tasks.class.{view.status.value}"),
        last=last,
        role=t(lang, "tasks.lead" if view.lead else "tasks.coordinating"),
    )


def tasks_page(
    context: Context, lang: str, views: list[TaskView], page: int
) -> tuple[str, list[list[tuple[str, str]]]]:
    t = context.services.i18n.t
    pages = max(1, (len(views) + PAGE_SIZE - 1) // PAGE_SIZE)
    page = min(max(page, 0), pages - 1)
    shown = views[page * PAGE_SIZE : (page + 1) * PAGE_SIZE]
    overdue = sum(1 for v in views if v.status.value == "open_overdue")
    lines = [t(lang, "tasks.header", count=len(views), overdue=overdue, page=page + 1, pages=pages)]
    heading = ""
    for view in shown:
        # Several active programmes: a heading where the page moves on to another one.
        if view.programme and view.programme != heading:
            heading = view.programme
            lines.append(
                t(lang, "tasks.programme", short=escape(view.programme), title=escape(view.programme_title))
            )
        lines.append(render_task(context, lang, view))
    rows = [
        [(t(lang, "tasks.report_button", code=v.code), callbacks.report_start(v.task_id))]
        # One tap for "nothing changed since the last report" (handlers/report.py).
        + (
            [(t(lang, "tasks.unchanged_button", code=v.code), callbacks.report_unchanged(v.task_id))]
            if v.last_report_on
            else []
        )
        for v in shown
        if v.can_report
    ]
    nav = page_row(page, pages, callbacks.TASKS_PAGE_PREFIX)
    if nav:
        rows.append(nav)
    return "\n\n".join(lines), rows


async def tasks(update: Update, context: Context) -> None:
    """List the caller's units' tasks, overdue first, with a report button on each."""
    person, lang = await caller(update, context)
    message = update.effective_message
    assert message is not None
    if not person.units:
        await message.reply_text(context.services.i18n.t(lang, "tasks.no_unit"))
        return
    today = context.services.clock.now().astimezone(context.services.config.tz).date()
    views = await context.services.tasks.for_person(person, today)
    if not views:
        await message.reply_text(context.services.i18n.t(lang, "tasks.none"))
        return
    text, rows = tasks_page(context, lang, views, 0)
    await message.reply_text(text, reply_markup=keyboard(rows) if rows else None)


async def tasks_page_button(update: Update, context: Context) -> None:
    """Show another page of /tasks in the same message."""
    query = update.callback_query
    assert query is not None
    person, lang = await caller(update, context)
    page = callbacks.parse_tasks_page(query.data if isinstance(query.data, str) else "")
    if page is None or not person.units:
        await refuse_callback(update, context, "malformed task list button", lang)
        return
    today = context.services.clock.now().astimezone(context.services.config.tz).date()
    views = await context.services.tasks.for_person(person, today)
    text, rows = tasks_page(context, lang, views, page)
    await acknowledge(update)
    await query.edit_message_text(text, reply_markup=keyboard(rows) if rows else None)


async def history(update: Update, context: Context) -> None:
    """/history [task code]: the unit's recent reports with their revisions."""
    person, lang = await caller(update, context)
    t = context.services.i18n.t
    message = update.effective_message
    assert message is not None
    if not person.units:
        # Managers and admins see one task's whole history (assignment, deadlines, extensions)
        # rather than a unit's reports; anyone else is refused and audited there.
        from handlers.admin.programme import history as task_history

        await task_history(update, context)
        return
    code = context.args[0][:32] if context.args else None
    reports = await context.services.history.recent(person, code)
    if reports is None:
        await message.reply_text(t(lang, "history.no_such_task", code=escape(code or "")))
        return
    if not reports:
        await message.reply_text(t(lang, "history.empty"))
        return
    tz = context.services.config.tz
    blocks = [t(lang, "history.header", count=len(reports))]
    for r in reports:
        lines = [
            t(
                lang,
                "history.item",
                id=r.report_id,
                code=escape(r.task_code),
                unit=escape(r.unit_code),
                period=r.period,
                status=t(lang, f"report.status.{r.status}"),
                percent=r.percent,
                time=context.services.i18n.datetime(lang, r.submitted_at, tz),
                revision=r.revision,
                files=r.files,
                results=escape(r.results[:300]),
            )
        ]
        for v in r.revisions[:-1][::-1]:
            lines.append(
                t(
                    lang,
                    "history.revision",
                    revision=v.revision,
                    time=context.services.i18n.datetime(lang, v.submitted_at, tz),
                    status=t(lang, f"report.status.{v.status}"),
                    percent=v.percent,
                    results=escape(v.results[:120]),
                )
            )
        block = "\n".join(lines)
        # Whole reports only: cutting inside one could cut an HTML entity in half.
        if sum(len(b) + 2 for b in blocks) + len(block) > 3900:
            break
        blocks.append(block)
    await message.reply_text("\n\n".join(blocks))


def handlers() -> list[BaseHandler[Update, Context, Any]]:
    private = filters.ChatType.PRIVATE
    return [
        CommandHandler("tasks", tasks, filters=private),
        CommandHandler("history", history, filters=private),
        CallbackQueryHandler(tasks_page_button, pattern=callbacks.TASKS_PAGE),
    ]
