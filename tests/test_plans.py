"""Plan files: the example programme, every format, and errors that name their row."""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest
from openpyxl import Workbook

from bot.services.plans import TASK_COLUMNS, parse_deadline, parse_plan
from tests.conftest import EXAMPLE_PLAN


def test_example_programme_has_seven_groups_and_the_named_deadlines_and_targets() -> None:
    plan = parse_plan(EXAMPLE_PLAN.read_bytes(), EXAMPLE_PLAN.name)
    assert plan.errors == []
    assert [g.code for g in plan.groups] == ["1", "2", "3", "4", "5", "6", "7"]
    assert len(plan.tasks) >= 30
    by_deadline = {t.deadline for t in plan.tasks}
    assert date(2024, 5, 20) in by_deadline  # the amended Law, 7th session, May 2024
    assert date(2024, 3, 31) in by_deadline  # job positions before 31/3/2024
    assert {85.0, 90.0} <= {t.target_value for t in plan.tasks if t.target_value}
    assert any(t.deadline is None for t in plan.tasks)  # ongoing duties
    assert all(t.code.startswith(t.group + ".") for t in plan.tasks)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("31/12/2024", date(2024, 12, 31)),
        ("2024-12-31", date(2024, 12, 31)),
        ("1/3/2024", date(2024, 3, 1)),
        ("", None),
        ("ongoing", None),
        ("Thường xuyên", None),
        (date(2024, 5, 20), date(2024, 5, 20)),
    ],
)
def test_deadlines_in_both_spellings(text: object, expected: date | None) -> None:
    assert parse_deadline(text) == expected


@pytest.mark.parametrize("text", ["31/02/2024", "2024-13-01", "next week", "32/1/2024"])
def test_impossible_deadlines_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_deadline(text)


def csv_plan(rows: list[dict[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(TASK_COLUMNS))
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k, "") for k in TASK_COLUMNS})
    return out.getvalue().encode("utf-8")


def task_row(i: int, **over: str) -> dict[str, str]:
    row = {
        "group": "1",
        "group_title": "Nhóm một",
        "code": f"1.{i}",
        "title": f"Nhiệm vụ {i}",
        "lead_unit": "VP",
        "deadline": "31/12/2024",
    }
    row.update(over)
    return row


def test_csv_with_a_bad_date_names_its_row() -> None:
    rows = [task_row(i) for i in range(1, 16)]
    rows[10]["deadline"] = "31/02/2024"  # the 11th data row is spreadsheet row 12
    plan = parse_plan(csv_plan(rows), "plan.csv", known_units={"VP"})
    assert [(e.where, e.key) for e in plan.errors] == [(("row", 12), "plan.bad_date")]


def test_csv_collects_every_error_not_just_the_first() -> None:
    rows = [task_row(1, lead_unit="NOPE"), task_row(2, code=""), task_row(1, title="dup")]
    plan = parse_plan(csv_plan(rows), "plan.csv", known_units={"VP"})
    assert {(e.where[1], e.key) for e in plan.errors} == {
        (2, "plan.unknown_unit"),
        (3, "plan.bad_code"),
        (4, "plan.duplicate"),
    }


def test_csv_accepts_semicolons_and_vietnamese_headings() -> None:
    data = (
        "Nhóm;Tên nhóm;Mã;Nhiệm vụ;Đơn vị chủ trì;Đơn vị phối hợp;Thời hạn\n"
        "2;Hoàn thiện thể chế;2.1;Luật sửa đổi;PC;VP, KHTC;20/05/2024\n"
    ).encode("utf-8-sig")
    plan = parse_plan(data, "ke-hoach.csv", known_units={"PC", "VP", "KHTC"})
    assert plan.errors == []
    (task,) = plan.tasks
    assert (task.code, task.lead, task.coordinating, task.deadline) == (
        "2.1",
        "PC",
        ("VP", "KHTC"),
        date(2024, 5, 20),
    )


def test_vietnamese_text_is_normalised_to_nfc() -> None:
    decomposed = "Tie\u0302\u0301n đo\u0323\u0302"  # "Tiến độ" typed with combining marks
    plan = parse_plan(csv_plan([task_row(1, title=decomposed)]), "p.csv", known_units={"VP"})
    assert plan.tasks[0].title == "Tiến độ"


def xlsx(sheets: dict[str, list[list[object]]]) -> bytes:
    workbook = Workbook()
    workbook.remove(workbook.active)
    for name, rows in sheets.items():
        sheet = workbook.create_sheet(name)
        for row in rows:
            sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def test_xlsx_with_units_groups_and_tasks_sheets() -> None:
    data = xlsx(
        {
            "units": [["code", "name", "parent"], ["BO", "Bộ", None], ["VP", "Văn phòng", "BO"]],
            "groups": [["code", "title"], ["1", "Nhóm 1"]],
            "tasks": [
                ["group", "code", "title", "lead_unit", "deadline", "target_value"],
                ["1", "1.1", "Việc <một> & hai", "VP", date(2024, 3, 31), 85],
                ["1", "1.2", "Việc ba", "VP", "thường xuyên", None],
            ],
        }
    )
    plan = parse_plan(data, "plan.xlsx")
    assert plan.errors == []
    assert [t.title for t in plan.tasks] == ["Việc <một> & hai", "Việc ba"]
    assert plan.tasks[0].deadline == date(2024, 3, 31)
    assert plan.tasks[0].target_value == 85.0
    assert plan.tasks[1].deadline is None


def test_xlsx_with_formulas_or_merged_cells_is_refused() -> None:
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "tasks"
    sheet.append(["group", "group_title", "code", "title", "lead_unit", "deadline"])
    sheet.append(["1", "Nhóm", "1.1", '=CONCAT("a","b")', "VP", "31/12/2024"])
    sheet.append(["1", "Nhóm", "1.2", "Việc", "VP", "31/12/2024"])
    sheet.merge_cells("A3:B3")
    out = io.BytesIO()
    workbook.save(out)
    plan = parse_plan(out.getvalue(), "plan.xlsx", known_units={"VP"})
    assert {e.key for e in plan.errors} >= {"plan.formula", "plan.merged_cells"}


@pytest.mark.parametrize(
    ("data", "name", "key"),
    [
        (b"\xff\xfe\x00bad", "plan.csv", "plan.not_utf8"),
        (b"tasks: [\n", "plan.yaml", "plan.bad_yaml"),
        (b"not a zip", "plan.xlsx", "plan.bad_xlsx"),
        (b"x", "plan.pdf", "plan.bad_format"),
        (b"{}", "plan.yaml", "plan.no_lists"),
    ],
)
def test_unreadable_files_get_a_reason(data: bytes, name: str, key: str) -> None:
    assert [e.key for e in parse_plan(data, name).errors] == [key]


def test_yaml_keeps_codes_like_1_10_as_written() -> None:
    data = (
        b"units: [{code: VP, name: VP}]\ngroups: [{code: 1, title: G}]\n"
        b"tasks:\n  - {code: 1.10, group: 1, title: T, lead: VP}\n"
        b"  - {code: 1.1, group: 1, title: U, lead: VP}\n"
    )
    plan = parse_plan(data, "p.yaml")
    assert plan.errors == []
    assert [t.code for t in plan.tasks] == ["1.10", "1.1"]


def test_yaml_errors_name_their_line() -> None:
    data = (
        b"units: [{code: VP, name: VP}]\ngroups: [{code: '1', title: G}]\ntasks:\n"
        b"  - {code: '1.1', group: '1', title: T, lead: VP}\n"
        b"  - {code: '1.2', group: '1', title: T, lead: VP, deadline: 30/02/2024}\n"
    )
    plan = parse_plan(data, "p.yaml")
    assert [(e.where, e.key) for e in plan.errors] == [(("line", 5), "plan.bad_date")]
