"""The report's spreadsheet: every task on one sheet, the totals by group and unit on another.

Safe: every text is written as a string cell (XlsxWriter's write_string never makes a formula),
and a text that a spreadsheet would run when edited (leading = + - @, tab, CR) carries Excel's
quote prefix, the native form of the apostrophe /export puts in front. Readable: a title row
with the programme and the period, column widths, wrapped text, a filter, the header frozen,
dates as dd/mm/yyyy, rates as 0.0 %, and printing set to A4 landscape, one page wide, the
header repeated. XlsxWriter in constant-memory mode writes ten thousand rows in about a second.
"""

from __future__ import annotations

import io
import re
from datetime import date
from typing import TYPE_CHECKING, Any

import xlsxwriter

from bot.services.status import STATUS_ORDER

if TYPE_CHECKING:
    from bot.services.report_data import ReportData
    from bot.services.report_render import ReportRenderer

# Control characters that Excel refuses; a pasted report may hold them.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
RISKY = ("=", "+", "-", "@", "\t", "\r")
# (column key, width in characters, kind): text, wrap (wrapped text), date, number, percent.
TASK_COLUMNS = (
    ("code", 8, "text"),
    ("title", 48, "wrap"),
    ("group", 7, "text"),
    ("lead", 10, "text"),
    ("coordinating", 14, "wrap"),
    ("deadline", 11, "date"),
    ("status", 16, "wrap"),
    ("report_status", 14, "wrap"),
    ("completed_on", 11, "date"),
    ("percent", 8, "number"),
    ("reported", 9, "text"),
    ("results", 40, "wrap"),
    ("difficulties", 30, "wrap"),
    ("proposals", 30, "wrap"),
    ("output", 26, "wrap"),
    ("target", 18, "wrap"),
    ("value", 10, "number"),
)


def is_risky(text: str) -> bool:
    """Whether a spreadsheet would run the text (as a formula or a DDE command) when edited."""
    return text.startswith(RISKY)


class _Writer:
    def __init__(self, book: Any) -> None:
        self.book = book
        base = {"font_name": "Times New Roman", "font_size": 11, "valign": "top"}
        self.formats = {
            "text": book.add_format(base),
            "wrap": book.add_format({**base, "text_wrap": True}),
            "date": book.add_format({**base, "num_format": "dd/mm/yyyy", "align": "left"}),
            "number": book.add_format({**base, "num_format": "#,##0.##"}),
            "percent": book.add_format({**base, "num_format": "0.0%"}),
            "head": book.add_format(
                {**base, "bold": True, "text_wrap": True, "bg_color": "#E8E8E8", "border": 1}
            ),
            "title": book.add_format({**base, "bold": True, "font_size": 13}),
            "bold": book.add_format({**base, "bold": True}),
        }
        self.quoted = {
            kind: book.add_format({**base, "text_wrap": kind == "wrap", "quote_prefix": True})
            for kind in ("text", "wrap")
        }

    def cell(self, sheet: Any, row: int, col: int, value: Any, kind: str) -> None:
        if value is None or value == "":
            return
        if isinstance(value, str):
            text = _CONTROL.sub("", value)
            text_kind = kind if kind in ("text", "wrap") else "text"
            fmt = self.quoted[text_kind] if is_risky(text) else self.formats[text_kind]
            sheet.write_string(row, col, text, fmt)
        elif isinstance(value, date):
            sheet.write_datetime(row, col, value, self.formats["date"])
        else:
            sheet.write_number(
                row, col, value, self.formats[kind if kind in ("number", "percent") else "number"]
            )


def _print_setup(sheet: Any, header_row: int, columns: int) -> None:
    sheet.set_landscape()
    sheet.set_paper(9)  # A4
    sheet.fit_to_pages(1, 0)  # one page wide, as many tall as needed
    sheet.repeat_rows(header_row)
    sheet.set_margins(left=0.5, right=0.4, top=0.6, bottom=0.6)
    sheet.set_footer("&C&P / &N")


def _task_values(task: Any, renderer: ReportRenderer, yes: str, no: str) -> list[Any]:
    target = ""
    if task.target_value is not None:
        target = f"{task.target_label or ''} {renderer.number(task.target_value)}{task.target_unit or ''}"
    return [
        task.code,
        task.title,
        task.group_code,
        task.lead.code,
        ", ".join(task.coordinating),
        task.deadline or renderer.t("report.ongoing"),
        renderer.status_label(task.status),
        renderer.status_label(task.report_status),
        task.completed_on,
        task.percent,
        yes if task.reported_this_period else no,
        task.results,
        task.difficulties,
        task.proposals,
        task.expected_output,
        target.strip(),
        task.value,
    ]


def _tasks_sheet(writer: _Writer, data: ReportData, renderer: ReportRenderer, title: str) -> None:
    sheet = writer.book.add_worksheet(renderer.t("sheet.tasks")[:31])
    for col, (_key, width, kind) in enumerate(TASK_COLUMNS):
        sheet.set_column(col, col, width, writer.formats[kind])
    sheet.write_string(0, 0, title, writer.formats["title"])
    for col, (key, _width, _kind) in enumerate(TASK_COLUMNS):
        sheet.write_string(2, col, renderer.t(f"col.{key}"), writer.formats["head"])
    sheet.freeze_panes(3, 2)
    yes, no = renderer.t("col.yes"), renderer.t("col.no")
    kinds = [kind for _key, _width, kind in TASK_COLUMNS]
    row = 3
    for task in data.tasks:
        for col, value in enumerate(_task_values(task, renderer, yes, no)):
            writer.cell(sheet, row, col, value, kinds[col])
        row += 1
    sheet.autofilter(2, 0, max(row - 1, 2), len(TASK_COLUMNS) - 1)
    _print_setup(sheet, 2, len(TASK_COLUMNS))


def _totals_block(
    writer: _Writer, sheet: Any, row: int, heading: str, first: str, rows: list[Any], renderer: Any
) -> int:
    head = [renderer.status_label(s) for s in STATUS_ORDER] + [
        renderer.t("col.total"),
        renderer.t("col.rate"),
    ]
    sheet.write_string(row, 0, heading, writer.formats["bold"])
    for col, text in enumerate([first, *head]):
        sheet.write_string(row + 1, col, text, writer.formats["head"])
    row += 2
    for name, counts, bold in rows:
        writer.cell(sheet, row, 0, name, "wrap")
        for col, status in enumerate(STATUS_ORDER, start=1):
            sheet.write_number(row, col, counts.get(status), writer.formats["bold" if bold else "number"])
        sheet.write_number(row, 5, counts.total, writer.formats["bold" if bold else "number"])
        if counts.rate is not None:
            sheet.write_number(row, 6, counts.rate, writer.formats["percent"])
        row += 1
    return row + 1


def _totals_sheet(writer: _Writer, data: ReportData, renderer: ReportRenderer, title: str) -> None:
    sheet = writer.book.add_worksheet(renderer.t("sheet.totals")[:31])
    sheet.set_column(0, 0, 50, writer.formats["wrap"])
    sheet.set_column(1, 5, 13, writer.formats["number"])
    sheet.set_column(6, 6, 13, writer.formats["percent"])
    sheet.write_string(0, 0, title, writer.formats["title"])
    total = renderer.t("col.total")
    groups = [(f"{g.code}. {g.title}", g.counts, False) for g in data.groups] + [(total, data.totals, True)]
    row = _totals_block(
        writer, sheet, 2, renderer.t("sheet.by_group"), renderer.t("col.group"), groups, renderer
    )
    units = [(f"{u.unit.code} — {u.unit.name}", u.counts, False) for u in data.unit_totals]
    _totals_block(writer, sheet, row, renderer.t("sheet.by_unit"), renderer.t("col.unit"), units, renderer)
    _print_setup(sheet, 3, 7)


def write_xlsx(data: ReportData, renderer: ReportRenderer) -> bytes:
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(
        buffer, {"in_memory": True, "constant_memory": True, "strings_to_formulas": False}
    )
    title = renderer.t(
        "report.sheet_title", programme=renderer.programme_title(data), period=renderer.period_name(data)
    )
    if data.scope is not None:
        title = f"{title} — {data.scope.name}"
    writer = _Writer(book)
    _tasks_sheet(writer, data, renderer, title)
    _totals_sheet(writer, data, renderer, title)
    book.set_properties({"title": title, "author": renderer.body_name()})
    book.close()
    return buffer.getvalue()
