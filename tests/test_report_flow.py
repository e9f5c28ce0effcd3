"""/report step by step through the real application: every step and validation branch."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.config import Config
from bot.context import Context
from bot.jobs.drafts import close_expired_drafts
from handlers import report as report_handlers
from handlers.common import clip
from storage.db import Database
from storage.models import Attachment, OutboxMessage, ProgressReport, ReportRevision
from tests.report_helpers import (
    corrected_tasks,
    count,
    drafts,
    hanoi,
    join,
    last_answer,
    press,
    reports,
    to_results,
)
from tests.support.harness import Harness

FOCAL = 501  # TTRA focal point
LEADER = 502  # TTRA leader


@pytest.fixture
async def bot(harness: Harness) -> Harness:
    await join(harness, FOCAL, "TTRA", name="Lan")
    await join(harness, LEADER, "TTRA", role="leader", name="Hùng")
    return harness


async def test_whole_report_with_target_and_document(bot: Harness, db: Database) -> None:
    (ask,) = await bot.send(FOCAL, "/report 5.14")
    assert "5.14" in ask.plain_text and "Tình trạng thực hiện?" in ask.plain_text
    assert [b["text"] for b in ask.buttons] == [
        "Chưa thực hiện",
        "Đang thực hiện",
        "Đã hoàn thành",
        "Gặp vướng mắc",
    ]
    (ask,) = await press(bot, FOCAL, ask, "Đang thực hiện")
    assert [b["text"] for b in ask.buttons] == ["0%", "25%", "50%", "75%", "100%"]
    (ask,) = await bot.send(FOCAL, "60")
    assert "Kết quả đạt được" in ask.plain_text
    # The task's numeric target is required: asked right after the results.
    (ask,) = await bot.send(FOCAL, "Đã giải quyết 30/35 đơn <script>")
    assert "Tỷ lệ giải quyết khiếu nại" in ask.plain_text and "85%" in ask.plain_text
    # Then the summary, with the optional answers one tap away.
    (summary,) = await bot.send(FOCAL, "87,5")
    assert [b["text"] for b in summary.buttons] == [
        "Gửi",
        "➕ Khó khăn",
        "➕ Kiến nghị",
        "➕ Minh chứng",
        "Sửa",
        "Hủy",
    ]
    (ask,) = await press(bot, FOCAL, summary, "➕ Kiến nghị")
    assert "Kiến nghị" in ask.plain_text
    (summary,) = await bot.send(FOCAL, "Bổ sung 2 biên chế")
    assert "➕ Kiến nghị" not in [b["text"] for b in summary.buttons]
    (ask,) = await press(bot, FOCAL, summary, "➕ Minh chứng")
    assert "minh chứng" in ask.plain_text
    (ask,) = await bot.send_document(FOCAL, "bien-ban.pdf", b"%PDF-1.4 evidence")
    assert "Đã nhận 1 tệp" in ask.plain_text
    (summary,) = await press(bot, FOCAL, ask, "Xong")
    text = summary.plain_text or ""
    for part in (
        "Đang thực hiện",
        "60%",
        "Đã giải quyết 30/35 đơn <script>",
        "Bổ sung 2 biên chế",
        "87.5%",
        "bien-ban.pdf",
    ):
        assert part in text
    assert "&lt;script&gt;" in (summary.text or "")  # escaped in the HTML sent
    (receipt,) = await press(bot, FOCAL, summary, "Gửi")
    assert receipt.plain_text is not None
    assert receipt.plain_text.startswith("✅ Đã ghi nhận báo cáo #1")
    assert "09:00 31/01/2024" in receipt.plain_text

    async with db.reader() as session:
        report = (await session.scalars(select(ProgressReport))).one()
        attachment = (await session.scalars(select(Attachment))).one()
    assert (report.status, report.percent, report.indicator_value) == ("in_progress", 60, 87.5)
    assert report.difficulties == "" and report.proposals == "Bổ sung 2 biên chế"
    assert attachment.telegram_file_id and attachment.sha256
    assert Path(attachment.local_path or "").read_bytes() == b"%PDF-1.4 evidence"
    assert await drafts(db) == 0

    # The leader hears about it through the outbox.
    await bot.dispatch()
    (notice,) = bot.api.sent(LEADER)[-1:]
    assert "Lan" in (notice.plain_text or "") and "5.14" in (notice.plain_text or "")
    # Both were queued with the report; the receipt went out at once, the notice by the
    # dispatcher, and neither is left to send.
    async with db.reader() as session:
        queued = (await session.execute(select(OutboxMessage.kind, OutboxMessage.state))).all()
    assert sorted(queued) == [("notice", "sent"), ("receipt", "sent")]


async def test_picking_from_pages_and_done_skips_percent(bot: Harness, db: Database) -> None:
    (page,) = await bot.send(FOCAL, "/report")
    assert page.plain_text and "trang 1/2" in page.plain_text
    labels = [b["text"] for b in page.buttons]
    assert labels[-1] == "▶" and all(label[0].isdigit() for label in labels[:-1])
    # Long titles are cut at a word, and say so.
    assert "5.14 · Giải quyết kịp thời, đúng pháp luật các…" in labels
    assert all(len(label.split(" · ", 1)[1]) <= 40 for label in labels[:-1])
    await press(bot, FOCAL, page, "▶")
    assert "trang 2/2" in (bot.api.sent(FOCAL)[-1].plain_text or "")
    page = bot.api.sent(FOCAL)[-1]
    first = page.buttons[0]
    (ask,) = await bot.press(FOCAL, page.message_id, first["callback_data"])
    assert first["text"].split(" ")[0] in (ask.plain_text or "")
    (ask,) = await press(bot, FOCAL, ask, "Đã hoàn thành")
    assert "Kết quả đạt được" in (ask.plain_text or "")  # no percent question
    # A task without a target: straight to the summary.
    (summary,) = await bot.send(FOCAL, "Xong toàn bộ")
    assert "100%" in (summary.plain_text or "") and "Kiểm tra lại" in (summary.plain_text or "")
    await press(bot, FOCAL, summary, "Gửi")
    async with db.reader() as session:
        report = (await session.scalars(select(ProgressReport))).one()
    assert (report.status, report.percent) == ("done", 100)


@pytest.mark.parametrize("typed", ["abc", "101", "-5", "5.5", "", "１０"])
async def test_a_bad_percent_is_asked_again(bot: Harness, typed: str) -> None:
    (ask,) = await bot.send(FOCAL, "/report 5.9")
    (ask,) = await press(bot, FOCAL, ask, "Đang thực hiện")
    (again,) = await bot.send(FOCAL, typed or " ")
    assert "0 đến 100" in (again.plain_text or "")
    assert again.buttons[0]["text"] == "0%"
    (ask,) = await bot.send(FOCAL, "40")
    assert "Kết quả" in (ask.plain_text or "")


async def test_results_are_required_and_limited(bot: Harness) -> None:
    await to_results(bot, FOCAL)
    (again,) = await bot.send(FOCAL, "   ")
    assert "không được để trống" in (again.plain_text or "")
    limit = bot.services.config.reporting.max_text_length
    (again,) = await bot.send(FOCAL, "x" * (limit + 1))
    assert f"giới hạn {limit}" in (again.plain_text or "")
    (ask,) = await bot.send(FOCAL, "x" * limit)
    assert "Kiểm tra lại" in (ask.plain_text or "")


async def test_stuck_requires_difficulties(bot: Harness) -> None:
    await to_results(bot, FOCAL, status="Gặp vướng mắc")
    (ask,) = await bot.send(FOCAL, "Một phần")
    assert "bắt buộc" in (ask.plain_text or "")
    (again,) = await bot.send(FOCAL, "/skip")
    assert "cần nêu khó khăn" in (again.plain_text or "")
    (summary,) = await bot.send(FOCAL, "Thiếu kinh phí")
    assert "Thiếu kinh phí" in (summary.plain_text or "") and "Kiểm tra lại" in (summary.plain_text or "")
    assert "➕ Khó khăn" not in [b["text"] for b in summary.buttons]


async def test_target_must_be_a_number(bot: Harness) -> None:
    await to_results(bot, FOCAL, code="5.15")
    (ask,) = await bot.send(FOCAL, "Kết quả")
    assert "mục tiêu 90%" in (ask.plain_text or "")
    (again,) = await bot.send(FOCAL, "/skip")
    assert "không bỏ qua được" in (again.plain_text or "")
    for bad in ("nhiều", "1e5", "12,3,4"):
        (again,) = await bot.send(FOCAL, bad)
        assert "Hãy gõ một số" in (again.plain_text or "")
    (ask,) = await bot.send(FOCAL, "91%")
    assert "Kiểm tra lại" in (ask.plain_text or "") and "91%" in (ask.plain_text or "")


async def test_evidence_type_and_size_limits_and_photos(
    harness: Harness, config: Config, db: Database
) -> None:
    small = config.with_overrides(reporting={"evidence_max_mb": 1})
    await harness.stop()
    bot = await Harness.start(small, db)
    try:
        await join(bot, FOCAL, "TTRA")
        await to_results(bot, FOCAL)
        (summary,) = await bot.send(FOCAL, "Kết quả")
        await press(bot, FOCAL, summary, "➕ Minh chứng")
        (again,) = await bot.send_document(FOCAL, "virus.exe", b"MZ", "application/x-msdownload")
        assert "không được chấp nhận" in (again.plain_text or "")
        (again,) = await bot.send_document(FOCAL, "big.pdf", b"x" * (1024 * 1024 + 1))
        assert "quá lớn" in (again.plain_text or "")
        png = (
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06"
            b"\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01"
            b"\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82"
        )
        await bot._process(bot.api.send_photo(FOCAL, png))
        (summary,) = await bot.send(FOCAL, "/skip")
        assert "photo-" in (summary.plain_text or "")
        await press(bot, FOCAL, summary, "Gửi")
        assert await count(db, Attachment) == 1
    finally:
        await bot.stop()
        await harness.app.initialize()  # the fixture shuts it down again


async def test_edit_one_field_then_back_to_the_summary(bot: Harness, db: Database) -> None:
    await to_results(bot, FOCAL)
    (summary,) = await bot.send(FOCAL, "Kết quả cũ")
    (fields,) = await press(bot, FOCAL, summary, "Sửa")
    assert "Tiến độ (%)" in [b["text"] for b in fields.buttons]
    assert "Giá trị chỉ tiêu" not in [b["text"] for b in fields.buttons]
    (ask,) = await press(bot, FOCAL, fields, "Kết quả")
    (summary,) = await bot.send(FOCAL, "Kết quả mới")
    assert "Kết quả mới" in (summary.plain_text or "") and "Kết quả cũ" not in (summary.plain_text or "")
    # Changing the status to "stuck" needs the difficulties it now requires.
    (fields,) = await press(bot, FOCAL, summary, "Sửa")
    (ask,) = await press(bot, FOCAL, fields, "Tình trạng")
    (ask,) = await press(bot, FOCAL, ask, "Gặp vướng mắc")
    assert "bắt buộc" in (ask.plain_text or "")
    (summary,) = await bot.send(FOCAL, "Chờ ý kiến")
    assert "Gặp vướng mắc" in (summary.plain_text or "")
    (fields,) = await press(bot, FOCAL, summary, "Sửa")
    (summary,) = await press(bot, FOCAL, fields, "Quay lại")
    await press(bot, FOCAL, summary, "Gửi")
    async with db.reader() as session:
        report = (await session.scalars(select(ProgressReport))).one()
    assert (report.status, report.results, report.difficulties) == ("stuck", "Kết quả mới", "Chờ ý kiến")


async def test_cancel_from_the_summary_sends_nothing(bot: Harness, db: Database) -> None:
    await to_results(bot, FOCAL)
    (summary,) = await bot.send(FOCAL, "Kết quả")
    (done,) = await press(bot, FOCAL, summary, "Hủy")
    assert "Đã hủy" in (done.plain_text or "")
    assert await reports(db) == 0 and await drafts(db) == 0


@pytest.mark.parametrize(
    "answers",
    [
        [],
        ["Đang thực hiện"],
        ["Đang thực hiện", "50%"],
        ["Đang thực hiện", "50%", "KQ"],
        ["Đang thực hiện", "50%", "KQ", "80"],
        ["Đang thực hiện", "50%", "KQ", "80", "➕ Khó khăn"],
        ["Đang thực hiện", "50%", "KQ", "80", "➕ Kiến nghị", "Đề xuất"],
        ["Đang thực hiện", "50%", "KQ", "80", "➕ Minh chứng"],
    ],
)
async def test_cancel_works_at_every_step(bot: Harness, db: Database, answers: list[str]) -> None:
    (last,) = await bot.send(FOCAL, "/report 5.14")
    for answer in answers:
        if last.buttons and not answer.startswith("/") and any(b["text"] == answer for b in last.buttons):
            (last,) = await press(bot, FOCAL, last, answer)
        else:
            (last,) = await bot.send(FOCAL, answer)
    (done,) = await bot.send(FOCAL, "/cancel")
    assert "Đã hủy" in (done.plain_text or "")
    assert await drafts(db) == 0 and await reports(db) == 0
    assert await bot.send(FOCAL, "gì đó") == []  # outside a report: no step takes it


async def test_old_buttons_are_out_of_date_and_change_nothing(bot: Harness, db: Database) -> None:
    (status,) = await bot.send(FOCAL, "/report 5.9")
    (percent,) = await press(bot, FOCAL, status, "Đang thực hiện")
    assert await press(bot, FOCAL, status, "Đã hoàn thành") == []
    assert "đã cũ" in (last_answer(bot) or "")
    # Still at the percent step, with the first answer kept.
    draft = await bot.services.drafts.load(FOCAL, "report")
    assert draft is not None and draft.data["status"] == "in_progress"
    assert draft.data["step"] == "percent"
    (ask,) = await press(bot, FOCAL, percent, "25%")
    assert "Kết quả" in (ask.plain_text or "")
    # After the report is cancelled, every button of it is out of date.
    await bot.send(FOCAL, "/cancel")
    assert await press(bot, FOCAL, percent, "75%") == []
    assert "đã cũ" in (last_answer(bot) or "")
    assert await drafts(db) == 0


async def test_a_press_telegram_fails_to_acknowledge_still_moves_on(bot: Harness) -> None:
    """The press is acknowledged while the step runs; if Telegram refuses the acknowledgement
    (a press answered late is "too old"), the answer is kept and the next question is asked."""
    (status,) = await bot.send(FOCAL, "/report 5.9")
    (percent,) = await bot.press(FOCAL, status.message_id, status.button_data("Đang thực hiện"), too_old=True)
    assert "phần trăm" in (percent.plain_text or "") and len(percent.buttons) == 5
    (results,) = await press(bot, FOCAL, percent, "75%")
    assert "Kết quả" in (results.plain_text or "")
    draft = await bot.services.drafts.load(FOCAL, "report")
    assert draft is not None and draft.data["status"] == "in_progress"
    assert draft.data["percent"] == 75 and draft.data["step"] == "results"
    # The same for a "Báo cáo" button of /tasks pressed too late.
    await bot.send(FOCAL, "/cancel")
    (tasks,) = await bot.send(FOCAL, "/tasks")
    start = next(b["callback_data"] for b in tasks.buttons if b["callback_data"].startswith("rp:start:"))
    (status,) = await bot.press(FOCAL, tasks.message_id, start, too_old=True)
    assert "Tình trạng thực hiện?" in (status.plain_text or "") and len(status.buttons) == 4


async def test_typing_where_a_button_is_expected_asks_again(bot: Harness) -> None:
    await bot.send(FOCAL, "/report 5.9")
    (again,) = await bot.send(FOCAL, "đang làm")
    assert "dùng các nút" in (again.plain_text or "") and len(again.buttons) == 4
    (again,) = await bot.send(FOCAL, "/skip")
    assert "không bỏ qua được" in (again.plain_text or "")


async def test_a_second_report_in_the_period_is_a_correction(bot: Harness, db: Database) -> None:
    for percent in ("25%", "75%"):
        (ask,) = await bot.send(FOCAL, "/report 5.9")
        (ask,) = await press(bot, FOCAL, ask, "Đang thực hiện")
        await press(bot, FOCAL, ask, percent)
        (summary,) = await bot.send(FOCAL, f"Đạt {percent}")
        (receipt,) = await press(bot, FOCAL, summary, "Gửi")
    assert "sửa lần 2" in (receipt.plain_text or "")
    assert await reports(db) == 1 and await count(db, ReportRevision) == 2
    (history,) = await bot.send(FOCAL, "/history 5.9")
    text = history.plain_text or ""
    assert "75%" in text and "lần 2" in text and "↳ lần 1" in text and "25%" in text


async def test_a_restart_resumes_at_the_same_step(bot: Harness, config: Config, db: Database) -> None:
    await to_results(bot, FOCAL)
    (summary,) = await bot.send(FOCAL, "Kết quả trước khi tắt")
    await bot.stop()
    # A new process: a new Application reads the conversation back from the database.
    again = await Harness.start(config, db)
    # Telegram's update ids keep rising across a restart (a repeated id is a re-delivery).
    again.api._next_update_id = bot.api._next_update_id
    try:
        again.api.user(FOCAL, "Lan")
        # Still at the summary: a typed word is answered with it again.
        (summary,) = await again.send(FOCAL, "còn đó không?")
        assert "Kết quả trước khi tắt" in (summary.plain_text or "")
        (ask,) = await press(again, FOCAL, summary, "➕ Kiến nghị")
        assert "Kiến nghị" in (ask.plain_text or "")
        (summary,) = await again.send(FOCAL, "Đề xuất sau khi bật lại")
        assert "Kết quả trước khi tắt" in (summary.plain_text or "")
        assert "Đề xuất sau khi bật lại" in (summary.plain_text or "")
    finally:
        await again.stop()
        await bot.app.initialize()


async def test_after_a_clean_stop_nobody_is_asked_again(bot: Harness, config: Config, db: Database) -> None:
    """A process that stopped cleanly (SIGTERM: every update handled, every question sent)
    leaves nothing to make up for: the next start asks no one again, and the report goes on."""
    await to_results(bot, FOCAL, status="Gặp vướng mắc")
    await bot.send(FOCAL, "Kết quả trước khi dừng")
    await bot.services.drafts.stopped_cleanly()  # what a clean stop runs (bot/app.py)
    await bot.stop()
    again = await Harness.start(config, db)
    again.api._next_update_id = bot.api._next_update_id
    try:
        again.api.user(FOCAL, "Lan")
        assert await report_handlers.reask_after_restart(again.app) == 0
        assert again.api.sent(FOCAL) == []
        (summary,) = await again.send(FOCAL, "Thiếu người")  # the difficulties, asked before the stop
        assert "Kết quả trước khi dừng" in (summary.plain_text or "") and "Thiếu người" in (
            summary.plain_text or ""
        )
    finally:
        await again.stop()
        await bot.app.initialize()


async def test_after_a_restart_the_current_question_is_asked_again_once(
    bot: Harness, config: Config, db: Database
) -> None:
    """A step saved just before a crash may never have been shown: at start-up each report
    under way gets its current question again, once per step."""
    await to_results(bot, FOCAL, status="Gặp vướng mắc")
    await bot.send(FOCAL, "Kết quả trước khi tắt")  # saved; "difficulties" maybe never shown
    # The process dies (no clean stop), and a new one starts.
    again = await Harness.start(config, db)
    again.api._next_update_id = bot.api._next_update_id
    try:
        again.api.user(FOCAL, "Lan")
        assert await report_handlers.reask_after_restart(again.app) == 1
        (asked,) = again.api.sent(FOCAL)
        assert "khởi động lại" in (asked.plain_text or "") and "bắt buộc" in (asked.plain_text or "")
        # Once: another start-up does not ask it again.
        assert await report_handlers.reask_after_restart(again.app) == 0
        # The person, unsure, sends the results again: recognised, not taken as the difficulties.
        (repeated,) = await again.send(FOCAL, "Kết quả trước khi tắt")
        assert "vừa được ghi cho câu hỏi trước" in (repeated.plain_text or "")
        assert "bắt buộc" in (repeated.plain_text or "")
        (summary,) = await again.send(FOCAL, "Thiếu người")
        text = summary.plain_text or ""
        assert "Khó khăn, vướng mắc: Thiếu người" in text and "Kết quả: Kết quả trước khi tắt" in text
    finally:
        await again.stop()
        await bot.app.initialize()


async def test_an_old_draft_is_closed_with_a_message(bot: Harness, db: Database) -> None:
    await to_results(bot, FOCAL)
    bot.clock.advance(timedelta(hours=25))
    await close_expired_drafts(Context.from_application(bot.app))
    assert await drafts(db) == 0
    await bot.dispatch()
    closed = bot.api.sent(FOCAL)[-1]
    assert "đã bị đóng" in (closed.plain_text or "") and "/report" in (closed.plain_text or "")
    (answer,) = await bot.send(FOCAL, "Kết quả muộn")
    assert "hết hạn" in (answer.plain_text or "")
    assert await reports(db) == 0


async def test_english_after_lang(bot: Harness) -> None:
    (ask,) = await bot.send(FOCAL, "/lang")
    (done,) = await press(bot, FOCAL, ask, "English")
    assert done.plain_text == "Switched to English."
    (ask,) = await bot.send(FOCAL, "/report 5.9")
    assert [b["text"] for b in ask.buttons] == ["Not started", "In progress", "Completed", "Facing obstacles"]
    menu = bot.api.commands({"type": "chat", "chat_id": FOCAL})
    assert {c["command"] for c in menu} >= {"report", "tasks"}
    assert any(c["description"].startswith("report progress") for c in menu)
    await bot.send(FOCAL, "/lang vi")
    (ask,) = await bot.send(FOCAL, "/report 5.9")
    assert ask.buttons[0]["text"] == "Chưa thực hiện"


async def all_task_pages(bot: Harness, user_id: int) -> str:
    """/tasks, then every further page (▶), as one text."""
    (page,) = await bot.send(user_id, "/tasks")
    texts = [page.plain_text or ""]
    while "▶" in [b["text"] for b in page.buttons]:
        await press(bot, user_id, page, "▶")
        page = bot.api.sent(user_id)[-1]
        texts.append(page.plain_text or "")
    return "\n\n".join(texts)


def task_block(text: str, code: str) -> str:
    (block,) = [b for b in text.split("\n\n") if b.startswith(f"{code} ")]
    return block


async def test_tasks_show_when_a_corrected_report_completed_the_task(bot: Harness) -> None:
    codes = await corrected_tasks(bot, "TTRA")
    bot.clock.set(hanoi(7, 9))
    text = await all_task_pages(bot, FOCAL)
    kept, reopened, late = (task_block(text, codes[k]) for k in ("kept", "reopened", "late"))
    # Done on the deadline day; a correction the next day that keeps "done" keeps that day.
    assert "Đã hoàn thành đúng hạn" in kept
    assert "Chưa hoàn thành, quá hạn" in reopened  # "done" corrected to "in progress"
    assert "Đã hoàn thành quá hạn" in late  # "in progress" corrected to "done" the day after
    # The last report shown is the correction.
    for block in (kept, late):
        assert "Báo cáo gần nhất: 06/02/2024, 100%" in block
    assert "Báo cáo gần nhất: 06/02/2024, 60%" in reopened


@pytest.mark.parametrize(
    ("text", "width", "clipped"),
    [
        ("Ngắn", 40, "Ngắn"),
        (
            "Giải quyết kịp thời, đúng pháp luật các vụ việc khiếu nại",
            40,
            "Giải quyết kịp thời, đúng pháp luật các…",
        ),
        ("Một-từ-rất-dài-không-có-khoảng-trắng-nào-cả", 20, "Một-từ-rất-dài-khôn…"),
        ("Quản lý chặt chẽ, tránh thất thoát", 17, "Quản lý chặt chẽ…"),
        ("Quản lý chặt chẽ, tránh thất thoát", 15, "Quản lý chặt…"),
    ],
)
def test_clip_cuts_at_a_word_and_marks_the_cut(text: str, width: int, clipped: str) -> None:
    assert clip(text, width) == clipped
    assert len(clip(text, width)) <= width


async def test_an_out_of_date_press_too_old_to_answer_is_told_in_the_chat(bot: Harness) -> None:
    """A press on an old button that Telegram no longer lets the bot answer (made while the bot
    was restarting): the "out of date" notice comes as a message instead, and nothing changes."""
    (status,) = await bot.send(FOCAL, "/report 5.9")
    await press(bot, FOCAL, status, "Đang thực hiện")
    (notice,) = await bot.press(FOCAL, status.message_id, status.button_data("Đã hoàn thành"), too_old=True)
    assert "đã cũ" in (notice.plain_text or "")
    draft = await bot.services.drafts.load(FOCAL, "report")
    assert draft is not None and draft.data["status"] == "in_progress"
