"""The /report flow as a state machine, without Telegram.

A report under way is a `ReportDraft` (kept as JSON in the draft's row, the step with it:
the one place where the step lives). `ReportFlow.apply(draft, step, answer)` holds every rule
of the flow: which question follows which, what may be skipped, difficulties required for
"Gặp vướng mắc", done ⇒ 100 %, the numeric target, the evidence limits, the summary's
buttons. It returns the next step (having changed the draft) or a validation error key (having
changed nothing). `to_input` turns a finished draft into the report that is submitted.

The common path (issue 16): status → percent (not for "done") → results → summary. What is
required is asked before the summary (difficulties when stuck; the value of a task's numeric
target); what is optional (difficulties, proposals, evidence) is one button away on the
summary, and `/skip` still answers any optional question.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field, fields
from enum import StrEnum
from pathlib import PurePath
from typing import Any

from bot.services.drafts import DraftService
from bot.services.reporting import EvidenceFile, ReportInput, complete_percent

FLOW = "report"  # the drafts' flow name
STATUSES = ("not_started", "in_progress", "done", "stuck")
PERCENTS = (0, 25, 50, 75, 100)


class Step(StrEnum):
    TASK = "task"
    STATUS = "status"
    PERCENT = "percent"
    RESULTS = "results"
    DIFFICULTIES = "difficulties"
    PROPOSALS = "proposals"
    TARGET = "target"
    EVIDENCE = "evidence"
    CONFIRM = "confirm"  # the summary: send, add an optional answer, edit or cancel
    EDIT = "edit"  # which answer to change
    # Where the flow ends (not stored as a step).
    SEND = "send"
    CANCEL = "cancel"


# The questions in order (the summary comes after them).
QUESTIONS = (
    Step.STATUS,
    Step.PERCENT,
    Step.RESULTS,
    Step.DIFFICULTIES,
    Step.PROPOSALS,
    Step.TARGET,
    Step.EVIDENCE,
)
EDITABLE = QUESTIONS
TEXT_FIELDS = (Step.RESULTS, Step.DIFFICULTIES, Step.PROPOSALS)
# One tap away on the summary (issue 16); the value of a target is asked (required).
OPTIONAL = (Step.DIFFICULTIES, Step.PROPOSALS, Step.EVIDENCE)
SKIPPABLE = OPTIONAL
# The kind of button each step takes (callback data rp:<kind>:<version>:<value>).
BUTTON_KINDS = {
    Step.STATUS: "s",
    Step.PERCENT: "p",
    Step.EVIDENCE: "ev",
    Step.CONFIRM: "c",
    Step.EDIT: "e",
}


# --------------------------------------------------------------------------- the draft


@dataclass
class EvidenceDraft:
    """An evidence file taken in the flow: its Telegram ids and the local copy."""

    file_id: str
    unique_id: str = ""
    file_name: str = ""
    mime_type: str = ""
    size: int = 0
    sha256: str | None = None
    local_path: str | None = None

    def to_file(self) -> EvidenceFile:
        return EvidenceFile(
            self.file_id,
            self.unique_id,
            self.file_name,
            self.mime_type,
            self.size,
            self.sha256,
            self.local_path,
        )


@dataclass
class ReportDraft:
    """A report under way: the task, the answers so far and the step reached."""

    lang: str | None = None
    step: str = Step.TASK.value
    page: int = 0
    task_id: int | None = None
    task_code: str = ""
    task_title: str = ""
    unit_id: int | None = None
    target_value: float | None = None
    target_unit: str | None = None
    target_label: str | None = None
    status: str | None = None
    percent: int | None = None
    results: str = ""
    difficulties: str = ""
    proposals: str = ""
    target: float | None = None
    files: list[EvidenceDraft] = field(default_factory=list)
    # Changing one answer from the summary: back to the summary after it.
    editing: bool = False
    # The update the last step came from (a re-delivered older one is dropped).
    update_id: int = -1
    # The last typed answer and the step it answered: the same text sent again right after
    # (a person re-sending after a restart) is recognised, not stored into the next field.
    last_answer: str | None = None
    last_answer_step: str | None = None
    # The update id of the step whose question was asked again at start-up (once per step).
    reasked: int | None = None

    @property
    def has_target(self) -> bool:
        return self.target_value is not None

    @property
    def scope(self) -> tuple[int, int] | None:
        """(task id, unit id) the person must still report on, once a task is chosen."""
        if self.task_id and self.unit_id:
            return int(self.task_id), int(self.unit_id)
        return None

    def to_data(self) -> dict[str, Any]:
        """The JSON kept in the draft's row (has_target kept for older readers)."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "files"}
        data["files"] = [vars(f).copy() for f in self.files]
        data["has_target"] = self.has_target
        return data

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> ReportDraft:
        """A stored draft (unknown keys ignored, missing ones defaulted)."""
        known = {f.name for f in fields(cls)} - {"files"}
        draft = cls(**{k: v for k, v in data.items() if k in known})
        draft.files = [EvidenceDraft(**f) for f in data.get("files") or []]
        return draft


@dataclass(frozen=True)
class TaskChoice:
    """The task a report is opened on, and the unit the person reports for."""

    task_id: int
    code: str
    title: str
    unit_id: int
    target_value: float | None = None
    target_unit: str | None = None
    target_label: str | None = None


# --------------------------------------------------------------------------- answers


@dataclass(frozen=True)
class Text:
    """A typed answer."""

    text: str


@dataclass(frozen=True)
class Press:
    """A button of the flow: rp:<kind>:<version>:<value> (the version checked before)."""

    kind: str
    value: str


@dataclass(frozen=True)
class Skip:
    """/skip."""


@dataclass(frozen=True)
class File:
    """An evidence file (checked with `file_refusal` before it is downloaded)."""

    evidence: EvidenceDraft


Answer = Text | Press | Skip | File


# --------------------------------------------------------------------------- outcomes


@dataclass(frozen=True)
class Next:
    """The answer is taken: ask `step` next (SEND: submit; CANCEL: drop the draft)."""

    step: Step


@dataclass(frozen=True)
class Invalid:
    """The answer is refused and nothing changed. `how`: "again" (say `key` and ask the same
    question again), "refuse" (a button that is not valid: the refusal alert), "stale" (a
    button of another step: out of date), "repeated" (the answer just saved, sent again)."""

    key: str
    params: dict[str, Any] = field(default_factory=dict)
    how: str = "again"


Outcome = Next | Invalid


@dataclass(frozen=True)
class Limits:
    max_text_length: int = 2000
    evidence_max_mb: int = 20
    evidence_extensions: tuple[str, ...] = ("pdf",)

    @property
    def evidence_max_bytes(self) -> int:
        return self.evidence_max_mb * 1024 * 1024


def clean(text: str) -> str:
    return unicodedata.normalize("NFC", text).strip()


# --------------------------------------------------------------------------- the machine


class ReportFlow:
    """The rules of /report (see the module's text)."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._extensions = {e.lower().lstrip(".") for e in limits.evidence_extensions}

    # ----------------------------------------------------------------- steps

    def begin(self, task: TaskChoice, lang: str | None) -> ReportDraft:
        """A draft on a chosen task, at its first question."""
        return ReportDraft(
            lang=lang,
            step=Step.STATUS.value,
            task_id=task.task_id,
            task_code=task.code,
            task_title=task.title,
            unit_id=task.unit_id,
            target_value=task.target_value,
            target_unit=task.target_unit,
            target_label=task.target_label,
        )

    @staticmethod
    def asked(draft: ReportDraft, step: Step) -> bool:
        """Whether `step` is a question for this draft at all."""
        if step == Step.PERCENT:
            return draft.status != "done"
        if step == Step.TARGET:
            return draft.has_target
        return True

    def next_step(self, draft: ReportDraft, after: Step) -> Step:
        """The question after `after`: the next one still required, else the summary. While
        one answer is being changed, back to the summary unless the change makes another
        answer necessary."""
        if draft.editing:
            return self._missing(draft) or Step.CONFIRM
        for step in QUESTIONS[QUESTIONS.index(after) + 1 :]:
            if self.required(draft, step) and self.asked(draft, step):
                return step
        return Step.CONFIRM

    @staticmethod
    def required(draft: ReportDraft, step: Step) -> bool:
        """A question that must be answered: difficulties for "Gặp vướng mắc", the rest of
        the required ones always (status, percent, results, target)."""
        if step == Step.DIFFICULTIES:
            return draft.status == "stuck"
        return step not in OPTIONAL

    def _missing(self, draft: ReportDraft) -> Step | None:
        """A required answer still missing (after a change of status while editing)."""
        if draft.status != "done" and draft.percent is None:
            return Step.PERCENT
        if draft.status == "stuck" and not draft.difficulties:
            return Step.DIFFICULTIES
        return None

    def editable(self, draft: ReportDraft) -> list[Step]:
        """The answers the edit menu offers."""
        return [s for s in EDITABLE if self.asked(draft, s)]

    def additions(self, draft: ReportDraft) -> list[Step]:
        """The optional answers the summary offers one tap away (those not given yet)."""
        given = {Step.DIFFICULTIES: draft.difficulties, Step.PROPOSALS: draft.proposals}
        given[Step.EVIDENCE] = "x" if draft.files else ""
        return [s for s in OPTIONAL if not given[s]]

    # ----------------------------------------------------------------- apply

    def apply(self, draft: ReportDraft, step: Step, answer: Answer) -> Outcome:
        """Take `answer` to the question `step`. On Next the draft holds the answer and the
        step it leads to; on Invalid nothing was changed."""
        if isinstance(answer, Press):
            outcome = self._press(draft, step, answer)
        elif isinstance(answer, Skip):
            outcome = self._skip(draft, step)
        elif isinstance(answer, File):
            outcome = self._file(draft, step, answer.evidence)
        else:
            outcome = self._text(draft, step, answer.text)
        if isinstance(outcome, Next):
            if outcome.step == Step.CONFIRM:
                draft.editing = False
            if outcome.step not in (Step.SEND, Step.CANCEL):
                draft.step = outcome.step.value
            if not isinstance(answer, Text):
                draft.last_answer = draft.last_answer_step = None
        return outcome

    def _press(self, draft: ReportDraft, step: Step, press: Press) -> Outcome:
        if BUTTON_KINDS.get(step) != press.kind:
            return Invalid("callback.out_of_date", how="stale")
        handler = {
            Step.STATUS: self._status,
            Step.PERCENT: self._percent_button,
            Step.EVIDENCE: self._evidence_done,
            Step.CONFIRM: self._confirm,
            Step.EDIT: self._edit,
        }[step]
        return handler(draft, press.value)

    def _status(self, draft: ReportDraft, value: str) -> Outcome:
        if value not in STATUSES:
            return Invalid("callback.refused", how="refuse")
        previous = draft.status
        draft.status = value
        if value == "done":
            draft.percent = complete_percent(value, draft.percent)
        elif previous == "done":
            draft.percent = None
        return Next(self.next_step(draft, Step.STATUS))

    def _percent_button(self, draft: ReportDraft, value: str) -> Outcome:
        if not value.isdigit() or int(value) > 100:
            return Invalid("callback.refused", how="refuse")
        draft.percent = int(value)
        return Next(self.next_step(draft, Step.PERCENT))

    def _evidence_done(self, draft: ReportDraft, value: str) -> Outcome:
        if value != "done":
            return Invalid("callback.refused", how="refuse")
        return Next(Step.CONFIRM)

    def _confirm(self, draft: ReportDraft, value: str) -> Outcome:
        if value == "send":
            return Next(Step.SEND)
        if value == "cancel":
            return Next(Step.CANCEL)
        if value == "edit":
            return Next(Step.EDIT)
        added = {s.value: s for s in self.additions(draft)}
        if value.startswith("add_") and value[4:] in added:
            # One optional answer, then back to the summary.
            draft.editing = True
            return Next(added[value[4:]])
        return Invalid("callback.refused", how="refuse")

    def _edit(self, draft: ReportDraft, value: str) -> Outcome:
        if value == "back":
            return Next(Step.CONFIRM)
        chosen = {s.value: s for s in self.editable(draft)}.get(value)
        if chosen is None:
            return Invalid("callback.refused", how="refuse")
        draft.editing = True
        if chosen == Step.EVIDENCE:
            draft.files = []
        return Next(chosen)

    def _skip(self, draft: ReportDraft, step: Step) -> Outcome:
        if step == Step.DIFFICULTIES and draft.status == "stuck":
            return Invalid("report.error.difficulties_required")
        if step not in SKIPPABLE:
            return Invalid("report.error.no_skip")
        if step == Step.DIFFICULTIES:
            draft.difficulties = ""
        elif step == Step.PROPOSALS:
            draft.proposals = ""
        if step == Step.EVIDENCE:
            return Next(Step.CONFIRM)
        return Next(self.next_step(draft, step))

    def _text(self, draft: ReportDraft, step: Step, raw: str) -> Outcome:
        if step in (Step.PERCENT, Step.TARGET, *TEXT_FIELDS) and self._repeated(draft, step, raw):
            return Invalid("report.error.repeated", how="repeated")
        if step == Step.PERCENT:
            outcome = self._percent_text(draft, raw)
        elif step == Step.TARGET:
            outcome = self._target(draft, raw)
        elif step in TEXT_FIELDS:
            outcome = self._text_field(draft, step, raw)
        else:
            return Invalid("report.error.use_buttons")
        if isinstance(outcome, Next):
            draft.last_answer, draft.last_answer_step = clean(raw), step.value
        return outcome

    @staticmethod
    def _repeated(draft: ReportDraft, step: Step, raw: str) -> bool:
        """The text just stored for the previous question, sent again for this one."""
        return (
            draft.last_answer is not None
            and draft.last_answer_step not in (None, step.value)
            and clean(raw) == draft.last_answer
        )

    def _percent_text(self, draft: ReportDraft, raw: str) -> Outcome:
        text = raw.strip().rstrip("%").strip()
        if not text.isascii() or not text.isdigit() or int(text) > 100:
            return Invalid("report.error.percent")
        draft.percent = int(text)
        return Next(self.next_step(draft, Step.PERCENT))

    def _target(self, draft: ReportDraft, raw: str) -> Outcome:
        value = parse_number(raw)
        if value is None:
            return Invalid("report.error.number")
        draft.target = value
        return Next(self.next_step(draft, Step.TARGET))

    def _text_field(self, draft: ReportDraft, step: Step, raw: str) -> Outcome:
        text = clean(raw)
        limit = self.limits.max_text_length
        if not text:
            return Invalid("report.error.empty")
        if len(text) > limit:
            return Invalid("report.error.too_long", {"limit": limit, "length": len(text)})
        setattr(draft, step.value, text)
        return Next(self.next_step(draft, step))

    def _file(self, draft: ReportDraft, step: Step, evidence: EvidenceDraft) -> Outcome:
        if step != Step.EVIDENCE:
            return Invalid("report.error.use_buttons")
        refusal = self.file_refusal(evidence.file_name, evidence.size)
        if refusal is not None:
            return refusal
        draft.files = [*draft.files, evidence]
        return Next(Step.EVIDENCE)

    def file_refusal(self, name: str, size: int) -> Invalid | None:
        """Why an evidence file is refused (checked before it is downloaded), or None."""
        params = {"mb": self.limits.evidence_max_mb, "types": ", ".join(self.limits.evidence_extensions)}
        if size > self.limits.evidence_max_bytes:
            return Invalid("report.error.file_too_big", params)
        if PurePath(name).suffix.lower().lstrip(".") not in self._extensions:
            return Invalid("report.error.file_bad_type", params)
        return None

    # ----------------------------------------------------------------- the report

    @staticmethod
    def to_input(draft: ReportDraft, reporter_user_id: int | None) -> ReportInput:
        """The report that is submitted from a finished draft."""
        if draft.task_id is None or draft.status is None:
            raise ValueError("the draft has no task or no status")
        files = tuple(f.to_file() for f in draft.files)
        return ReportInput(
            task_id=int(draft.task_id),
            unit_id=int(draft.unit_id or 0),
            reporter_user_id=reporter_user_id,
            status=draft.status,
            percent=complete_percent(draft.status, draft.percent),
            results=draft.results,
            difficulties=draft.difficulties,
            proposals=draft.proposals,
            indicator_value=draft.target if draft.has_target else None,
            evidence_ref=", ".join(f.file_name for f in files),
            files=files,
        )


def parse_number(raw: str) -> float | None:
    """A typed number: digits with an optional decimal comma or point ("87,5")."""
    text = raw.strip().rstrip("%").strip()
    if not text or not text.isascii():
        return None
    sign, digits = ("-", text[1:]) if text.startswith("-") else ("", text)
    whole, _, part = digits.replace(",", ".").partition(".")
    if not (whole.isdigit() and len(whole) <= 12) or (part and not (part.isdigit() and len(part) <= 6)):
        return None
    if "." in digits.replace(",", ".") and not part:
        return None
    return float(sign + whole + ("." + part if part else ""))


async def report_under_way(drafts: DraftService, telegram_id: int) -> ReportDraft | None:
    """The person's report under way (on a task, or at the task list), or None."""
    view = await drafts.load(telegram_id, FLOW)
    return None if view is None else ReportDraft.from_data(view.data)


def interrupts(draft: ReportDraft | None, task_id: int | None) -> bool:
    """Whether a reminder would interrupt the report under way: a nudge about the task being
    reported, or a period reminder (task_id None) while any report is under way. Such a
    reminder is held until the report is sent or dropped (bot/jobs/dispatch.py)."""
    if draft is None:
        return False
    return task_id is None or draft.task_id == task_id
