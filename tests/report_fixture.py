"""A small programme with hand-computed statuses for period 2024-W05 (cut-off Thursday
1/2/2024 17:00 Hà Nội), shared by the aggregation and rendering tests.

| task | lead | deadline   | lead unit's reports (local time)              | class on 1/2 |
|------|------|------------|-----------------------------------------------|--------------|
| T1   | A    | 30/01      | done 30/01 (the deadline day)                 | on time      |
| T2   | A    | 30/01      | done 31/01 (a day after)                      | late         |
| T3   | B    | 01/02      | in progress 29/01 (due today, not completed)  | within       |
| T4   | B    | 31/01      | in progress 29/01 (due yesterday); C says done| overdue      |
| T5   | C    | ongoing    | stuck 30/01, with proposals                   | within       |
| T6   | C    | 29/01      | done 30/01, corrected to in progress 31/01    | overdue      |
| T7   | D    | ongoing    | none (unit D reports nothing); new 29/01      | within       |
| T8   | E    | 20/01      | done 18/01 (before the period)                | on time      |
| T9   | E    | 31/12      | closed 30/01                                  | (not counted)|
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import update

from bot.clock import FixedClock
from bot.config import Config
from bot.services.periods import period_rule
from bot.services.plans import parse_plan
from bot.services.programme import ProgrammeService
from bot.services.reporting import ReportingService, ReportInput
from storage.db import Database
from storage.models import AuditEntry, Task
from storage.repositories.tasks import TaskRepository

HANOI = ZoneInfo("Asia/Ho_Chi_Minh")
SPECIAL = "Kiểm tra <b>thẻ</b> & ký tự đặc biệt: Đường hầm ngầm"

PLAN = f"""
programme: {{code: TEST-1, title: "Chương trình thử", decision: "1/QĐ-TEST", issued: 2024-01-02}}
units:
  - {{code: A, name: "Vụ Kế hoạch & Tài chính"}}
  - {{code: B, name: "Vụ Pháp chế <PC>"}}
  - {{code: C, name: "Cục Đổi mới sáng tạo"}}
  - {{code: D, name: "Vụ Đánh giá"}}
  - {{code: E, name: "Văn phòng Bộ"}}
groups:
  - {{code: "1", title: "Nhóm một: tài chính & ngân sách"}}
  - {{code: "2", title: "Nhóm hai <pháp luật>"}}
tasks:
  - {{code: T1, group: "1", title: "Phân bổ vốn", lead: A, deadline: 2024-01-30}}
  - {{code: T2, group: "1", title: "Giải ngân vốn", lead: A, deadline: 2024-01-30}}
  - {{code: T3, group: "2", title: "{SPECIAL}", lead: B, deadline: 2024-02-01}}
  - {{code: T4, group: "2", title: "Sửa đổi Luật", lead: B, coordinating: [C], deadline: 2024-01-31}}
  - {{code: T5, group: "2", title: "Thí điểm cơ chế", lead: C, deadline: ongoing}}
  - {{code: T6, group: "1", title: "Kiểm tra ngân sách", lead: C, deadline: 2024-01-29,
      target: {{value: 85, unit: "%", label: "Tỷ lệ giải quyết"}}}}
  - {{code: T7, group: "2", title: "Đánh giá định kỳ", lead: D, deadline: ongoing}}
  - {{code: T8, group: "1", title: "Báo cáo năm", lead: E, deadline: 2024-01-20}}
  - {{code: T9, group: "1", title: "Nhiệm vụ rút", lead: E, deadline: 2024-12-31}}
"""


def local(day: int, hour: int = 10, month: int = 1) -> datetime:
    return datetime(2024, month, day, hour, tzinfo=HANOI).astimezone(UTC)


async def load_fixture(db: Database, config: Config) -> dict[str, int]:
    """Load the programme and its reports; returns task ids by code."""
    programme = ProgrammeService(db)
    plan = parse_plan(PLAN.encode(), "plan.yaml")  # in this process: a seed for many tests
    assert plan.ok, plan.errors
    await programme.apply(plan)
    async with db.reader() as session:
        tasks = await TaskRepository(session).by_codes([f"T{i}" for i in range(1, 10)])
    ids = {code: task.id for code, task in tasks.items()}
    lead = {code: task.lead_unit_id for code, task in tasks.items()}
    coord_c = tasks["T5"].lead_unit_id
    clock = FixedClock(local(29))
    service = ReportingService(db, clock, period_rule(config))

    async def report(
        code: str, status: str, at: datetime, *, unit: int | None = None, percent: int = 50, **extra: object
    ) -> None:
        await service.submit(
            ReportInput(
                task_id=ids[code],
                unit_id=unit or lead[code],
                reporter_user_id=None,
                status=status,
                percent=percent,
                results=extra.pop("results", f"Kết quả {code}"),
                **extra,  # type: ignore[arg-type]
            ),
            at=at,
        )

    await report("T8", "done", local(18))
    await report("T1", "done", local(30))
    await report("T2", "in_progress", local(29))
    await report("T2", "done", local(31))
    await report("T3", "in_progress", local(29), results=SPECIAL)
    await report("T4", "in_progress", local(29), percent=40)
    await report("T4", "done", local(30), unit=coord_c)  # a coordinating unit: does not count
    await report(
        "T5",
        "stuck",
        local(30),
        difficulties="Thiếu kinh phí & nhân lực",
        proposals="Đề nghị bổ sung <kinh phí> năm 2024",
    )
    await report("T6", "done", local(30), indicator_value=70.0)
    await report("T6", "in_progress", local(31), percent=90, indicator_value=80.0)
    async with db.transaction() as session:
        await session.execute(update(Task).where(Task.code == "T7").values(created_at=local(29)))
        await session.execute(
            update(Task).where(Task.code == "T9").values(closed_at=local(30), close_reason="Gộp vào T1")
        )
        session.add(
            AuditEntry(
                at=local(30),
                action="task.import.changed",
                entity="task",
                entity_id="T3",
                before={"deadline": "2024-02-10"},
                after={"deadline": "2024-02-01"},
            )
        )
    return ids
