"""Several programmes: each plan file goes into the programme it names, codes are matched
inside it, and next year's programme (same task codes) leaves last year's untouched."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select

from bot.services.programme import ProgrammeService
from bot.services.reporting import ReportingService, ReportInput
from storage.db import Database
from storage.models import AuditEntry, Programme, ProgressReport, Task
from tests.conftest import EXAMPLE_PLAN, ROOT

NEXT_PLAN = ROOT / "examples" / "programme-12-QD-BKHCN-2025.yaml"


async def _import(db: Database, data: bytes, name: str, programme: str | None = None) -> None:
    service = ProgrammeService(db)
    plan = await service.read_plan(data, name, programme)
    assert plan.ok, plan.errors
    result = await service.apply(plan)
    assert result.applied


async def _tasks(db: Database, code: str) -> list[tuple[str, str, object, str]]:
    async with db.reader() as session:
        rows = await session.execute(
            select(Task.code, Task.title, Task.deadline, Task.description)
            .join(Programme, Programme.id == Task.programme_id)
            .where(Programme.code == code)
            .order_by(Task.position)
        )
        return [tuple(r) for r in rows]


async def test_next_years_programme_with_the_same_codes_leaves_last_years_complete(
    db: Database, clock
) -> None:
    await _import(db, EXAMPLE_PLAN.read_bytes(), EXAMPLE_PLAN.name)
    before = await _tasks(db, "QD-59-BKHCN-2024")
    assert len(before) == 95
    # A report on last year's 1.1, which must stay under last year's wording.
    async with db.reader() as session:
        task_2024 = await session.scalar(
            select(Task).join(Programme).where(Programme.code == "QD-59-BKHCN-2024", Task.code == "1.1")
        )
    reporting = ReportingService(db, clock, _weekly(clock))
    await reporting.submit(
        ReportInput(task_2024.id, task_2024.lead_unit_id, None, "done", 100, "Đã phân bổ"),
        at=datetime(2024, 1, 30, 3, tzinfo=UTC),
    )

    await _import(db, NEXT_PLAN.read_bytes(), NEXT_PLAN.name)

    assert await _tasks(db, "QD-59-BKHCN-2024") == before
    after = await _tasks(db, "QD-12-BKHCN-2025")
    assert len(after) == 95
    assert [t[0] for t in after] == [t[0] for t in before]
    assert after[0][2].year == before[0][2].year + 1
    async with db.reader() as session:
        report = await session.scalar(select(ProgressReport))
        assert report.task_id == task_2024.id
        assert await session.scalar(select(func.count()).select_from(Task)) == 190
        programmes = list(await session.scalars(select(Programme).order_by(Programme.id)))
        assert [(p.code, p.short_code, p.decision) for p in programmes] == [
            ("QD-59-BKHCN-2024", "2024", "59/QĐ-BKHCN"),
            ("QD-12-BKHCN-2025", "2025", "12/QĐ-BKHCN"),
        ]
        assert programmes[0].decision_date.isoformat() == "2024-01-19"
        assert programmes[0].issuer == "Bộ Khoa học và Công nghệ"

    # Re-importing the 2025 file changes nothing in either programme.
    service = ProgrammeService(db)
    plan = await service.read_plan(NEXT_PLAN.read_bytes(), NEXT_PLAN.name)
    result = await service.preview(plan)
    assert result.count("task", "unchanged") == 95 and result.touched == 0


def _weekly(clock):
    from bot.config import load_config
    from bot.services.periods import period_rule

    return period_rule(load_config(ROOT / "config.toml", env={}))


async def test_a_file_without_its_programme_is_refused_and_nothing_is_written(db: Database) -> None:
    service = ProgrammeService(db)
    no_block = b"units: [{code: VP, name: VP}]\ngroups: [{code: '1', title: G}]\n"
    no_block += b"tasks: [{code: '1.1', group: '1', title: T, lead: VP}]\n"
    plan = await service.read_plan(no_block, "p.yaml")
    assert [e.key for e in plan.errors] == ["plan.no_programme"]
    plan = await service.read_plan(no_block, "p.yaml", "NOPE")
    assert [e.key for e in plan.errors] == ["plan.unknown_programme"]
    csv = b"group,group_title,code,title,lead_unit\n1,G,1.1,T,VP\n"
    plan = await service.read_plan(csv, "p.csv")
    assert [e.key for e in plan.errors] == ["plan.no_programme", "plan.unknown_unit"]
    plan = await service.read_plan(EXAMPLE_PLAN.read_bytes(), EXAMPLE_PLAN.name, "OTHER")
    assert [e.key for e in plan.errors] == ["plan.programme_mismatch"]
    assert (await service.apply(plan)).applied is False
    async with db.reader() as session:
        assert await session.scalar(select(func.count()).select_from(Task)) == 0
        assert await session.scalar(select(func.count()).select_from(Programme)) == 0


async def test_a_csv_file_goes_into_the_programme_named_on_the_command_line(db: Database) -> None:
    await _import(db, EXAMPLE_PLAN.read_bytes(), EXAMPLE_PLAN.name)
    await _import(db, NEXT_PLAN.read_bytes(), NEXT_PLAN.name)
    csv = "group,code,title,lead_unit,deadline\n1,1.1,Tên mới năm 2025,KHTC,31/12/2025\n".encode()
    await _import(db, csv, "sua.csv", "QD-12-BKHCN-2025")
    assert (await _tasks(db, "QD-12-BKHCN-2025"))[0][1] == "Tên mới năm 2025"
    assert (await _tasks(db, "QD-59-BKHCN-2024"))[0][1].startswith("Phân bổ")
    async with db.reader() as session:
        entries = list(await session.scalars(select(AuditEntry).where(AuditEntry.action == "plan.import")))
    assert [e.entity_id for e in entries] == ["QD-59-BKHCN-2024", "QD-12-BKHCN-2025", "QD-12-BKHCN-2025"]


async def test_an_xlsx_file_names_its_programme_on_a_sheet(db: Database) -> None:
    from io import BytesIO

    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "programme"
    sheet.append(["code", "title", "decision", "issued", "issuer"])
    sheet.append(["NQ02-2026", "Cải thiện môi trường kinh doanh", "7/QĐ-BKHCN", "10/01/2026", "Bộ KH&CN"])
    units = workbook.create_sheet("units")
    units.append(["code", "name"])
    units.append(["VP", "Văn phòng Bộ"])
    tasks = workbook.create_sheet("tasks")
    tasks.append(["group", "group_title", "code", "title", "lead_unit", "deadline"])
    tasks.append(["1", "Nhóm một", "1.1", "Rà soát thủ tục", "VP", "30/06/2026"])
    out = BytesIO()
    workbook.save(out)
    await _import(db, out.getvalue(), "nq02.xlsx")
    async with db.reader() as session:
        programme = await session.scalar(select(Programme))
    assert (programme.code, programme.short_code, programme.decision) == ("NQ02-2026", "2026", "7/QĐ-BKHCN")
    assert programme.decision_date.isoformat() == "2026-01-10"
    assert len(await _tasks(db, "NQ02-2026")) == 1
