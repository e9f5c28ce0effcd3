"""Failure paths that used to leave a person without an answer (or raise): now each answers."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from telegram import Document
from telegram.error import BadRequest

from bot.logs import setup_logging
from bot.services.outbox import OutgoingMessage
from storage.db import Database
from storage.models import ReportRevision
from tests.report_helpers import count, drafts, join, press, reports, to_results
from tests.support.harness import Harness

FOCAL = 501
STRANGER = 777


async def test_a_language_button_without_a_message_is_refused_cleanly(harness: Harness) -> None:
    harness.api.user(STRANGER, "Lạ")
    (menu,) = await harness.send(STRANGER, "/lang")
    update = harness.api.press_button(STRANGER, menu.message_id, "lg:en")
    # What Telegram sends for a button under an inline-mode message: no message at all.
    query = update["callback_query"]
    del query["message"]
    query["inline_message_id"] = "forged-inline-id"
    await harness._process(update)
    (answer,) = harness.api.answered_callbacks
    assert answer.show_alert and "không hợp lệ" in (answer.text or "")
    assert harness.api.sent(STRANGER)[-1].message_id == menu.message_id  # nothing else was said


@pytest.mark.parametrize("command", ["/skip", "/skip@tiendo_test_bot"])
async def test_skip_outside_a_report_is_answered(harness: Harness, command: str) -> None:
    await join(harness, FOCAL, "TTRA")
    (answer,) = await harness.send(FOCAL, command)
    assert "Không có báo cáo nào đang làm dở" in (answer.plain_text or "")


async def test_an_evidence_file_telegram_will_not_hand_over_is_answered(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    await join(harness, FOCAL, "TTRA")
    await to_results(harness, FOCAL)
    (summary,) = await harness.send(FOCAL, "Kết quả")
    # Evidence is one tap away on the summary.
    (ask,) = await press(harness, FOCAL, summary, "➕ Minh chứng")
    assert "minh chứng" in (ask.plain_text or "").lower()

    async def too_big(self: Document, *args: object, **kwargs: object) -> None:
        raise BadRequest("File is too big")

    monkeypatch.setattr(Document, "get_file", too_big)
    with caplog.at_level(logging.WARNING):
        (again,) = await harness.send_document(FOCAL, "bien-ban.pdf", b"%PDF-1.4 evidence")
    assert "Không tải được tệp" in (again.plain_text or "")
    assert "minh chứng" in (again.plain_text or "")  # and the question is asked again
    assert [r.levelname for r in caplog.records if "download" in r.getMessage()] == ["WARNING"]
    monkeypatch.undo()
    (summary,) = await harness.send_document(FOCAL, "bien-ban.pdf", b"%PDF-1.4 evidence")
    assert "Đã nhận 1 tệp" in (summary.plain_text or "")


@pytest.fixture
def stderr_log() -> Iterator[io.StringIO]:
    """The log as `tiendo run` writes it (bot.logs set-up), into a string."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    stream = io.StringIO()
    setup_logging("INFO")
    root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
    yield stream
    root.handlers[:], level = saved
    root.setLevel(level)


@pytest.mark.parametrize(("kind", "words"), [("retry_after", "429"), ("bad_gateway", "network error")])
async def test_a_handled_429_or_5xx_is_one_warning_line(
    harness: Harness, stderr_log: io.StringIO, kind: str, words: str
) -> None:
    harness.api.user(603, "U")
    harness.api.fail_next(603, kind, retry_after=7)
    await harness.services.outbox.enqueue([OutgoingMessage("a", "notice", 603, "một")])
    await harness.dispatch()
    lines = [line for line in stderr_log.getvalue().splitlines() if line.strip()]
    assert len(lines) == 1 and " WARNING " in lines[0] and words in lines[0], lines
    assert "Traceback" not in stderr_log.getvalue()


async def test_a_failed_reply_in_a_handler_is_a_warning_without_traceback(
    harness: Harness, stderr_log: io.StringIO
) -> None:
    harness.api.user(STRANGER, "Lạ")
    harness.api.fail_next(STRANGER, "retry_after", retry_after=3)
    await harness.send(STRANGER, "/help")
    text = stderr_log.getvalue()
    assert "Traceback" not in text and " ERROR " not in text
    assert [line for line in text.splitlines() if "RetryAfter" in line and " WARNING " in line]


async def test_a_crash_right_after_a_report_is_stored_files_no_second_revision(
    harness: Harness, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process dies between storing the report and answering: after the restart, Gửi on the
    same summary files nothing more (the draft went with the report, in one transaction)."""
    await join(harness, FOCAL, "TTRA")
    await to_results(harness, FOCAL)
    (summary,) = await harness.send(FOCAL, "Đã họp triển khai")
    drafts_service = harness.services.drafts

    async def killed(*args: object, **kwargs: object) -> None:
        raise RuntimeError("kill -9")

    monkeypatch.setattr(drafts_service, "close", killed)
    await harness.press(FOCAL, summary.message_id, summary.button_data("Gửi"), check=False)
    assert await reports(db) == 1
    monkeypatch.undo()
    drafts_service._cache.clear()  # a new process starts with nothing in memory
    await harness.press(FOCAL, summary.message_id, summary.button_data("Gửi"), check=False)
    assert await reports(db) == 1
    assert await count(db, ReportRevision) == 1  # no revision nobody made
    assert await drafts(db) == 0


async def test_a_crash_before_the_receipt_went_out_sends_it_at_the_restart(
    harness: Harness, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process dies after the report is stored and before its receipt is sent: the receipt
    was queued with the report, so the restarted process sends it, once, and the person is not
    left wondering whether to send again."""
    await join(harness, FOCAL, "TTRA")
    await to_results(harness, FOCAL)
    (summary,) = await harness.send(FOCAL, "Đã họp triển khai")

    async def killed(*args: object, **kwargs: object) -> None:
        raise RuntimeError("kill -9")

    monkeypatch.setattr(harness.services.drafts, "close", killed)
    before = len(harness.api.sent(FOCAL))
    await harness.press(FOCAL, summary.message_id, summary.button_data("Gửi"), check=False)
    monkeypatch.undo()
    assert not [m for m in harness.api.sent(FOCAL)[before:] if "#" in (m.plain_text or "")]

    # The restart: claims of the dead process are released, and the dispatcher runs.
    await harness.services.outbox.release_claims()
    await harness.dispatch()
    await harness.dispatch()
    receipts = [m for m in harness.api.sent(FOCAL)[before:] if "Đã ghi nhận" in (m.plain_text or "")]
    assert len(receipts) == 1, [m.plain_text for m in harness.api.sent(FOCAL)[before:]]
    assert await reports(db) == 1 and await count(db, ReportRevision) == 1


async def test_presses_too_old_to_acknowledge_still_do_what_they_say(harness: Harness) -> None:
    """A press made while the bot was restarting is too old for Telegram to acknowledge; the
    language switch and the task list's pages still happen, with no apology for an error."""
    await join(harness, FOCAL, "TTRA")
    (menu,) = await harness.send(FOCAL, "/lang")
    (done,) = await harness.press(FOCAL, menu.message_id, menu.button_data("English"), too_old=True)
    assert done.plain_text == "Switched to English."
    (page,) = await harness.send(FOCAL, "/tasks")
    first = page.plain_text
    assert "▶" in [b["text"] for b in page.buttons]
    assert await harness.press(FOCAL, page.message_id, page.button_data("▶"), too_old=True) == []
    (turned,) = [m for m in harness.api.sent(FOCAL) if m.message_id == page.message_id]
    assert turned.plain_text != first  # the next page, shown on the same message
