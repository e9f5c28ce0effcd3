"""/report: the guided progress report, on the state machine of bot.services.report_flow.

This module only parses updates and renders: which question follows which, what may be
skipped and what is valid is ReportFlow.apply's. The step lives in one place, the draft's row
(ReportDraft.step); PTB's ConversationHandler only knows that a report is open (state OPEN).

Every answer and the step reached are written to the database (DraftService.save) before the
next question is shown, so a restart (even kill -9) resumes at the same step. Buttons carry the
draft's version: a button on an older message is answered "out of date" and changes nothing.
Callback data: rp:start:<task_id> (any message may open the report on a task; no version),
rp:same:<task_id> (file this period's report as unchanged since the last one),
rp:<kind>:<version>:<value> for everything inside the flow.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from html import escape
from typing import Any

from telegram import Document, PhotoSize, Update
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    filters,
)
from telegram.warnings import PTBUserWarning

from bot.context import Context
from bot.services.drafts import DraftView, OutOfScope
from bot.services.outbox import RECEIPT, Button, OutgoingMessage
from bot.services.people import Person
from bot.services.report_flow import (
    PERCENTS,
    STATUSES,
    Answer,
    EvidenceDraft,
    File,
    Invalid,
    Limits,
    Press,
    ReportDraft,
    ReportFlow,
    Skip,
    Step,
    TaskChoice,
    Text,
    clean,
)
from bot.services.reporting import Receipt
from bot.services.tasks import ReportableTask, TaskView
from handlers import callbacks
from handlers.common import (
    acknowledge,
    caller,
    clip,
    download,
    keyboard,
    page_row,
    refuse_callback,
    send_html,
    stale_callback,
)

log = logging.getLogger(__name__)

FLOW = "report"
OPEN = "report"  # the conversation's one state: a report is open (the step is the draft's)
PAGE_SIZE = 8

COMMANDS = [("report", "focal"), ("cancel", "focal")]

_FLOWS: dict[int, ReportFlow] = {}


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


def _today(context: Context) -> date:
    return context.services.clock.now().astimezone(context.services.config.tz).date()


def flow_of(context: Context) -> ReportFlow:
    """The report flow with the configured limits (one per configuration)."""
    config = context.services.config
    flow = _FLOWS.get(id(config))
    if flow is None:
        reporting = config.reporting
        flow = ReportFlow(
            Limits(
                reporting.max_text_length,
                reporting.evidence_max_mb,
                tuple(reporting.evidence_extensions),
            )
        )
        _FLOWS[id(config)] = flow
    return flow


# --------------------------------------------------------------------------- rendering


def _status_label(context: Context, lang: str | None, status: str | None) -> str:
    return _t(context, lang, f"report.status.{status}") if status else "—"


def summary(context: Context, draft: ReportDraft) -> str:
    lang = draft.lang
    empty = _t(context, lang, "report.summary.empty")
    lines = [
        _t(
            context,
            lang,
            "report.summary.title",
            code=escape(draft.task_code),
            title=escape(draft.task_title),
        ),
        _t(context, lang, "report.summary.status", value=_status_label(context, lang, draft.status)),
        _t(context, lang, "report.summary.percent", value=draft.percent),
        _t(context, lang, "report.summary.results", value=escape(draft.results or empty)),
        _t(context, lang, "report.summary.difficulties", value=escape(draft.difficulties or empty)),
        _t(context, lang, "report.summary.proposals", value=escape(draft.proposals or empty)),
    ]
    if draft.has_target:
        lines.append(
            _t(
                context,
                lang,
                "report.summary.target",
                label=escape(draft.target_label or ""),
                value=empty if draft.target is None else _number(draft.target),
                unit=escape(draft.target_unit or ""),
            )
        )
    names = ", ".join(escape(f.file_name) for f in draft.files) or empty
    lines.append(_t(context, lang, "report.summary.evidence", value=names))
    text = "\n".join(lines)
    # Telegram's limit is 4096; answers are capped by max_text_length, so this is a backstop.
    return text[:4000]


def _number(value: float) -> str:
    return f"{value:g}"


Rows = list[list[tuple[str, str]]]


def question(context: Context, draft: ReportDraft, version: int) -> tuple[str, Rows]:
    """The text and buttons that ask the draft's current step."""
    step, lang, v = Step(draft.step), draft.lang, version
    if step == Step.STATUS:
        text = _t(
            context, lang, "report.ask.status", code=escape(draft.task_code), title=escape(draft.task_title)
        )
        return text, [[(_status_label(context, lang, s), callbacks.report_step("s", v, s))] for s in STATUSES]
    if step == Step.PERCENT:
        return _t(context, lang, "report.ask.percent"), [
            [(f"{p}%", callbacks.report_step("p", v, p)) for p in PERCENTS]
        ]
    if step == Step.RESULTS:
        limit = context.services.config.reporting.max_text_length
        return _t(context, lang, "report.ask.results", limit=limit), []
    if step == Step.DIFFICULTIES:
        key = "report.ask.difficulties_required" if draft.status == "stuck" else "report.ask.difficulties"
        return _t(context, lang, key), []
    if step == Step.PROPOSALS:
        return _t(context, lang, "report.ask.proposals"), []
    if step == Step.TARGET:
        text = _t(
            context,
            lang,
            "report.ask.target",
            label=escape(draft.target_label or ""),
            value=_number(draft.target_value or 0),
            unit=escape(draft.target_unit or ""),
        )
        return text, []
    if step == Step.EVIDENCE:
        return _evidence_question(context, draft, v)
    if step == Step.CONFIRM:
        return _confirm_question(context, draft, v)
    if step == Step.EDIT:
        rows = [
            [(_t(context, lang, f"report.field.{f.value}"), callbacks.report_step("e", v, f.value))]
            for f in flow_of(context).editable(draft)
        ]
        rows.append([(_t(context, lang, "report.button.back"), callbacks.report_step("e", v, "back"))])
        return _t(context, lang, "report.ask.edit"), rows
    raise ValueError(step)


def _evidence_question(context: Context, draft: ReportDraft, v: int) -> tuple[str, Rows]:
    reporting = context.services.config.reporting
    key = "report.ask.evidence_more" if draft.files else "report.ask.evidence"
    text = _t(
        context,
        draft.lang,
        key,
        mb=reporting.evidence_max_mb,
        types=", ".join(reporting.evidence_extensions),
        count=len(draft.files),
    )
    return text, [
        [(_t(context, draft.lang, "report.button.evidence_done"), callbacks.report_step("ev", v, "done"))]
    ]


def _confirm_question(context: Context, draft: ReportDraft, v: int) -> tuple[str, Rows]:
    """The summary with Gửi first, each optional answer not given yet one tap away, then
    Sửa and Hủy."""
    lang = draft.lang
    rows: Rows = [[(_t(context, lang, "report.button.send"), callbacks.report_step("c", v, "send"))]]
    adds = [
        (_t(context, lang, f"report.button.add_{s.value}"), callbacks.report_step("c", v, f"add_{s.value}"))
        for s in flow_of(context).additions(draft)
    ]
    if adds:
        rows.append(adds)
    rows.append(
        [
            (_t(context, lang, "report.button.edit"), callbacks.report_step("c", v, "edit")),
            (_t(context, lang, "report.button.cancel"), callbacks.report_step("c", v, "cancel")),
        ]
    )
    return summary(context, draft) + "\n\n" + _t(context, lang, "report.ask.confirm"), rows


async def advance(update: Update, context: Context, draft: ReportDraft, step: Step) -> str | int:
    """Store the answers and the step, then ask the step's question. The scope is checked in
    the same transaction: someone no longer a focal point of the task's unit is refused and
    the report ends, with nothing stored."""
    draft.step = step.value
    draft.update_id = update.update_id  # see _drop_if_handled
    try:
        saved = await context.services.drafts.save(
            _user_id(update), FLOW, draft.to_data(), OPEN, _chat_id(update), scope=draft.scope
        )
    except OutOfScope:
        return await _out_of_scope(update, context, draft.lang)
    text, rows = question(context, draft, saved.version)
    await send_html(update, text, rows)
    return OPEN


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
    rows = [
        [(f"{t.code} · {clip(t.title, 40)}", callbacks.report_step("t", version, t.task_id))] for t in shown
    ]
    nav = page_row(page, pages, callbacks.report_page_prefix(version))
    if nav:
        rows.append(nav)
    text = _t(context, lang, "report.ask.task", page=page + 1, pages=pages)
    query = update.callback_query
    if edit and query is not None:
        await acknowledge(update)
        await query.edit_message_text(text, reply_markup=keyboard(rows))
    else:
        await send_html(update, text, rows)


def _choice(task: ReportableTask) -> TaskChoice:
    return TaskChoice(
        task.task_id,
        task.code,
        task.title,
        task.unit_id,
        task.target_value,
        task.target_unit,
        task.target_label,
    )


async def _begin(update: Update, context: Context, lang: str, task: ReportableTask) -> str | int:
    draft = flow_of(context).begin(_choice(task), lang)
    return await advance(update, context, draft, Step.STATUS)


async def report(update: Update, context: Context) -> str | int | None:
    """Start a report: pick a task (or jump to the one named: /report 3.2).

    A refusal returns None, which leaves a report already under way where it was."""
    services = context.services
    _drop_if_handled(update, await services.drafts.load(_user_id(update), FLOW))
    code = context.args[0][:32] if context.args else None
    # Who is asking and which task, one after the other: each is a read in place on SQLite,
    # where running them as two tasks cost more trips through the busy event loop than it saved.
    person, lang = await caller(update, context)
    found = await services.tasks.matching(code=code) if code else []
    if not person.unit_ids("focal"):
        key = "report.not_focal" if person.known else "report.unknown_user"
        await send_html(update, _t(context, lang, key))
        return None
    if code is not None:
        # A bare code several active programmes use: the person's own task if only one is.
        mine = [(task, services.tasks.reportable_for(person, task)) for task in found]
        mine = [(task, match) for task, match in mine if match is not None]
        if len(mine) > 1:
            typed = [escape(f"{task.short_code}:{task.code}") for task, _ in mine]
            codes = ", ".join(f"<b>{c}</b>" for c in typed)
            text = _t(
                context, lang, "report.ambiguous_task", code=escape(code), codes=codes, example=typed[-1]
            )
            await send_html(update, text)
            return None
        match = mine[0][1] if mine else None
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
    draft = ReportDraft(lang=lang, step=Step.TASK.value, update_id=update.update_id)
    saved = await services.drafts.save(person.telegram_id, FLOW, draft.to_data(), OPEN, _chat_id(update))
    await _task_page(update, context, lang, tasks, 0, saved.version)
    return OPEN


async def start_from_button(update: Update, context: Context) -> str | int | None:
    """Open the report on the task of a "Báo cáo" button (rp:start:<task_id>)."""
    query = update.callback_query
    assert query is not None and isinstance(query.data, str)
    person, lang = await caller(update, context)
    task_id = callbacks.parse_report_start(query.data)
    task = None
    if task_id is not None:
        task = await context.services.tasks.for_report(person, task_id)
    if task is None:
        await refuse_callback(update, context, "report button for a task outside the caller's units", lang)
        return None
    await acknowledge(update)
    return await _begin(update, context, lang, task)


# --------------------------------------------------------------------------- buttons


async def _pressed(update: Update, context: Context, *kinds: str) -> tuple[DraftView, str, str] | None:
    """The draft, the button's kind and value, or None when the press was answered already
    (stale, malformed or the draft expired)."""
    query = update.callback_query
    assert query is not None
    pressed = callbacks.parse_report_step(query.data)
    draft = await context.services.drafts.load(_user_id(update), FLOW)
    lang = draft.data.get("lang") if draft else None
    if pressed is None or pressed[0] not in kinds:
        await refuse_callback(update, context, "malformed report button", lang)
        return None
    kind, version, value = pressed
    if draft is None or version != draft.version:
        await stale_callback(update, context, lang)
        return None
    return draft, kind, value


async def _expired(update: Update, context: Context) -> int:
    await send_html(update, _t(context, None, "report.expired"))
    return ConversationHandler.END


async def _task_step(update: Update, context: Context, kind: str) -> tuple[DraftView, str] | None:
    """A press on the task list: the draft and the value, or None (answered already)."""
    pressed = await _pressed(update, context, kind)
    if pressed is None:
        return None
    draft, _, value = pressed
    if draft.data.get("step") != Step.TASK:
        await stale_callback(update, context, draft.data.get("lang"))
        return None
    return draft, value


async def on_page(update: Update, context: Context) -> str | None:
    """Show another page of the task list."""
    pressed = await _task_step(update, context, "pg")
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
    pressed = await _task_step(update, context, "t")
    if pressed is None:
        return None
    _, value = pressed
    person, lang = await caller(update, context)
    task = await context.services.tasks.for_report(person, int(value)) if value.isdigit() else None
    if task is None:
        await refuse_callback(update, context, "report on a task outside the caller's units", lang)
        return None
    await acknowledge(update)
    return await _begin(update, context, lang, task)


async def on_press(update: Update, context: Context) -> str | int | None:
    """A button inside the flow (status, percent, evidence done, summary, edit)."""
    pressed = await _pressed(update, context, "s", "p", "ev", "c", "e")
    if pressed is None:
        return None
    draft, kind, value = pressed
    return await _take(update, context, draft, Press(kind, value))


async def _take(update: Update, context: Context, view: DraftView, answer: Answer) -> str | int | None:
    """Apply the answer to the draft's step; store and ask the next question, or say what
    was wrong and ask again (nothing stored)."""
    draft = ReportDraft.from_data(view.data)
    if draft.step == Step.TASK:  # the task list (its buttons are on_page's and on_task's)
        if isinstance(answer, Press):
            await stale_callback(update, context, draft.lang)
        else:
            await send_html(update, _t(context, draft.lang, "report.error.use_buttons"))
        return None
    outcome = flow_of(context).apply(draft, Step(draft.step), answer)
    if isinstance(outcome, Invalid):
        await _refused(update, context, view, outcome)
        return None
    await acknowledge(update)
    if outcome.step == Step.SEND:
        return await submit(update, context, draft)
    if outcome.step == Step.CANCEL:
        return await _cancel(update, context, draft.lang)
    return await advance(update, context, draft, outcome.step)


async def _refused(update: Update, context: Context, view: DraftView, outcome: Invalid) -> None:
    lang = view.data.get("lang")
    if outcome.how == "refuse":
        await refuse_callback(update, context, f"report button not valid here ({outcome.key})", lang)
    elif outcome.how == "stale":
        await stale_callback(update, context, lang)
    else:
        await _again(update, context, view, outcome.key, **outcome.params)


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


async def _again(update: Update, context: Context, view: DraftView, error_key: str, **params: Any) -> None:
    """Say what was wrong and ask the same question again (nothing is stored)."""
    draft = ReportDraft.from_data(view.data)
    text, rows = question(context, draft, view.version)
    await send_html(update, _t(context, draft.lang, error_key, **params) + "\n\n" + text, rows)


async def on_text(update: Update, context: Context) -> str | int | None:
    """A typed answer (percent, results, difficulties, proposals, target value)."""
    draft = await _typed_draft(update, context)
    if draft is None:
        return await _expired(update, context)
    return await _take(update, context, draft, Text(update.effective_message.text or ""))  # type: ignore[union-attr]


async def on_skip(update: Update, context: Context) -> str | int | None:
    """/skip an optional answer (difficulties unless stuck, proposals, evidence)."""
    draft = await _typed_draft(update, context)
    if draft is None:
        return await _expired(update, context)
    return await _take(update, context, draft, Skip())


async def on_file(update: Update, context: Context) -> str | int | None:
    """Take an evidence file: check it, keep its Telegram id, download a copy with its sha256."""
    draft = await _typed_draft(update, context)
    if draft is None:
        return await _expired(update, context)
    if draft.data.get("step") != Step.EVIDENCE:
        await _use_buttons(update, context, draft)
        return None
    message = update.effective_message
    assert message is not None
    tg_file: Document | PhotoSize
    if message.document is not None:
        tg_file = message.document
        name = message.document.file_name or "document"
        mime = message.document.mime_type or ""
    else:
        tg_file = message.photo[-1]
        name = f"photo-{tg_file.file_unique_id}.jpg"
        mime = "image/jpeg"
    refusal = flow_of(context).file_refusal(name, tg_file.file_size or 0)
    if refusal is not None:
        await _again(update, context, draft, refusal.key, **refusal.params)
        return None
    content = await download(tg_file)
    if content is None:
        await _again(update, context, draft, "report.error.file_download")
        return None
    copy = context.services.evidence.keep(content, name)
    evidence = EvidenceDraft(
        tg_file.file_id,
        tg_file.file_unique_id,
        clean(name)[:255],
        mime[:127],
        len(content),
        copy.sha256,
        copy.local_path,
    )
    return await _take(update, context, draft, File(evidence))


async def reask(update: Update, context: Context) -> str | int | None:
    """Anything unexpected: say how to answer and ask the same question again."""
    draft = await _typed_draft(update, context)
    if draft is None:
        return await _expired(update, context)
    await _use_buttons(update, context, draft)
    return None


async def _use_buttons(update: Update, context: Context, draft: DraftView) -> None:
    if draft.data.get("step") == Step.TASK:
        await send_html(update, _t(context, draft.data.get("lang"), "report.error.use_buttons"))
    else:
        await _again(update, context, draft, "report.error.use_buttons")


async def on_stale(update: Update, context: Context) -> None:
    """A report button that fits no step now: out of date, or not ours at all."""
    query = update.callback_query
    assert query is not None
    data = query.data if isinstance(query.data, str) else ""
    draft = await context.services.drafts.load(_user_id(update), FLOW)
    lang = draft.data.get("lang") if draft else None
    if callbacks.parse_report_step(data) is None:
        await refuse_callback(update, context, "malformed report button", lang)
        return
    await stale_callback(update, context, lang)


# --------------------------------------------------------------------------- end


async def submit(update: Update, context: Context, draft: ReportDraft) -> str | int | None:
    """Store the report, answer with the receipt and tell the unit's leaders."""
    services = context.services
    lang = draft.lang
    # Membership may have changed since the task was picked: check the scope again (the
    # person and the scope in one read).
    task_id, unit_id = int(draft.task_id or 0), int(draft.unit_id or 0)
    user = update.effective_user
    assert user is not None
    person, allowed = await services.people.reporter(user.id, task_id, unit_id, user.first_name)
    if not allowed:
        await refuse_callback(update, context, "report on a task no longer the caller's", lang)
        await services.drafts.close(person.telegram_id, FLOW, _chat_id(update))
        return ConversationHandler.END
    report = flow_of(context).to_input(draft, person.user_id)

    def text(receipt: Receipt) -> str:
        key = "report.receipt_correction" if receipt.is_correction else "report.receipt"
        return _t(
            context,
            lang,
            key,
            id=receipt.report_id,
            revision=receipt.revision,
            code=escape(draft.task_code),
            period=receipt.period,
            time=_local_time(context, lang, receipt.submitted_at),
        )

    follow_up = await _FollowUp.make(update, context, person, lang, draft.to_data(), text)
    # The report, the end of its draft, the receipt and the leaders' notices are one
    # transaction: after a crash at any moment, either all of it happened (the summary's Gửi
    # is out of date, and the restart sends the receipt if it had not gone out) or none did.
    receipt = await services.reporting.submit(
        report, actor_telegram_id=person.telegram_id, closing_draft=FLOW, follow_up=follow_up
    )
    # The draft's copy in memory and its conversation step go too.
    await services.drafts.close(person.telegram_id, FLOW, _chat_id(update))
    await follow_up.send(receipt)
    return ConversationHandler.END


def _local_time(context: Context, lang: str | None, moment: datetime) -> str:
    return context.services.i18n.datetime(lang, moment.astimezone(context.services.config.tz))


class _FollowUp:
    """What goes out after a report (ReportingService.submit's follow_up): the person's
    receipt, under it a button for the unit's next task still unreported in the period, and
    the leaders' notices. All are queued in the report's transaction; the receipt is then
    sent at once (`send`), and the dispatcher sends the rest, or the receipt after a crash."""

    def __init__(
        self,
        update: Update,
        context: Context,
        person: Person,
        lang: str | None,
        text: Callable[[Receipt], str],
        notices: Callable[[Receipt], list[OutgoingMessage]],
    ) -> None:
        self.update, self.context, self.person, self.lang = update, context, person, lang
        self.text, self.notices = text, notices
        self.receipt: OutgoingMessage | None = None

    @classmethod
    async def make(
        cls,
        update: Update,
        context: Context,
        person: Person,
        lang: str | None,
        task: dict[str, Any],
        text: Callable[[Receipt], str],
    ) -> _FollowUp:
        """`task` holds the task_id, task_code and task_title the leaders' notices name."""
        notices = await context.services.notices.report_submitted(person, int(task["unit_id"]), task)
        return cls(update, context, person, lang, text, notices)

    def __call__(self, receipt: Receipt) -> list[OutgoingMessage]:
        buttons: list[list[Button]] = []
        if receipt.next_task is not None:
            next_id, next_code = receipt.next_task
            label = _t(self.context, self.lang, "report.button.next_task", code=next_code)  # plain text
            buttons.append([Button(label, "report", next_id)])
        self.receipt = OutgoingMessage(
            key=f"receipt:{receipt.report_id}:{receipt.revision}",
            kind=RECEIPT,
            chat_id=_chat_id(self.update),
            text=self.text(receipt),
            buttons=buttons,
            user_id=self.person.user_id,
            sent_by_caller=True,
        )
        return [self.receipt, *self.notices(receipt)]

    async def send(self, receipt: Receipt) -> None:
        """Send the receipt now and mark it sent; if Telegram cannot take it now, the
        dispatcher sends it later. Wake the dispatcher for the leaders' notices."""
        outbox = self.context.services.outbox
        message = self.receipt
        if message is not None and receipt.outbox_id is not None:
            rows = [
                [(b.label, callbacks.for_action(b.action, b.arg)) for b in row] for row in message.buttons
            ]
            try:
                sent = await send_html(self.update, message.text, rows)
            except TelegramError as exc:
                log.warning("receipt in chat %s not sent now, queued: %s", _chat_id(self.update), exc)
                await outbox.mark_retry(receipt.outbox_id, timedelta(0), str(exc))
                self.context.kick_dispatcher()
                return
            await outbox.mark_sent(receipt.outbox_id, sent)
        if receipt.queued:
            self.context.kick_dispatcher()


async def unchanged(update: Update, context: Context) -> None:
    """ "Không thay đổi" (rp:same:<task_id>): file this period's report as a copy of the unit's
    last one, with a receipt; the same scope check as a "Báo cáo" button. A report under way
    is left where it was."""
    query = update.callback_query
    assert query is not None and isinstance(query.data, str)
    services = context.services
    person, lang = await caller(update, context)
    task_id = callbacks.parse_report_unchanged(query.data)
    task = await services.tasks.for_report(person, task_id) if task_id is not None else None
    if task is None:
        await refuse_callback(update, context, "unchanged button for a task outside the caller's units", lang)
        return
    await acknowledge(update)
    code = escape(task.code)

    def text(receipt: Receipt) -> str:
        return _t(
            context,
            lang,
            "report.unchanged_receipt",
            id=receipt.report_id,
            code=code,
            period=receipt.period,
            time=_local_time(context, lang, receipt.submitted_at),
            status=_status_label(context, lang, receipt.status),
            percent=receipt.percent,
        )

    names = {
        "task_id": task.task_id,
        "unit_id": task.unit_id,
        "task_code": task.code,
        "task_title": task.title,
    }
    follow_up = await _FollowUp.make(update, context, person, lang, names, text)
    result = await services.reporting.submit_unchanged(
        task.task_id, task.unit_id, person.user_id, actor_telegram_id=person.telegram_id, follow_up=follow_up
    )
    if result.receipt is None:
        await send_html(
            update, _t(context, lang, f"report.unchanged_{result.refused}", code=code, period=result.period)
        )
        return
    await follow_up.send(result.receipt)


async def _cancel(update: Update, context: Context, lang: str | None) -> int:
    await context.services.drafts.close(_user_id(update), FLOW, _chat_id(update))
    await send_html(update, _t(context, lang, "report.cancelled"))
    return ConversationHandler.END


async def cancel(update: Update, context: Context) -> int:
    """/cancel: drop the draft and end the report."""
    draft = await context.services.drafts.load(_user_id(update), FLOW)
    lang = draft.data.get("lang") if draft else (await caller(update, context))[1]
    return await _cancel(update, context, lang)


def conversation() -> ConversationHandler[Context]:
    # PTB warns that with per_message=False buttons are tracked per chat, not per message:
    # intended here (old buttons are caught by the draft's version instead).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBUserWarning)
        return _conversation()


def _conversation() -> ConversationHandler[Context]:
    text = filters.TEXT & ~filters.COMMAND
    files = filters.Document.ALL | filters.PHOTO
    routes: list[BaseHandler[Update, Context, Any]] = [
        CallbackQueryHandler(on_page, pattern=callbacks.report_step_prefix("pg")),
        CallbackQueryHandler(on_task, pattern=callbacks.report_step_prefix("t")),
        CallbackQueryHandler(on_press, pattern=callbacks.report_step_prefix("s", "p", "ev", "c", "e")),
        MessageHandler(text, on_text),
        MessageHandler(files, on_file),
        CommandHandler("skip", on_skip),
    ]
    # A report opened by an older version is in a state named after its step: the same routes
    # (the step is read from the draft).
    states = {name: routes for name in (OPEN, *(s.value for s in Step))}
    return ConversationHandler(
        entry_points=[
            CommandHandler("report", report, filters=filters.ChatType.PRIVATE),
            CallbackQueryHandler(start_from_button, pattern=callbacks.REPORT_START),
            CallbackQueryHandler(unchanged, pattern=callbacks.REPORT_UNCHANGED),
        ],
        states=states,  # type: ignore[arg-type]
        fallbacks=[
            CommandHandler("cancel", cancel),
            CallbackQueryHandler(on_stale, pattern=callbacks.REPORT_ANY),
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


async def reask_after_restart(application: Application) -> int:  # type: ignore[type-arg]
    """At start-up: ask each person with a report under way their current question again,
    once per step (issue 13: a step saved just before a crash may never have been shown, and
    its re-delivered update is dropped as handled). Returns how many were asked."""
    context = Context.from_application(application)
    asked = 0
    for telegram_id, data in await context.services.drafts.under_way(FLOW):
        asked += await _reask(application, context, telegram_id, data)
    if asked:
        log.info("asked %s people with a report under way their question again", asked)
    return asked


async def reask_orphans(
    application: Application,  # type: ignore[type-arg]
    live: set[str],
    take: Callable[[int], Awaitable[bool | None]],
) -> bool:
    """Several processes (bot/cluster.py): as reask_after_restart, for the people whose last
    step was written by a process no longer alive (`live`: those that are), each once their
    chat is taken here (`take(chat)`: True taken, False while another process handles it,
    None when the question needs no asking: their pending updates are being handled). Returns
    False if some could not be taken yet (tried again later)."""
    context = Context.from_application(application)
    asked, left = 0, False
    for telegram_id, data in await context.services.drafts.under_way(FLOW, written_by_none_of=live):
        taken = await take(telegram_id)
        log.debug(
            "report of chat %s at step %s left by a stopped process: taken %s",
            telegram_id,
            data.get("step"),
            taken,
        )
        if taken is False:
            left = True
        elif taken:
            asked += await _reask(application, context, telegram_id, data)
    if asked:
        log.info("asked %s people whose report step a stopped process wrote their question again", asked)
    return not left


async def _reask(
    application: Application,  # type: ignore[type-arg]
    context: Context,
    telegram_id: int,
    data: dict[str, Any],
) -> int:
    """Ask the person their current question again unless asked already at this step. The
    draft is written first (its version goes up, so the buttons of the message before are out
    of date), then the question goes out. 1 if asked."""
    services = context.services
    draft = ReportDraft.from_data(data)
    if draft.step == Step.TASK or draft.reasked == draft.update_id:
        return 0
    draft.reasked = draft.update_id
    try:
        saved = await services.drafts.save(
            telegram_id, FLOW, draft.to_data(), OPEN, telegram_id, scope=draft.scope
        )
    except OutOfScope:
        return 0  # refused at the person's next answer, with the reason
    text, rows = question(context, draft, saved.version)
    note = _t(context, draft.lang, "report.reasked")
    try:
        await application.bot.send_message(
            telegram_id, note + "\n\n" + text, reply_markup=keyboard(rows) if rows else None
        )
    except TelegramError as exc:
        log.warning("report question not asked again in chat %s: %s", telegram_id, exc)
        return 0
    return 1


def handlers() -> list[BaseHandler[Update, Context, Any]]:
    return [
        conversation(),
        CallbackQueryHandler(outside, pattern=callbacks.REPORT_ANY),
    ]


def fallback_handlers() -> list[BaseHandler[Update, Context, Any]]:
    """Registered after every flow: /cancel or /skip when no guided flow is waiting for an answer."""
    return [CommandHandler(("cancel", "skip"), outside, filters=filters.ChatType.PRIVATE)]
