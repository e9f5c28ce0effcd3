"""/report: the guided progress report, one ConversationHandler.

task → status → percent (skipped for "done") → results → difficulties → proposals → target
value (only tasks with a numeric target) → evidence → confirm (Gửi / Sửa / Hủy) → receipt.

Every answer and the step reached are written to the database (DraftService.save) before the
next question is shown, so a restart (even kill -9) resumes at the same step. Buttons carry the
draft's version: a button on an older message is answered "out of date" and changes nothing.
Callback data: rp:start:<task_id> (any message may open the report on a task; no version),
rp:<kind>:<version>:<value> for everything inside the flow.
"""

from __future__ import annotations

import logging
import re
import unicodedata
import warnings
from html import escape
from typing import Any

from telegram import Document, PhotoSize, Update
from telegram.error import TelegramError
from telegram.ext import (
    ApplicationHandlerStop,
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    filters,
)
from telegram.warnings import PTBUserWarning

from bot.services.drafts import DraftView, OutOfScope
from bot.services.reporting import EvidenceFile, ReportInput
from bot.services.tasks import ReportableTask, TaskView
from handlers.common import (
    caller,
    clip,
    download,
    keyboard,
    page_row,
    refuse_callback,
    send_html,
    stale_callback,
)
from handlers.context import Context

log = logging.getLogger(__name__)

FLOW = "report"
PAGE_SIZE = 8
STATUSES = ("not_started", "in_progress", "done", "stuck")
PERCENTS = (0, 25, 50, 75, 100)
STEPS = (
    "task",
    "status",
    "percent",
    "results",
    "difficulties",
    "proposals",
    "target",
    "evidence",
    "confirm",
    "edit",
)
# The order of the questions; confirm and edit come after.
ORDER = ("status", "percent", "results", "difficulties", "proposals", "target", "evidence", "confirm")
EDITABLE = ("status", "percent", "results", "difficulties", "proposals", "target", "evidence")
TEXT_FIELDS = ("results", "difficulties", "proposals")

COMMANDS = [("report", "focal"), ("cancel", "focal")]

_DATA = re.compile(r"^rp:(pg|t|s|p|ev|c|e):(\d{1,9}):([a-z_0-9]{1,20})$")
_START = re.compile(r"^rp:start:(\d{1,12})$")


def _t(context: Context, lang: str | None, key: str, **params: Any) -> str:
    return context.services.i18n.t(lang, key, **params)


def _chat_id(update: Update) -> int:
    chat = update.effective_chat
    assert chat is not None
    return chat.id


def _user_id(update: Update) -> int:
    user = update.effective_user
    assert user is not None
    return user.id


def _clean(text: str) -> str:
    return unicodedata.normalize("NFC", text).strip()


def _today(context: Context) -> Any:
    return context.services.clock.now().astimezone(context.services.config.tz).date()


def next_step(after: str, data: dict[str, Any]) -> str:
    """The question after `after`; while editing one field, back to the summary unless the
    change makes another answer necessary."""
    if data.get("editing"):
        if after == "status":
            if data.get("status") != "done" and data.get("percent") is None:
                return "percent"
            if data.get("status") == "stuck" and not data.get("difficulties"):
                return "difficulties"
        return "confirm"
    index = ORDER.index(after) + 1
    while True:
        step = ORDER[index]
        skipped = (step == "percent" and data.get("status") == "done") or (
            step == "target" and not data.get("has_target")
        )
        if not skipped:
            return step
        index += 1


# --------------------------------------------------------------------------- rendering


def _status_label(context: Context, lang: str | None, status: str | None) -> str:
    return _t(context, lang, f"report.status.{status}") if status else "—"


def summary(context: Context, lang: str | None, data: dict[str, Any]) -> str:
    empty = _t(context, lang, "report.summary.empty")
    lines = [
        _t(
            context,
            lang,
            "report.summary.title",
            code=escape(data["task_code"]),
            title=escape(data["task_title"]),
        ),
        _t(context, lang, "report.summary.status", value=_status_label(context, lang, data.get("status"))),
        _t(context, lang, "report.summary.percent", value=data.get("percent")),
        _t(context, lang, "report.summary.results", value=escape(data.get("results") or empty)),
        _t(context, lang, "report.summary.difficulties", value=escape(data.get("difficulties") or empty)),
        _t(context, lang, "report.summary.proposals", value=escape(data.get("proposals") or empty)),
    ]
    if data.get("has_target"):
        target = data.get("target")
        lines.append(
            _t(
                context,
                lang,
                "report.summary.target",
                label=escape(data.get("target_label") or ""),
                value=empty if target is None else _number(target),
                unit=escape(data.get("target_unit") or ""),
            )
        )
    files = data.get("files") or []
    names = ", ".join(escape(f["file_name"]) for f in files) or empty
    lines.append(_t(context, lang, "report.summary.evidence", value=names))
    text = "\n".join(lines)
    # Telegram's limit is 4096; answers are capped by max_text_length, so this is a backstop.
    return text[:4000]


def _number(value: float) -> str:
    return f"{value:g}"


def question(
    context: Context, lang: str | None, step: str, data: dict[str, Any], version: int
) -> tuple[str, list[list[tuple[str, str]]]]:
    """The text and buttons that ask for `step`."""
    v = version
    code = escape(data.get("task_code", ""))
    if step == "status":
        return (
            _t(context, lang, "report.ask.status", code=code, title=escape(data.get("task_title", ""))),
            [[(_status_label(context, lang, s), f"rp:s:{v}:{s}")] for s in STATUSES],
        )
    if step == "percent":
        return (_t(context, lang, "report.ask.percent"), [[(f"{p}%", f"rp:p:{v}:{p}") for p in PERCENTS]])
    if step == "results":
        return _t(
            context, lang, "report.ask.results", limit=context.services.config.reporting.max_text_length
        ), []
    if step == "difficulties":
        key = (
            "report.ask.difficulties_required" if data.get("status") == "stuck" else "report.ask.difficulties"
        )
        return _t(context, lang, key), []
    if step == "proposals":
        return _t(context, lang, "report.ask.proposals"), []
    if step == "target":
        return (
            _t(
                context,
                lang,
                "report.ask.target",
                label=escape(data.get("target_label") or ""),
                value=_number(data.get("target_value") or 0),
                unit=escape(data.get("target_unit") or ""),
            ),
            [],
        )
    if step == "evidence":
        reporting = context.services.config.reporting
        files = data.get("files") or []
        key = "report.ask.evidence_more" if files else "report.ask.evidence"
        return (
            _t(
                context,
                lang,
                key,
                mb=reporting.evidence_max_mb,
                types=", ".join(reporting.evidence_extensions),
                count=len(files),
            ),
            [[(_t(context, lang, "report.button.evidence_done"), f"rp:ev:{v}:done")]],
        )
    if step == "confirm":
        return (
            summary(context, lang, data) + "\n\n" + _t(context, lang, "report.ask.confirm"),
            [
                [
                    (_t(context, lang, "report.button.send"), f"rp:c:{v}:send"),
                    (_t(context, lang, "report.button.edit"), f"rp:c:{v}:edit"),
                    (_t(context, lang, "report.button.cancel"), f"rp:c:{v}:cancel"),
                ]
            ],
        )
    if step == "edit":
        fields = [
            f
            for f in EDITABLE
            if not (f == "percent" and data.get("status") == "done")
            and not (f == "target" and not data.get("has_target"))
        ]
        rows = [[(_t(context, lang, f"report.field.{f}"), f"rp:e:{v}:{f}")] for f in fields]
        rows.append([(_t(context, lang, "report.button.back"), f"rp:e:{v}:back")])
        return _t(context, lang, "report.ask.edit"), rows
    raise ValueError(step)


async def _done_with_buttons(update: Update) -> None:
    """Acknowledge the press (Telegram stops the button's spinner). A refused acknowledgement
    (a press answered late after a restart is "too old") is only logged: the step it started
    goes on, since only the spinner is at stake.

    Acknowledging before the step rather than alongside it measured cheaper under load
    (bench/report_flow.py: one request in flight per update). The old message keeps its
    buttons (one call less per step); they carry the draft's version, so pressing them later
    is answered "out of date"."""
    query = update.callback_query
    if query is None:
        return
    try:
        await query.answer()
    except TelegramError as exc:
        log.warning("press in chat %s not acknowledged: %s", _chat_id(update), exc)


async def advance(update: Update, context: Context, data: dict[str, Any], step: str) -> str | int:
    """Store the answers and the step, then ask the step's question. The scope is checked in
    the same transaction: someone no longer a focal point of the task's unit is refused and
    the report ends, with nothing stored."""
    data["step"] = step
    data["update_id"] = update.update_id  # see _drop_if_handled
    if step == "confirm":
        data["editing"] = False
    scope = (
        (int(data["task_id"]), int(data["unit_id"])) if data.get("task_id") and data.get("unit_id") else None
    )
    try:
        saved = await context.services.drafts.save(
            _user_id(update), FLOW, data, step, _chat_id(update), scope=scope
        )
    except OutOfScope:
        return await _out_of_scope(update, context, data.get("lang"))
    text, rows = question(context, data.get("lang"), step, data, saved.version)
    await send_html(update, text, rows)
    return step


async def _out_of_scope(update: Update, context: Context, lang: str | None) -> int:
    """The person may no longer report on the draft's task: audit, say so, close the draft."""
    user_id = _user_id(update)
    log.warning("report step refused for %s: no longer in the task's scope", user_id)
    await context.services.audit.record(
        "report.refused", actor_telegram_id=user_id, detail="report step on a task no longer the caller's"
    )
    await context.services.drafts.close(user_id, FLOW, _chat_id(update))
    await send_html(update, _t(context, lang, "report.out_of_scope"))
    return ConversationHandler.END


# --------------------------------------------------------------------------- entry


async def _task_page(
    update: Update,
    context: Context,
    lang: str,
    tasks: list[TaskView],
    page: int,
    version: int,
    *,
    edit: bool = False,
) -> None:
    pages = max(1, (len(tasks) + PAGE_SIZE - 1) // PAGE_SIZE)
    page = min(max(page, 0), pages - 1)
    shown = tasks[page * PAGE_SIZE : (page + 1) * PAGE_SIZE]
    rows = [[(f"{t.code} · {clip(t.title, 40)}", f"rp:t:{version}:{t.task_id}")] for t in shown]
    nav = page_row(page, pages, f"rp:pg:{version}:")
    if nav:
        rows.append(nav)
    text = _t(context, lang, "report.ask.task", page=page + 1, pages=pages)
    query = update.callback_query
    if edit and query is not None:
        await _done_with_buttons(update)
        await query.edit_message_text(text, reply_markup=keyboard(rows))
    else:
        await send_html(update, text, rows)


async def _begin(update: Update, context: Context, lang: str, task: ReportableTask) -> str | int:
    data: dict[str, Any] = {
        "lang": lang,
        "task_id": task.task_id,
        "task_code": task.code,
        "task_title": task.title,
        "unit_id": task.unit_id,
        "has_target": task.has_target,
        "target_value": task.target_value,
        "target_unit": task.target_unit,
        "target_label": task.target_label,
        "status": None,
        "percent": None,
        "results": "",
        "difficulties": "",
        "proposals": "",
        "target": None,
        "files": [],
        "editing": False,
    }
    return await advance(update, context, data, "status")


async def report(update: Update, context: Context) -> str | int | None:
    """Start a report: pick a task (or jump to the one named: /report 3.2).

    A refusal returns None, which leaves a report already under way where it was."""
    services = context.services
    _drop_if_handled(update, await services.drafts.load(_user_id(update), FLOW))
    code = context.args[0][:32] if context.args else None
    # Who is asking and which task, one after the other: each is a read in place on SQLite,
    # where running them as two tasks cost more trips through the busy event loop than it saved.
    person, lang = await caller(update, context)
    found = await services.tasks.lookup(code=code) if code else None
    if not person.unit_ids("focal"):
        key = "report.not_focal" if person.known else "report.unknown_user"
        await send_html(update, _t(context, lang, key))
        return None
    if code is not None:
        match = services.tasks.reportable_for(person, found)
        if match is None:
            await services.audit.record(
                "command.refused",
                actor_telegram_id=person.telegram_id,
                detail=f"/report {code!r}: not one of the unit's tasks",
            )
            await send_html(update, _t(context, lang, "report.no_such_task", code=escape(code)))
            return None
        return await _begin(update, context, lang, match)
    tasks = await services.tasks.reportable(person, _today(context))
    if not tasks:
        await send_html(update, _t(context, lang, "report.no_tasks"))
        return None
    data = {"lang": lang, "step": "task", "page": 0, "update_id": update.update_id}
    saved = await services.drafts.save(person.telegram_id, FLOW, data, "task", _chat_id(update))
    await _task_page(update, context, lang, tasks, 0, saved.version)
    return "task"


async def start_from_button(update: Update, context: Context) -> str | int | None:
    """Open the report on the task of a "Báo cáo" button (rp:start:<task_id>)."""
    query = update.callback_query
    assert query is not None and isinstance(query.data, str)
    person, lang = await caller(update, context)
    match = _START.match(query.data)
    task = None
    if match:
        task = await context.services.tasks.for_report(person, int(match.group(1)))
    if task is None:
        await refuse_callback(update, context, "rp:start for a task outside the caller's units", lang)
        return None
    await _done_with_buttons(update)
    return await _begin(update, context, lang, task)


# --------------------------------------------------------------------------- buttons


async def _pressed(update: Update, context: Context, kind: str) -> tuple[DraftView, str] | None:
    """The draft and the button's value, or None when the press was answered already (stale,
    malformed or the draft expired)."""
    query = update.callback_query
    assert query is not None
    match = _DATA.match(query.data if isinstance(query.data, str) else "")
    draft = await context.services.drafts.load(_user_id(update), FLOW)
    lang = draft.data.get("lang") if draft else None
    if match is None or match.group(1) != kind:
        await refuse_callback(update, context, "malformed report button", lang)
        return None
    if draft is None:
        await stale_callback(update, context, lang)
        return None
    if int(match.group(2)) != draft.version:
        await stale_callback(update, context, lang)
        return None
    return draft, match.group(3)


async def _expired(update: Update, context: Context) -> int:
    await send_html(update, _t(context, None, "report.expired"))
    return ConversationHandler.END


async def on_page(update: Update, context: Context) -> str | None:
    """Show another page of the task list."""
    pressed = await _pressed(update, context, "pg")
    if pressed is None:
        return None
    draft, value = pressed
    person, lang = await caller(update, context)
    if not value.isdigit():
        await refuse_callback(update, context, "malformed page button", lang)
        return None
    tasks = await context.services.tasks.reportable(person, _today(context))
    await _task_page(update, context, lang, tasks, int(value), draft.version, edit=True)
    return None


async def on_task(update: Update, context: Context) -> str | int | None:
    """Take the picked task (refusing one outside the caller's units)."""
    pressed = await _pressed(update, context, "t")
    if pressed is None:
        return None
    _, value = pressed
    person, lang = await caller(update, context)
    task = await context.services.tasks.for_report(person, int(value)) if value.isdigit() else None
    if task is None:
        await refuse_callback(update, context, "report on a task outside the caller's units", lang)
        return None
    await _done_with_buttons(update)
    return await _begin(update, context, lang, task)


async def on_status(update: Update, context: Context) -> str | int | None:
    """Take the status."""
    pressed = await _pressed(update, context, "s")
    if pressed is None:
        return None
    draft, value = pressed
    if value not in STATUSES:
        await refuse_callback(update, context, "unknown status", draft.data.get("lang"))
        return None
    data = draft.data
    previous = data.get("status")
    data["status"] = value
    if value == "done":
        data["percent"] = 100
    elif previous == "done":
        data["percent"] = None
    await _done_with_buttons(update)
    return await advance(update, context, data, next_step("status", data))


async def on_percent_button(update: Update, context: Context) -> str | int | None:
    """Take the percent from a button."""
    pressed = await _pressed(update, context, "p")
    if pressed is None:
        return None
    draft, value = pressed
    if not value.isdigit() or int(value) > 100:
        await refuse_callback(update, context, "percent out of range", draft.data.get("lang"))
        return None
    draft.data["percent"] = int(value)
    await _done_with_buttons(update)
    return await advance(update, context, draft.data, next_step("percent", draft.data))


async def on_evidence_done(update: Update, context: Context) -> str | int | None:
    """No (more) evidence: go to the summary."""
    pressed = await _pressed(update, context, "ev")
    if pressed is None:
        return None
    draft, _ = pressed
    await _done_with_buttons(update)
    return await advance(update, context, draft.data, "confirm")


async def on_confirm(update: Update, context: Context) -> str | int | None:
    """Send, edit or cancel the report from the summary."""
    pressed = await _pressed(update, context, "c")
    if pressed is None:
        return None
    draft, value = pressed
    if value == "send":
        await _done_with_buttons(update)
        return await submit(update, context, draft.data)
    if value == "edit":
        await _done_with_buttons(update)
        return await advance(update, context, draft.data, "edit")
    if value == "cancel":
        await _done_with_buttons(update)
        return await _cancel(update, context, draft.data.get("lang"))
    await refuse_callback(update, context, "unknown confirm action", draft.data.get("lang"))
    return None


async def on_edit(update: Update, context: Context) -> str | int | None:
    """Ask again for the one field picked from the summary."""
    pressed = await _pressed(update, context, "e")
    if pressed is None:
        return None
    draft, value = pressed
    data = draft.data
    if value == "back":
        await _done_with_buttons(update)
        return await advance(update, context, data, "confirm")
    if value not in EDITABLE:
        await refuse_callback(update, context, "unknown field", data.get("lang"))
        return None
    data["editing"] = True
    if value == "evidence":
        data["files"] = []
    await _done_with_buttons(update)
    return await advance(update, context, data, value)


# --------------------------------------------------------------------------- typed answers


async def _typed_draft(update: Update, context: Context) -> DraftView | None:
    draft = await context.services.drafts.load(_user_id(update), FLOW)
    _drop_if_handled(update, draft)
    return draft


def _drop_if_handled(update: Update, draft: DraftView | None) -> None:
    """An update the draft's last step already came from (or an older one) is a re-delivery:
    after a crash, Telegram sends again the updates whose receipt the bot had not yet
    confirmed. Handled once already, it is dropped: it changes nothing and is not answered.
    (Buttons need no such check: they carry the draft's version.)"""
    if draft is not None and update.update_id <= int(draft.data.get("update_id", -1)):
        log.info("update %s for %s handled before a restart: dropped", update.update_id, _user_id(update))
        raise ApplicationHandlerStop()


async def _again(update: Update, context: Context, draft: DraftView, error_key: str, **params: Any) -> None:
    """Say what was wrong and ask the same question again (nothing is stored)."""
    lang = draft.data.get("lang")
    step = draft.data.get("step", "status")
    text, rows = question(context, lang, step, draft.data, draft.version)
    await send_html(update, _t(context, lang, error_key, **params) + "\n\n" + text, rows)


async def on_percent_text(update: Update, context: Context) -> str | int | None:
    """Take a typed percent: a whole number 0-100."""
    draft = await _typed_draft(update, context)
    if draft is None:
        return await _expired(update, context)
    text = (update.effective_message.text or "").strip().rstrip("%").strip()  # type: ignore[union-attr]
    if not text.isascii() or not text.isdigit() or int(text) > 100:
        await _again(update, context, draft, "report.error.percent")
        return None
    draft.data["percent"] = int(text)
    return await advance(update, context, draft.data, next_step("percent", draft.data))


async def on_text(update: Update, context: Context) -> str | int | None:
    """Take a typed answer for results, difficulties or proposals."""
    draft = await _typed_draft(update, context)
    if draft is None:
        return await _expired(update, context)
    step = draft.data.get("step", "")
    text = _clean(update.effective_message.text or "")  # type: ignore[union-attr]
    limit = context.services.config.reporting.max_text_length
    if not text:
        await _again(update, context, draft, "report.error.empty")
        return None
    if len(text) > limit:
        await _again(update, context, draft, "report.error.too_long", limit=limit, length=len(text))
        return None
    draft.data[step] = text
    return await advance(update, context, draft.data, next_step(step, draft.data))


async def on_target(update: Update, context: Context) -> str | int | None:
    """Take the value of the task's numeric target."""
    draft = await _typed_draft(update, context)
    if draft is None:
        return await _expired(update, context)
    text = (update.effective_message.text or "").strip().rstrip("%").strip()  # type: ignore[union-attr]
    try:
        value = float(text.replace(",", "."))
    except ValueError:
        value = float("nan")
    if not re.fullmatch(r"-?\d{1,12}([.,]\d{1,6})?", text) or value != value:
        await _again(update, context, draft, "report.error.number")
        return None
    draft.data["target"] = value
    return await advance(update, context, draft.data, next_step("target", draft.data))


async def on_skip(update: Update, context: Context) -> str | int | None:
    """/skip an optional answer (difficulties unless stuck, proposals, evidence)."""
    draft = await _typed_draft(update, context)
    if draft is None:
        return await _expired(update, context)
    step = draft.data.get("step", "")
    if step == "difficulties" and draft.data.get("status") == "stuck":
        await _again(update, context, draft, "report.error.difficulties_required")
        return None
    if step in ("difficulties", "proposals"):
        draft.data[step] = ""
    if step not in ("difficulties", "proposals", "evidence"):
        await _again(update, context, draft, "report.error.no_skip")
        return None
    return await advance(
        update, context, draft.data, "confirm" if step == "evidence" else next_step(step, draft.data)
    )


async def on_file(update: Update, context: Context) -> str | int | None:
    """Take an evidence file: check it, keep its Telegram id, download a copy with its sha256."""
    draft = await _typed_draft(update, context)
    if draft is None:
        return await _expired(update, context)
    message = update.effective_message
    assert message is not None
    store = context.services.evidence
    tg_file: Document | PhotoSize
    if message.document is not None:
        tg_file = message.document
        name = message.document.file_name or "document"
        mime = message.document.mime_type or ""
    else:
        tg_file = message.photo[-1]
        name = f"photo-{tg_file.file_unique_id}.jpg"
        mime = "image/jpeg"
    size = tg_file.file_size or 0
    refusal = store.refusal(name, size)
    if refusal is not None:
        await _again(
            update,
            context,
            draft,
            f"report.error.file_{refusal}",
            mb=context.services.config.reporting.evidence_max_mb,
            types=", ".join(context.services.config.reporting.evidence_extensions),
        )
        return None
    content = await download(tg_file)
    if content is None:
        await _again(update, context, draft, "report.error.file_download")
        return None
    copy = store.keep(content, name)
    files = list(draft.data.get("files") or [])
    files.append(
        {
            "file_id": tg_file.file_id,
            "unique_id": tg_file.file_unique_id,
            "file_name": _clean(name)[:255],
            "mime_type": mime[:127],
            "size": len(content),
            "sha256": copy.sha256,
            "local_path": copy.local_path,
        }
    )
    draft.data["files"] = files
    return await advance(update, context, draft.data, "evidence")


async def reask(update: Update, context: Context) -> str | int | None:
    """Anything unexpected: say how to answer and ask the same question again."""
    draft = await _typed_draft(update, context)
    if draft is None:
        return await _expired(update, context)
    if draft.data.get("step") == "task":
        await send_html(update, _t(context, draft.data.get("lang"), "report.error.use_buttons"))
        return None
    await _again(update, context, draft, "report.error.use_buttons")
    return None


async def on_stale(update: Update, context: Context) -> None:
    """A report button that fits no step now: out of date, or not ours at all."""
    query = update.callback_query
    assert query is not None
    data = query.data if isinstance(query.data, str) else ""
    draft = await context.services.drafts.load(_user_id(update), FLOW)
    lang = draft.data.get("lang") if draft else None
    if _DATA.match(data) is None:
        await refuse_callback(update, context, "malformed report button", lang)
        return
    await stale_callback(update, context, lang)


# --------------------------------------------------------------------------- end


async def submit(update: Update, context: Context, data: dict[str, Any]) -> str | int | None:
    """Store the report, answer with the receipt and tell the unit's leaders."""
    services = context.services
    lang = data.get("lang")
    # Membership may have changed since the task was picked: check the scope again (the
    # person and the scope in one read).
    task_id, unit_id = int(data["task_id"]), int(data.get("unit_id") or 0)
    user = update.effective_user
    assert user is not None
    person, allowed = await services.people.reporter(user.id, task_id, unit_id, user.first_name)
    if not allowed:
        await refuse_callback(update, context, "report on a task no longer the caller's", lang)
        await services.drafts.close(person.telegram_id, FLOW, _chat_id(update))
        return ConversationHandler.END
    files = tuple(
        EvidenceFile(
            f["file_id"],
            f["unique_id"],
            f["file_name"],
            f["mime_type"],
            f["size"],
            f["sha256"],
            f["local_path"],
        )
        for f in data.get("files") or []
    )
    receipt = await services.reporting.submit(
        ReportInput(
            task_id=task_id,
            unit_id=unit_id,
            reporter_user_id=person.user_id,
            status=data["status"],
            percent=int(data.get("percent") or 0),
            results=data.get("results") or "",
            difficulties=data.get("difficulties") or "",
            proposals=data.get("proposals") or "",
            indicator_value=data.get("target"),
            evidence_ref=", ".join(f.file_name for f in files),
            files=files,
        ),
        actor_telegram_id=person.telegram_id,
    )
    # The draft goes and the leaders' notices are queued (both durable) before the receipt.
    await services.drafts.close(person.telegram_id, FLOW, _chat_id(update))
    noticed = await services.notices.report_submitted(person, unit_id, receipt, data)
    local = receipt.submitted_at.astimezone(services.config.tz)
    key = "report.receipt_correction" if receipt.is_correction else "report.receipt"
    await send_html(
        update,
        _t(
            context,
            lang,
            key,
            id=receipt.report_id,
            revision=receipt.revision,
            code=escape(data["task_code"]),
            period=receipt.period,
            time=services.i18n.datetime(lang, local),
        ),
    )
    if noticed:
        from bot.app import kick_dispatcher  # bot.app imports this module

        kick_dispatcher(context.application)
    return ConversationHandler.END


async def _cancel(update: Update, context: Context, lang: str | None) -> int:
    await context.services.drafts.close(_user_id(update), FLOW, _chat_id(update))
    await send_html(update, _t(context, lang, "report.cancelled"))
    return ConversationHandler.END


async def cancel(update: Update, context: Context) -> int:
    """/cancel: drop the draft and end the report."""
    draft = await context.services.drafts.load(_user_id(update), FLOW)
    lang = draft.data.get("lang") if draft else (await caller(update, context))[1]
    return await _cancel(update, context, lang)


def _buttons(kind: str) -> CallbackQueryHandler[Context, Any]:
    return CallbackQueryHandler(globals()[_BUTTONS[kind]], pattern=f"^rp:{kind}:")


_BUTTONS = {
    "pg": "on_page",
    "t": "on_task",
    "s": "on_status",
    "p": "on_percent_button",
    "ev": "on_evidence_done",
    "c": "on_confirm",
    "e": "on_edit",
}


def conversation() -> ConversationHandler[Context]:
    text = filters.TEXT & ~filters.COMMAND
    files = filters.Document.ALL | filters.PHOTO
    skip = CommandHandler("skip", on_skip)
    # PTB warns that with per_message=False buttons are tracked per chat, not per message:
    # intended here (old buttons are caught by the draft's version instead).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBUserWarning)
        return _conversation(text, files, skip)


def _conversation(
    text: filters.BaseFilter, files: filters.BaseFilter, skip: CommandHandler[Context, Any]
) -> ConversationHandler[Context]:
    return ConversationHandler(
        entry_points=[
            CommandHandler("report", report, filters=filters.ChatType.PRIVATE),
            CallbackQueryHandler(start_from_button, pattern=r"^rp:start:"),
        ],
        states={
            "task": [_buttons("pg"), _buttons("t")],
            "status": [_buttons("s")],
            "percent": [_buttons("p"), MessageHandler(text, on_percent_text)],
            "results": [MessageHandler(text, on_text)],
            "difficulties": [MessageHandler(text, on_text), skip],
            "proposals": [MessageHandler(text, on_text), skip],
            "target": [MessageHandler(text, on_target)],
            "evidence": [MessageHandler(files, on_file), _buttons("ev"), skip],
            "confirm": [_buttons("c")],
            "edit": [_buttons("e")],
        },
        fallbacks=[
            CommandHandler("cancel", cancel),
            CommandHandler("skip", on_skip),
            CallbackQueryHandler(on_stale, pattern=r"^rp:"),
            MessageHandler((text | files) & filters.ChatType.PRIVATE, reask),
        ],
        name=FLOW,
        persistent=True,
        allow_reentry=True,
    )


async def outside(update: Update, context: Context) -> None:
    """A report button or /cancel when no report is open."""
    query = update.callback_query
    if query is None:
        _, lang = await caller(update, context)
        await send_html(update, _t(context, lang, "report.nothing_to_cancel"))
        return
    await on_stale(update, context)


def handlers() -> list[BaseHandler[Update, Context, Any]]:
    return [
        conversation(),
        CallbackQueryHandler(outside, pattern=r"^rp:"),
    ]


def fallback_handlers() -> list[BaseHandler[Update, Context, Any]]:
    """Registered after every flow: /cancel or /skip when no guided flow is waiting for an answer."""
    return [CommandHandler(("cancel", "skip"), outside, filters=filters.ChatType.PRIVATE)]
