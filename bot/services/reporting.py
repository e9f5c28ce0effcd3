"""Submitting progress reports: one per unit, task and period; a resubmission in the same
period is a correction (a new revision; the old one is kept)."""

from __future__ import annotations

import dataclasses
import unicodedata
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.clock import Clock
from bot.services.outbox import OutboxService, OutgoingMessage
from bot.services.periods import PeriodRule
from storage.db import Database
from storage.models import REPORT_STATUSES
from storage.repositories.drafts import drop_drafts
from storage.repositories.outbox import add_new_message
from storage.repositories.reports import (
    ATTACHMENTS,
    AUDIT,
    REPORTS,
    REVISIONS,
    correct_report,
    period_report,
    unit_last_report,
    unit_latest_status,
)
from storage.repositories.tasks import next_unreported
from storage.statements import StatementRunner


@dataclass(frozen=True)
class EvidenceFile:
    telegram_file_id: str
    telegram_file_unique_id: str = ""
    file_name: str = ""
    mime_type: str = ""
    size: int = 0
    sha256: str | None = None
    local_path: str | None = None


@dataclass(frozen=True)
class ReportInput:
    task_id: int
    unit_id: int
    reporter_user_id: int | None
    status: str
    percent: int
    results: str
    difficulties: str = ""
    proposals: str = ""
    indicator_value: float | None = None
    evidence_ref: str = ""
    files: tuple[EvidenceFile, ...] = field(default_factory=tuple)
    # A copy of the unit's previous report, filed with one tap ("Không thay đổi").
    unchanged: bool = False


@dataclass(frozen=True)
class Receipt:
    report_id: int
    revision: int
    period: str
    submitted_at: datetime
    status: str = ""  # as stored (done => 100 %)
    percent: int = 0
    # The unit's next task still unreported this period (id, code), offered under the receipt.
    next_task: tuple[int, str] | None = None
    # The outbox row of the message queued with the report for the caller to send (the
    # receipt itself: OutgoingMessage.sent_by_caller), and how many others were queued.
    outbox_id: int | None = None
    queued: int = 0

    @property
    def is_correction(self) -> bool:
        return self.revision > 1


# What to queue with a report, made from its receipt inside the transaction that stores it: the
# person's receipt and the leaders' notices. A crash after the commit cannot lose them.
FollowUp = Callable[[Receipt], Sequence[OutgoingMessage]]


@dataclass(frozen=True)
class Unchanged:
    """What a "Không thay đổi" tap did: `receipt` and the copied status and percent when a
    report was filed; else why not ("already": the unit reported this period; "no_previous":
    nothing to copy) and the period."""

    period: str
    receipt: Receipt | None = None
    status: str = ""
    percent: int = 0
    refused: str = ""


def complete_percent(status: str, percent: int | None) -> int:
    """Done ⇒ 100 %: the one place this rule is written (the report flow shows it in the
    summary; every report stored goes through it)."""
    return 100 if status == "done" else int(percent or 0)


def _clean(text: str) -> str:
    return unicodedata.normalize("NFC", text).strip()


class ReportingService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        periods: PeriodRule,
        *,
        on_task_changed: Callable[[int], Awaitable[Any]] | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.periods = periods
        # Told after a "done" report is stored (NudgeService cancels what is pending).
        self.on_task_changed = on_task_changed

    async def submit(
        self,
        data: ReportInput,
        *,
        actor_telegram_id: int | None = None,
        at: datetime | None = None,
        closing_draft: str | None = None,
        follow_up: FollowUp | None = None,
    ) -> Receipt:
        """Store a report (or a correction of this period's report) in one transaction.

        `closing_draft`: the flow whose draft (the reporter's) goes in the same transaction, so
        that a crash can never leave a stored report with its draft still at the summary, whose
        Gửi pressed again would file a second revision nobody meant. `follow_up`: the messages
        queued in the same transaction, so that a crash before the receipt went out leaves it
        to be sent at the restart instead of leaving the person without an answer."""
        if data.status not in REPORT_STATUSES:
            raise ValueError(f"unknown status {data.status!r}")
        if not 0 <= data.percent <= 100:
            raise ValueError("percent must be 0-100")
        now = at or self.clock.now()
        period = self.periods.period_at(now).key
        fields = _fields(data)

        def store(runner: StatementRunner) -> Receipt:
            receipt = _store(runner, data, fields, period, now, actor_telegram_id)
            if closing_draft is not None and data.reporter_user_id is not None:
                drop_drafts(runner, [(data.reporter_user_id, closing_draft)])
            return _follow_up(runner, receipt, data.unit_id, data.task_id, follow_up)

        receipt = await self.db.write_statements(store)
        if data.status == "done" and self.on_task_changed is not None:
            await self.on_task_changed(data.task_id)
        return receipt

    async def submit_unchanged(
        self,
        task_id: int,
        unit_id: int,
        reporter_user_id: int | None,
        *,
        actor_telegram_id: int | None = None,
        follow_up: FollowUp | None = None,
    ) -> Unchanged:
        """File this period's report as a copy of the unit's last one (status, percent, texts,
        target value; no evidence), marked unchanged. Refused, with nothing written, when the
        unit has reported this period already (a second tap is not a correction) or has no
        report to copy."""
        now = self.clock.now()
        period = self.periods.period_at(now).key

        def store(runner: StatementRunner) -> Unchanged:
            result = _store_unchanged(
                runner, task_id, unit_id, reporter_user_id, period, now, actor_telegram_id
            )
            if result.receipt is None:
                return result
            receipt = _follow_up(runner, result.receipt, unit_id, task_id, follow_up)
            return dataclasses.replace(result, receipt=receipt)

        result = await self.db.write_statements(store)
        if result.status == "done" and self.on_task_changed is not None:
            await self.on_task_changed(task_id)
        return result


def _follow_up(
    runner: StatementRunner, receipt: Receipt, unit_id: int, task_id: int, follow_up: FollowUp | None
) -> Receipt:
    """The receipt completed in the report's transaction: the unit's next task to report and
    the messages queued with it (see FollowUp)."""
    receipt = dataclasses.replace(
        receipt, next_task=next_unreported(runner, unit_id, receipt.period, task_id)
    )
    if follow_up is None:
        return receipt
    outbox_id, queued = None, 0
    for message in follow_up(receipt):
        added = add_new_message(runner, OutboxService.row(message, receipt.submitted_at))
        if message.sent_by_caller:
            outbox_id = added
        elif added is not None:
            queued += 1
    return dataclasses.replace(receipt, outbox_id=outbox_id, queued=queued)


def _fields(data: ReportInput) -> dict[str, Any]:
    """The answers as stored (texts normalised; done => 100 %)."""
    return {
        "status": data.status,
        "percent": complete_percent(data.status, data.percent),
        "results": _clean(data.results),
        "difficulties": _clean(data.difficulties),
        "proposals": _clean(data.proposals),
        "indicator_value": data.indicator_value,
        "evidence_ref": _clean(data.evidence_ref),
        "unchanged": data.unchanged,
    }


def _store_unchanged(
    runner: StatementRunner,
    task_id: int,
    unit_id: int,
    reporter_user_id: int | None,
    period: str,
    now: datetime,
    actor_telegram_id: int | None,
) -> Unchanged:
    """Check and copy in the transaction that writes the copy (see submit_unchanged)."""
    if period_report(runner, task_id, unit_id, period) is not None:
        return Unchanged(period, refused="already")
    last = unit_last_report(runner, task_id, unit_id)
    if last is None:
        return Unchanged(period, refused="no_previous")
    copy = ReportInput(
        task_id,
        unit_id,
        reporter_user_id,
        last["status"],
        last["percent"],
        last["results"],
        last["difficulties"],
        last["proposals"],
        last["indicator_value"],
        unchanged=True,
    )
    fields = _fields(copy)
    receipt = _store(runner, copy, fields, period, now, actor_telegram_id)
    return Unchanged(period, receipt, copy.status, fields["percent"])


def _store(
    runner: StatementRunner,
    data: ReportInput,
    fields: dict[str, Any],
    period: str,
    now: datetime,
    actor_telegram_id: int | None,
) -> Receipt:
    """The report (or this period's correction), its revision, attachments and audit entry:
    Core statements in one transaction (Database.write_statements)."""
    report_id, revision, before = _write_report(runner, data, fields, period, now)
    _write_revision(runner, data, fields, report_id, revision, now)
    _audit_report(runner, report_id, revision, period, fields, before, now, actor_telegram_id)
    return Receipt(report_id, revision, period, now, fields["status"], fields["percent"])


def _write_report(
    runner: StatementRunner, data: ReportInput, fields: dict[str, Any], period: str, now: datetime
) -> tuple[int, int, dict[str, Any] | None]:
    """The unit's report of the period, new or corrected: its id, its revision now, and (for a
    correction) the values it held before."""
    report = period_report(runner, data.task_id, data.unit_id, period)
    # When the unit's run of this status began: kept while the status is repeated (by a
    # correction or in a later period), restarted when it changes (status.py).
    if report is None:
        previous = unit_latest_status(runner, data.task_id, data.unit_id, now)
        since = previous[1] if previous and previous[0] == data.status else now
        report_id = runner.insert(
            REPORTS,
            fields
            | {
                "task_id": data.task_id,
                "unit_id": data.unit_id,
                "reporter_id": data.reporter_user_id,
                "period": period,
                "revision": 1,
                "submitted_at": now,
                "status_since": since,
                "created_at": now,
            },
        )
        return report_id, 1, None
    before = {k: report[k] for k in fields} | {"revision": report["revision"]}
    revision = report["revision"] + 1
    restart = {"status_since": now} if report["status"] != data.status else {}
    correct_report(
        runner,
        report["id"],
        fields | restart | {"revision": revision, "reporter_id": data.reporter_user_id, "submitted_at": now},
    )
    return report["id"], revision, before


def _write_revision(
    runner: StatementRunner,
    data: ReportInput,
    fields: dict[str, Any],
    report_id: int,
    revision: int,
    now: datetime,
) -> None:
    """The revision as submitted, with its evidence files."""
    runner.insert(
        REVISIONS,
        fields
        | {
            "report_id": report_id,
            "revision": revision,
            "reporter_id": data.reporter_user_id,
            "submitted_at": now,
        },
    )
    for evidence in data.files:
        runner.insert(
            ATTACHMENTS,
            {
                "report_id": report_id,
                "revision": revision,
                "telegram_file_id": evidence.telegram_file_id,
                "telegram_file_unique_id": evidence.telegram_file_unique_id,
                "file_name": evidence.file_name,
                "mime_type": evidence.mime_type,
                "size": evidence.size,
                "sha256": evidence.sha256,
                "local_path": evidence.local_path,
                "created_at": now,
            },
        )


def _audit_report(
    runner: StatementRunner,
    report_id: int,
    revision: int,
    period: str,
    fields: dict[str, Any],
    before: dict[str, Any] | None,
    now: datetime,
    actor_telegram_id: int | None,
) -> None:
    """The audit entry of a submission (report.submit) or a correction (report.correct)."""
    runner.insert(
        AUDIT,
        {
            "at": now,
            "action": "report.correct" if before else "report.submit",
            "actor": f"tg:{actor_telegram_id}" if actor_telegram_id else "",
            "actor_telegram_id": actor_telegram_id,
            "entity": "report",
            "entity_id": str(report_id),
            "after": fields | {"revision": revision, "period": period},
            "detail": "",
        }
        | ({"before": before} if before else {}),
    )
