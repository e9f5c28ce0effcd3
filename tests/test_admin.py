"""Admin and manager commands in process: good paths, usage messages, refusals (audited),
imports with bad rows, notices through the outbox, deadline extensions, manager views."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from bot.app import build_application
from bot.config import Config
from bot.services.container import build_services
from bot.services.reporting import ReportInput
from handlers.admin import COMMANDS
from handlers.wording import TelegramWording
from storage.db import Database
from storage.models import AuditEntry, Draft, Task, Unit
from tests.conftest import EXAMPLE_PLAN
from tests.report_helpers import corrected_tasks, hanoi
from tests.support.botapi import StandinRequest
from tests.support.harness import Harness

ADMIN = 1000  # [bot] admins in the test config
FOCAL = 501
STRANGER = 777


async def count(db: Database, model: type, *where: object) -> int:
    async with db.reader() as session:
        query = select(func.count()).select_from(model)
        for clause in where:
            query = query.where(clause)  # type: ignore[arg-type]
        return int(await session.scalar(query) or 0)


async def task_row(db: Database, code: str) -> Task:
    async with db.reader() as session:
        task = await session.scalar(select(Task).where(Task.code == code))
        assert task is not None
        return task


async def join(harness: Harness, user_id: int, unit: str, name: str = "Lan", role: str = "focal") -> None:
    """A person joins a unit through an invite, as /start with the link does."""
    harness.api.user(user_id, name, username=name.lower())
    invite = await harness.services.invites.create(unit, role, timedelta(days=7))
    await harness.send(user_id, f"/start {invite.code}")


async def restart(harness: Harness, config: Config, db: Database) -> None:
    """Stop the bot and start a new one on the same database and the same Bot API stand-in."""
    await harness.app.shutdown()
    services = build_services(config, wording=TelegramWording, clock=harness.clock, db=db)
    harness.app = build_application(
        config,
        services=services,
        request=StandinRequest(harness.api),
        updates_request=StandinRequest(harness.api),
    )
    harness.services = services
    await harness.app.initialize()


async def say(harness: Harness, user_id: int, text: str) -> str:
    replies = await harness.send(user_id, text)
    assert replies, f"no answer to {text!r}"
    return "\n".join(r.plain_text or "" for r in replies)


# --- who may run what -------------------------------------------------------------------------


@pytest.mark.parametrize("command,role", [c for c in COMMANDS if c[1] != "focal"])
async def test_a_stranger_is_refused_and_the_attempt_audited(
    harness: Harness, db: Database, command: str, role: str
) -> None:
    text = await say(harness, STRANGER, f"/{command} 2.1 VP")
    assert "⛔" in text and f"/{command}" in text
    async with db.reader() as session:
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "admin.refused"))
    assert entry is not None and entry.actor_telegram_id == STRANGER
    assert entry.entity_id == command


async def test_a_focal_point_is_not_an_admin_but_a_manager_sees_the_views(
    harness: Harness, db: Database
) -> None:
    await join(harness, FOCAL, "VP")
    assert "⛔" in await say(harness, FOCAL, "/unit_add X Y")
    assert "⛔" in await say(harness, FOCAL, "/stats")
    await join(harness, 610, "VP", "Minh", role="manager")
    assert "Thống kê" in await say(harness, 610, "/stats")
    assert "⛔" in await say(harness, 610, "/deadline 2.1 31/12/2024")
    assert "⛔" in await say(harness, STRANGER, "/extend 2.1 31/12/2024 lý do")


@pytest.mark.parametrize(
    "text",
    [
        "/unit_add",
        "/unit_add ONLYCODE",
        "/task_edit",
        "/task_close 2.1",
        "/assign 2.1",
        "/deadline 2.1",
        "/deadline 2.1 31/12/2024 maybe",
        "/invite",
        "/invite VP boss",
        "/role 5",
        "/revoke",
        "/broadcast",
        "/audit x",
        "/audit 500",
        "/history",
    ],
)
async def test_bad_arguments_get_the_usage_message(harness: Harness, text: str) -> None:
    assert "Cách dùng" in await say(harness, ADMIN, text)


async def test_extend_without_a_reason_gets_the_usage_message(harness: Harness) -> None:
    await join(harness, FOCAL, "TDC")
    assert "Cách dùng" in await say(harness, FOCAL, "/extend 2.1 30/06/2024")


# --- units and tasks --------------------------------------------------------------------------


async def test_unit_add_and_unit_list(harness: Harness, db: Database) -> None:
    text = await say(harness, ADMIN, "/unit_add TTS  Trung tâm Số hóa")
    assert "TTS" in text and "Trung tâm Số hóa" in text
    assert "đã có" in await say(harness, ADMIN, "/unit_add TTS Lần nữa")
    assert "không hợp lệ" in await say(harness, ADMIN, "/unit_add Đ1 Sai mã")
    listing = await say(harness, ADMIN, "/unit_list")
    assert "TTS — Trung tâm Số hóa" in listing and "VP — Văn phòng Bộ" in listing
    async with db.reader() as session:
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "unit.create"))
    assert entry is not None and entry.after == {"code": "TTS", "name": "Trung tâm Số hóa"}


async def test_task_add_guides_confirms_creates_and_notifies(harness: Harness, db: Database) -> None:
    await join(harness, FOCAL, "VP")
    await join(harness, 502, "PC", "Hà")
    assert "Nhóm nhiệm vụ" in await say(harness, ADMIN, "/task_add")
    assert "Không có nhóm" in await say(harness, ADMIN, "99")
    assert "Mã nhiệm vụ" in await say(harness, ADMIN, "7")
    assert "đã có" in await say(harness, ADMIN, "2.1")
    await say(harness, ADMIN, "7.99")
    assert "Đơn vị chủ trì" in await say(harness, ADMIN, "Số hóa hồ sơ lưu trữ <2024>")
    await say(harness, ADMIN, "VP")
    assert "Không có đơn vị" in await say(harness, ADMIN, "PC NOPE")
    await say(harness, ADMIN, "PC")
    assert "không hợp lệ" in await say(harness, ADMIN, "31/02/2024")
    assert "đã qua" in await say(harness, ADMIN, "01/01/2024")
    await say(harness, ADMIN, "30/06/2024")
    await say(harness, ADMIN, "Kho hồ sơ số")
    replies = await harness.send(ADMIN, "90%")
    confirm = replies[-1]
    assert "Số hóa hồ sơ lưu trữ <2024>" in (confirm.plain_text or "")
    assert "30/06/2024" in (confirm.plain_text or "") and "90%" in (confirm.plain_text or "")
    assert await count(db, Task, Task.code == "7.99") == 0  # nothing before Tạo
    await harness.press(ADMIN, confirm.message_id, confirm.button_data("Tạo"))
    assert "Đã tạo" in (harness.api.message(ADMIN, confirm.message_id)["text"])
    task = await task_row(db, "7.99")
    assert task.deadline is not None and task.deadline.isoformat() == "2024-06-30"
    assert task.target_value == 90 and task.target_unit == "%"
    assert await count(db, Draft) == 0

    await harness.dispatch()
    (notice,) = harness.api.sent(FOCAL)[-1:]
    assert "7.99" in (notice.plain_text or "") and "30/06/2024" in (notice.plain_text or "")
    assert "chủ trì" in (notice.plain_text or "")
    assert notice.button_data("Báo cáo") == f"rp:start:{task.id}"
    assert "phối hợp" in (harness.api.sent(502)[-1].plain_text or "")


async def test_task_add_resumes_after_a_restart_and_cancels(
    harness: Harness, config: Config, db: Database
) -> None:
    await say(harness, ADMIN, "/task_add")
    await say(harness, ADMIN, "7")
    await restart(harness, config, db)
    assert await harness.send(ADMIN, "7.50") == []  # the conversation itself did not survive
    text = await say(harness, ADMIN, "/task_add")
    assert "Tiếp tục" in text and "Mã nhiệm vụ" in text
    assert "Tên nhiệm vụ" in await say(harness, ADMIN, "7.50")
    assert "Đã hủy" in await say(harness, ADMIN, "/cancel")
    assert await count(db, Draft) == 0


async def test_task_edit_close_and_history(harness: Harness, db: Database) -> None:
    await join(harness, FOCAL, "TDC")
    assert "Nhóm: 2" in await say(harness, ADMIN, "/task_edit 2.1")
    text = await say(harness, ADMIN, "/task_edit 2.1 expected_output Hồ sơ Luật & Tờ trình")
    assert "expected_output" in text and "Hồ sơ Luật & Tờ trình" in text
    assert "Không sửa được" in await say(harness, ADMIN, "/task_edit 2.1 deadline 01/01/2025")
    assert "Không có nhiệm vụ" in await say(harness, ADMIN, "/task_edit 9.9 title X")
    text = await say(harness, ADMIN, "/task_close 2.1 Đã gộp vào 2.2")
    assert "Đã đóng" in text
    assert (await task_row(db, "2.1")).closed_at is not None
    assert "đã đóng" in await say(harness, ADMIN, "/deadline 2.1 31/12/2024")
    await harness.dispatch()
    closed = harness.api.sent(FOCAL)[-1]
    assert "đã được đóng" in (closed.plain_text or "") and "Đã gộp vào 2.2" in (closed.plain_text or "")
    history = await say(harness, ADMIN, "/history 2.1")
    assert "task.edit" in history and "task.close" in history


async def test_assign_notifies_new_units_with_a_report_button(harness: Harness, db: Database) -> None:
    await join(harness, FOCAL, "VP")
    text = await say(harness, ADMIN, "/assign 2.1 VP PC")
    assert "lead_unit: TDC → VP" in text
    task = await task_row(db, "2.1")
    async with db.reader() as session:
        lead = await session.get(Unit, task.lead_unit_id)
    assert lead is not None and lead.code == "VP"
    assert "Không có đơn vị" in await say(harness, ADMIN, "/assign 2.1 NOPE")
    await harness.dispatch()
    notice = harness.api.sent(FOCAL)[-1]
    assert "2.1" in (notice.plain_text or "") and "20/05/2024" in (notice.plain_text or "")
    assert notice.button_data("Báo cáo") == f"rp:start:{task.id}"


async def test_deadline_accepts_both_spellings_refuses_bad_and_past_dates(
    harness: Harness, db: Database
) -> None:
    await join(harness, FOCAL, "TDC")
    before = (await task_row(db, "2.1")).deadline_version
    assert "30/06/2024" in await say(harness, ADMIN, "/deadline 2.1 30/06/2024")
    assert "15/07/2024" in await say(harness, ADMIN, "/deadline 2.1 2024-07-15")
    assert "không hợp lệ" in await say(harness, ADMIN, "/deadline 2.1 31/02/2024")
    assert "force" in await say(harness, ADMIN, "/deadline 2.1 01/01/2024")
    assert "01/01/2024" in await say(harness, ADMIN, "/deadline 2.1 01/01/2024 force")
    task = await task_row(db, "2.1")
    assert task.deadline is not None and task.deadline.isoformat() == "2024-01-01"
    assert task.deadline_version == before + 3
    assert "thường xuyên" in await say(harness, ADMIN, "/deadline 2.1 thường xuyên")
    assert (await task_row(db, "2.1")).deadline is None
    await harness.dispatch()
    notices = [m.plain_text or "" for m in harness.api.sent(FOCAL)[-4:]]
    assert "20/05/2024 → 30/06/2024" in notices[0]
    assert "15/07/2024 → 01/01/2024" in notices[2]
    assert "01/01/2024 → thường xuyên" in notices[3]


# --- people ------------------------------------------------------------------------------------


async def test_invite_users_role_revoke(harness: Harness, db: Database) -> None:
    text = await say(harness, ADMIN, "/invite VP")
    assert "https://t.me/tiendo_test_bot?start=" in text
    code = text.split("?start=")[1].split()[0]
    harness.api.user(FOCAL, "Lan", username="lan")
    assert "Văn phòng Bộ" in await say(harness, FOCAL, f"/start {code}")
    assert "Không có đơn vị" in await say(harness, ADMIN, "/invite NOPE leader")
    listing = await say(harness, ADMIN, "/users")
    assert f"{FOCAL} Lan @lan — focal:VP" in listing
    assert "manager" in await say(harness, ADMIN, "/role @lan manager")
    assert "leader:PC" in await say(harness, ADMIN, f"/role {FOCAL} leader PC")
    assert "cần mã đơn vị" in await say(harness, ADMIN, "/role @lan focal")
    assert "Vai trò không hợp lệ" in await say(harness, ADMIN, "/role @lan boss")
    assert "Không tìm thấy" in await say(harness, ADMIN, "/role @nobody admin")
    assert "Đã thu hồi" in await say(harness, ADMIN, "/revoke @lan")
    assert "chưa có vai trò" in await say(harness, ADMIN, "/users")
    assert "⛔" in await say(harness, FOCAL, "/stats")
    async with db.reader() as session:
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "user.revoke"))
    assert entry is not None and entry.after == {"roles": []}
    assert "focal:VP" in entry.before["roles"]  # type: ignore[index]


async def test_broadcast_is_shown_then_sent_through_the_outbox(harness: Harness) -> None:
    await join(harness, FOCAL, "VP")
    await join(harness, 502, "PC", "Hà")
    replies = await harness.send(ADMIN, "/broadcast Họp giao ban <thứ Hai> lúc 8:00")
    preview = replies[-1]
    assert "2 người" in (preview.plain_text or "")
    assert "<thứ Hai>" in (preview.plain_text or "")
    await harness.dispatch()
    assert "Họp giao ban" not in (harness.api.sent(FOCAL)[-1].plain_text or "")
    send = preview.button_data("Gửi")
    await harness.press(ADMIN, preview.message_id, send)
    await harness.dispatch()
    assert "Họp giao ban <thứ Hai>" in (harness.api.sent(FOCAL)[-1].plain_text or "")
    assert "Họp giao ban" in (harness.api.sent(502)[-1].plain_text or "")
    # The same button again sends nothing more.
    await harness.press(ADMIN, preview.message_id, send, check=False)
    await harness.dispatch()
    assert sum("Họp giao ban" in (m.plain_text or "") for m in harness.api.sent(FOCAL)) == 1


async def test_audit_shows_the_latest_entries(harness: Harness) -> None:
    await say(harness, ADMIN, "/deadline 2.1 30/06/2024")
    text = await say(harness, ADMIN, "/audit 3")
    assert "task.deadline" in text and "2024-06-30" in text
    assert "Nhật ký (3" in text


# --- import and export -------------------------------------------------------------------------

BAD_CSV = (
    "group,code,title,lead_unit,coordinating_units,deadline\n"
    "2,2.1,Luật sửa đổi,TDC,PC,31/12/2024\n"
    "2,2.90,Nhiệm vụ mới,NOPE,,31/12/2024\n"
    "2,2.91,Nhiệm vụ mới khác,VP,,31/02/2024\n"
).encode()


async def test_import_with_bad_rows_lists_them_and_writes_nothing(harness: Harness, db: Database) -> None:
    before = (await count(db, Task), await count(db, AuditEntry))
    await say(harness, ADMIN, "/import QD-59-BKHCN-2024")  # a CSV file names no programme
    replies = await harness.send_document(ADMIN, "plan.csv", BAD_CSV, "text/csv")
    text = "\n".join(r.plain_text or "" for r in replies)
    assert "2 lỗi" in text
    assert 'Dòng 3: đơn vị "NOPE" chưa có' in text
    assert "Dòng 4: thời hạn" in text
    assert "không thể áp dụng" in text
    assert not replies[-1].buttons
    # Nothing written: no task added, no change audited.
    assert (await count(db, Task), await count(db, AuditEntry)) == before


async def test_import_previews_then_applies_only_on_ap_dung_even_after_a_restart(
    harness: Harness, config: Config, db: Database
) -> None:
    text = EXAMPLE_PLAN.read_text(encoding="utf-8").replace("deadline: 2024-05-20", "deadline: 2024-06-15", 1)
    text = text.replace(
        "tasks:\n",
        "tasks:\n  - group: '2'\n    code: '2.99'\n"
        "    title: Nhiệm vụ thử\n    lead: VP\n    deadline: 2024-12-31\n",
        1,
    )
    await say(harness, ADMIN, "/import")
    replies = await harness.send_document(ADMIN, "plan.yaml", text.encode(), "application/yaml")
    preview = replies[-1]
    shown = preview.plain_text or ""
    assert "Nhiệm vụ: mới 1, sửa 1, không đổi 94" in shown
    assert "2.1 — deadline: 20/05/2024 → 15/06/2024" in shown
    assert "Mới — Nhiệm vụ: 2.99" in shown
    assert await count(db, Task, Task.code == "2.99") == 0

    await restart(harness, config, db)
    await harness.press(ADMIN, preview.message_id, preview.button_data("Áp dụng"))
    assert await count(db, Task, Task.code == "2.99") == 1
    assert (await task_row(db, "2.1")).deadline_version == 2
    assert "Đã áp dụng" in (harness.api.sent(ADMIN)[-1].plain_text or "")
    assert await count(db, Draft) == 0


async def test_import_cancel_writes_nothing_and_big_files_are_refused(harness: Harness, db: Database) -> None:
    await say(harness, ADMIN, "/import")
    data = EXAMPLE_PLAN.read_bytes().replace(b"deadline: 2024-05-20", b"deadline: 2024-06-15", 1)
    preview = (await harness.send_document(ADMIN, "p.yaml", data, "application/yaml"))[-1]
    await harness.press(ADMIN, preview.message_id, preview.button_data("Hủy"))
    assert "Đã hủy" in (harness.api.sent(ADMIN)[-1].plain_text or "")
    assert (await task_row(db, "2.1")).deadline_version == 1
    await say(harness, ADMIN, "/import")
    big = b"#" * (harness.services.config.admin.import_max_kb * 1024 + 1)
    text = (await harness.send_document(ADMIN, "big.yaml", big, "application/yaml"))[-1]
    assert "quá lớn" in (text.plain_text or "")


async def test_a_workbook_with_a_formula_is_previewed_as_an_error(harness: Harness) -> None:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["group", "code", "title", "lead_unit", "deadline"])
    sheet.append(["2", "2.95", "Nhiệm vụ", "VP", "=TODAY()"])
    data = io.BytesIO()
    workbook.save(data)
    replies = await harness.send_document(ADMIN, "plan.xlsx", data.getvalue(), "application/vnd.ms-excel")
    assert replies == []  # no /import yet: the file is not ours
    await say(harness, ADMIN, "/import")
    text = (await harness.send_document(ADMIN, "plan.xlsx", data.getvalue()))[-1].plain_text or ""
    assert "Dòng 2: ô E2" in text and "công thức" in text and "không thể áp dụng" in text


def test_every_command_has_help_and_usage_in_both_languages() -> None:
    from bot.i18n import load_catalog

    for language in ("vi", "en"):
        catalog = load_catalog(language)
        for command, _role in COMMANDS:
            assert f"help.{command}" in catalog and f"admin.usage.{command}" in catalog


async def test_a_document_without_import_is_left_to_other_flows(harness: Harness) -> None:
    assert await harness.send_document(ADMIN, "evidence.pdf", b"%PDF-1.4") == []
    assert await harness.send_document(STRANGER, "evidence.pdf", b"%PDF-1.4") == []


async def test_export_sends_a_workbook_that_reimports_unchanged_and_a_csv(
    harness: Harness, db: Database
) -> None:
    task = await task_row(db, "2.1")
    await harness.services.reporting.submit(
        ReportInput(
            task_id=task.id,
            unit_id=task.lead_unit_id,
            reporter_user_id=None,
            status="in_progress",
            percent=40,
            results="=cmd() dự thảo xong",
        )
    )
    replies = await harness.send(ADMIN, "/export")
    assert [r.document["file_name"] for r in replies if r.document] == [
        "tiendo-tasks-2024-01-31.xlsx",
        "tiendo-reports-2024-01-31.csv",
    ]
    workbook_doc, csv_doc = (r.document for r in replies)
    assert workbook_doc is not None and csv_doc is not None
    workbook_bytes = harness.api.download(harness.api.file(workbook_doc["file_id"]).file_path)
    csv_bytes = harness.api.download(harness.api.file(csv_doc["file_id"]).file_path)
    assert workbook_bytes is not None and csv_bytes is not None
    sheet = load_workbook(io.BytesIO(workbook_bytes))["tasks"]
    header = [c.value for c in sheet[1]]
    row = next(r for r in sheet.iter_rows(min_row=2, values_only=True) if r[2] == "2.1")
    record = dict(zip(header, row, strict=False))
    assert record["progress_percent"] == 40 and record["deadline"] == "20/05/2024"
    assert record["progress_results"] == "'=cmd() dự thảo xong"  # never a formula
    assert "2.1,TDC,2024-W05,1,in_progress,40" in csv_bytes.decode("utf-8-sig")

    plan = await harness.services.programme.read_plan(workbook_bytes, "export.xlsx")
    assert plan.ok, plan.errors
    result = await harness.services.programme.preview(plan)
    assert result.touched == 0 and result.count("task", "unchanged") == 95


# --- deadline extensions -----------------------------------------------------------------------


async def test_extension_request_approved_moves_the_deadline_and_tells_everyone(
    harness: Harness, db: Database
) -> None:
    harness.api.user(ADMIN, "Quản trị")
    await join(harness, FOCAL, "TDC")
    await join(harness, 502, "PC", "Hà")
    assert "Chỉ cán bộ đầu mối" in await say(harness, 502, "/extend 2.1 30/06/2024 Chờ thẩm định")
    text = await say(harness, FOCAL, "/extend 2.1 30/06/2024 Chờ ý kiến thẩm định")
    assert "Đã gửi" in text
    assert (await task_row(db, "2.1")).deadline.isoformat() == "2024-05-20"  # type: ignore[union-attr]
    await harness.dispatch()
    ask = harness.api.sent(ADMIN)[-1]
    assert "Chờ ý kiến thẩm định" in (ask.plain_text or "")
    await harness.press(ADMIN, ask.message_id, ask.button_data("Duyệt"))
    assert "Đã duyệt" in (harness.api.sent(ADMIN)[-1].plain_text or "")
    assert (await task_row(db, "2.1")).deadline.isoformat() == "2024-06-30"  # type: ignore[union-attr]
    await harness.press(ADMIN, ask.message_id, "ex:no:1", check=False)
    assert "đã được xử lý" in (harness.api.sent(ADMIN)[-1].plain_text or "")
    await harness.dispatch()
    told = [m.plain_text or "" for m in harness.api.sent(FOCAL)]
    assert any("đã được duyệt" in t and "30/06/2024" in t for t in told)
    assert any("20/05/2024 → 30/06/2024" in t for t in told)
    history = await say(harness, ADMIN, "/history 2.1")
    assert "extension.request" in history and "extension.approve" in history
    assert f"tg:{FOCAL}" in history and f"tg:{ADMIN}" in history


async def test_extension_rejected_keeps_the_deadline(harness: Harness, db: Database) -> None:
    harness.api.user(ADMIN, "Quản trị")
    await join(harness, FOCAL, "TDC")
    await say(harness, FOCAL, "/extend 2.1 30/06/2024 Chờ ý kiến")
    await harness.dispatch()
    ask = harness.api.sent(ADMIN)[-1]
    assert "⛔" not in (ask.plain_text or "")
    await harness.press(ADMIN, ask.message_id, ask.button_data("Từ chối"))
    assert (await task_row(db, "2.1")).deadline.isoformat() == "2024-05-20"  # type: ignore[union-attr]
    await harness.dispatch()
    assert "không được duyệt" in (harness.api.sent(FOCAL)[-1].plain_text or "")
    assert "extension.reject" in await say(harness, ADMIN, "/history 2.1")


async def test_a_non_admin_cannot_decide_an_extension(harness: Harness, db: Database) -> None:
    await join(harness, FOCAL, "TDC")
    await say(harness, FOCAL, "/extend 2.1 30/06/2024 Chờ ý kiến")
    # A forged callback from someone who is not an admin, on a message in their own chat.
    (greeting,) = await harness.send(STRANGER, "/start")
    await harness.press(STRANGER, greeting.message_id, "ex:ok:1", check=False)
    assert await count(db, AuditEntry, AuditEntry.action == "extension.approve") == 0
    assert await count(db, AuditEntry, AuditEntry.action == "admin.refused") == 1
    assert (await task_row(db, "2.1")).deadline.isoformat() == "2024-05-20"  # type: ignore[union-attr]


# --- manager views -----------------------------------------------------------------------------


async def test_overdue_and_stats_follow_the_lead_units_reports(harness: Harness, db: Database) -> None:
    assert "không có nhiệm vụ quá hạn" in await say(harness, ADMIN, "/overdue")
    reporting = harness.services.reporting
    t21 = await task_row(db, "2.1")
    async with db.reader() as session:
        t_march = await session.scalar(select(Task).where(Task.deadline == date(2024, 3, 31)))
    assert t_march is not None
    # 2.1 done on 10/05 (on time); the March task is still open in June.
    await reporting.submit(
        ReportInput(t21.id, t21.lead_unit_id, None, "done", 100, "Xong"),
        at=datetime(2024, 5, 10, 3, tzinfo=UTC),
    )
    harness.clock.set(datetime(2024, 6, 3, 2, tzinfo=UTC))
    text = await say(harness, ADMIN, "/overdue")
    assert "1 nhiệm vụ quá hạn" in text and t_march.code in text and "quá 64 ngày" in text
    stats = await say(harness, ADMIN, "/stats")
    assert "Đã hoàn thành đúng hạn: 1" in stats
    assert "Chưa hoàn thành, quá hạn: 1" in stats
    assert "Tỷ lệ hoàn thành: 50,0% (1/2" in stats


async def test_stats_and_overdue_count_a_corrected_report_from_its_first_done(harness: Harness) -> None:
    codes = await corrected_tasks(harness, "TTRA")
    harness.clock.set(hanoi(7, 9))
    stats = await say(harness, ADMIN, "/stats")
    # "kept": done on the deadline day, corrected (still done) the day after: on time.
    assert "Đã hoàn thành đúng hạn: 1" in stats
    # "late": in progress, corrected to done the day after the deadline.
    assert "Đã hoàn thành quá hạn: 1" in stats
    # "reopened": done corrected to in progress; no other task was due by 7/2.
    assert "Chưa hoàn thành, quá hạn: 1" in stats
    assert "Tỷ lệ hoàn thành: 66,7% (2/3" in stats
    overdue = await say(harness, ADMIN, "/overdue")
    assert "1 nhiệm vụ quá hạn" in overdue and codes["reopened"] in overdue
    assert codes["kept"] not in overdue and codes["late"] not in overdue
