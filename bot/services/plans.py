"""Plan files: units, task groups and tasks from YAML, CSV or XLSX; validation, diff, import.

One column set serves every format (README "Plan file format"):

* tasks: group, group_title, code, title, description, legal_source, lead_unit,
  coordinating_units (codes separated by ';' or ','), deadline (31/12/2024, 2024-12-31, or empty
  / "ongoing" / "thường xuyên"), expected_output, target_value, target_unit, target_label
* units: code, name, parent
* groups: code, title

YAML has the lists `units`, `groups`, `tasks`; XLSX has sheets with those names (a workbook of
one sheet is read as tasks); a CSV file holds tasks, whose units must already exist or be in
the same import. A file with any error is refused whole: parse_plan collects every error with
its row or line, and import_plan writes nothing unless the plan is clean.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
import zipfile
from collections.abc import Callable, Sequence, Set
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

UNIT_CODE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,31}$")
TASK_CODE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z_.-]{0,31}$")
ONGOING_WORDS = {"", "ongoing", "thường xuyên", "thuong xuyen", "-", "tx"}
MAX_TITLE = 1000
MAX_TEXT = 20_000
MAX_FILE_BYTES = 10 * 1024 * 1024

TASK_COLUMNS = (
    "group",
    "group_title",
    "code",
    "title",
    "description",
    "legal_source",
    "lead_unit",
    "coordinating_units",
    "deadline",
    "expected_output",
    "target_value",
    "target_unit",
    "target_label",
)
# Written by /export after the plan columns; read back and ignored, so an export re-imports.
PROGRESS_COLUMNS = (
    "status_class",
    "progress_status",
    "progress_percent",
    "progress_period",
    "progress_unit",
    "progress_reported_on",
    "progress_results",
    "closed_reason",
)
UNIT_COLUMNS = ("code", "name", "parent")
# The programme the file belongs to (YAML block `programme:`, XLSX sheet `programme`).
PROGRAMME_COLUMNS = (
    "code",
    "short_code",
    "title",
    "decision",
    "issued",
    "issuer",
    "starts",
    "ends",
    "period",
    "cutoff",
)
PROGRAMME_CODE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z_.-]{0,47}$")
SHORT_CODE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z_.-]{0,15}$")
PERIODS = ("weekly", "monthly", "quarterly")
GROUP_COLUMNS = ("code", "title")
# Vietnamese headings accepted for the same columns (what an office's own sheet tends to say).
HEADER_ALIASES = {
    "nhóm": "group",
    "tên nhóm": "group_title",
    "mã": "code",
    "mã nhiệm vụ": "code",
    "nhiệm vụ": "title",
    "tên nhiệm vụ": "title",
    "nội dung": "description",
    "mô tả": "description",
    "căn cứ": "legal_source",
    "đơn vị chủ trì": "lead_unit",
    "chủ trì": "lead_unit",
    "đơn vị phối hợp": "coordinating_units",
    "phối hợp": "coordinating_units",
    "thời hạn": "deadline",
    "hạn": "deadline",
    "sản phẩm": "expected_output",
    "chỉ tiêu": "target_value",
    "đơn vị tính": "target_unit",
    "tên chỉ tiêu": "target_label",
    "tên": "name",
    "tên đơn vị": "name",
    "đơn vị cấp trên": "parent",
    "tiêu đề": "title",
}


@dataclass(frozen=True)
class PlanError:
    """One problem in a plan file. `where` is ('row', 12), ('line', 40) or ('file', 0)."""

    where: tuple[str, int]
    key: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class UnitRow:
    code: str
    name: str
    parent: str | None
    where: tuple[str, int]


@dataclass(frozen=True)
class GroupRow:
    code: str
    title: str
    position: int
    where: tuple[str, int]


@dataclass(frozen=True)
class TaskRow:
    code: str
    group: str
    title: str
    description: str
    legal_source: str
    lead: str
    coordinating: tuple[str, ...]
    deadline: date | None
    expected_output: str
    target_value: float | None
    target_unit: str | None
    target_label: str | None
    position: int
    where: tuple[str, int]


@dataclass(frozen=True)
class ProgrammeRow:
    """The file's programme. Only `code` is set when the file names an existing programme
    without describing it (CSV with --programme, or a file without the block)."""

    code: str
    where: tuple[str, int] = ("file", 0)
    short_code: str | None = None
    title: str | None = None
    decision: str | None = None
    decision_date: date | None = None
    issuer: str | None = None
    starts_on: date | None = None
    ends_on: date | None = None
    period: str | None = None
    cutoff: str | None = None

    @property
    def described(self) -> bool:
        return self.title is not None


@dataclass
class Plan:
    programme: ProgrammeRow | None = None
    units: list[UnitRow] = field(default_factory=list)
    groups: list[GroupRow] = field(default_factory=list)
    tasks: list[TaskRow] = field(default_factory=list)
    errors: list[PlanError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def nfc(value: Any) -> str:
    """Text as NFC (Vietnamese typed on different keyboards differs otherwise), trimmed."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return unicodedata.normalize("NFC", str(value)).strip()


def parse_deadline(value: Any) -> date | None:
    """A deadline from a cell: a date, '31/12/2024', '2024-12-31'; empty or 'ongoing' -> None.

    Raises ValueError for anything else, including impossible dates like 31/02/2024.
    """
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = nfc(value).lower()
    if text in ONGOING_WORDS:
        return None
    match = re.fullmatch(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})", text)
    if match:
        day, month, year = (int(g) for g in match.groups())
        return date(year, month, day)
    match = re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})", text)
    if match:
        year, month, day = (int(g) for g in match.groups())
        return date(year, month, day)
    raise ValueError(text)


def _split_codes(value: Any) -> list[str]:
    if isinstance(value, list | tuple):
        return [nfc(v) for v in value if nfc(v)]
    return [part for part in (nfc(p) for p in re.split(r"[;,\n]", nfc(value))) if part]


def _parse_number(value: Any) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int | float):
        return float(value)
    text = nfc(value).replace(" ", "").rstrip("%")
    # Vietnamese writes 85,5 for 85.5.
    if re.fullmatch(r"-?\d+,\d+", text):
        text = text.replace(",", ".")
    return float(text)


# --- limits: every plan file is bounded before it is parsed -----------------------------------


@dataclass(frozen=True)
class PlanLimits:
    """How much work one plan file may cause ([import] in config.toml).

    The sizes are checked before parsing (an XLSX's zip directory and sheet dimensions); the
    row cap also while reading; memory_mb and seconds bound the worker process that parses.
    """

    max_rows: int = 10_000
    max_unpacked_mb: int = 40
    max_ratio: int = 200
    memory_mb: int = 384
    seconds: int = 30


DEFAULT_LIMITS = PlanLimits()
MAX_COLUMNS = 64  # a plan sheet has 21 columns; more is not a plan
MAX_YAML_ALIASES = 100
MAX_YAML_NODES = 200_000  # nodes after expanding every alias (a billion laughs expands to 10^9)


class PlanFileError(Exception):
    """A file-level problem that stops reading: carried as one PlanError."""

    def __init__(self, key: str, where: tuple[str, int] = ("file", 0), **params: Any) -> None:
        super().__init__(key)
        self.error = PlanError(where, key, params)


Records = dict[str, list[tuple[tuple[str, int], dict[str, Any]]]]
Reader = Callable[[bytes, PlanLimits], tuple[Records, list[PlanError]]]
KINDS = ("units", "groups", "tasks")


def _empty_records() -> Records:
    return {kind: [] for kind in KINDS}


# --- YAML --------------------------------------------------------------------------------------


# YAML spells some columns shorter.
_YAML_SHORT = (("lead", "lead_unit"), ("coordinating", "coordinating_units"), ("output", "expected_output"))


def _yaml_task(item: dict[str, Any]) -> None:
    """Flatten a task's `target:` mapping and its short column names into the common columns."""
    target = item.pop("target", None)
    if isinstance(target, dict):
        item.setdefault("target_value", target.get("value"))
        item.setdefault("target_unit", target.get("unit"))
        item.setdefault("target_label", target.get("label"))
    for short, long in _YAML_SHORT:
        if short in item:
            item.setdefault(long, item.pop(short))


def _yaml_records(doc: dict[str, Any], kind: str, limits: PlanLimits) -> tuple[list[Any], list[PlanError]]:
    items = doc.get(kind) or []
    if not isinstance(items, list):
        return [], [PlanError(("line", doc.get("__line__", 0)), "plan.not_a_list", {"kind": kind})]
    if len(items) > limits.max_rows:
        raise PlanFileError("plan.too_many_rows", rows=len(items), limit=limits.max_rows)
    records, errors = [], []
    for item in items:
        if not isinstance(item, dict):
            errors.append(PlanError(("file", 0), "plan.not_a_record", {"kind": kind}))
            continue
        line = item.pop("__line__", 0)
        if kind == "tasks":
            _yaml_task(item)
        records.append((("line", line), item))
    return records, errors


def _yaml_programme(block: Any, records: Records) -> list[PlanError]:
    """The `programme:` block as the file's programme record (kept apart from the lists)."""
    if block is None:
        return []
    if not isinstance(block, dict):
        return [PlanError(("file", 0), "plan.not_a_record", {"kind": "programme"})]
    line = block.pop("__line__", 0)
    if "short" in block:
        block.setdefault("short_code", block.pop("short"))
    records["programme"] = [(("line", line), block)]
    return []


def _read_yaml(data: bytes, limits: PlanLimits) -> tuple[Records, list[PlanError]]:
    from bot.services.plan_yaml import yaml_document  # PyYAML only when a YAML file comes

    doc = yaml_document(data)
    if not isinstance(doc, dict):
        return {}, [PlanError(("file", 0), "plan.no_lists")]
    records = _empty_records()
    errors: list[PlanError] = _yaml_programme(doc.get("programme"), records)
    for kind in KINDS:
        records[kind], found = _yaml_records(doc, kind, limits)
        errors.extend(found)
    if not any(records.values()):
        errors.append(PlanError(("file", 0), "plan.no_lists"))
    return records, errors


# --- CSV and spreadsheets ----------------------------------------------------------------------


def _header(cells: Sequence[Any]) -> list[str]:
    names = []
    for cell in cells:
        name = nfc(cell).lower()
        names.append(HEADER_ALIASES.get(name, name.replace(" ", "_")))
    return names


def _rows_to_records(
    kind: str, header: list[str], rows: list[tuple[int, list[Any]]], allowed: tuple[str, ...]
) -> tuple[list[tuple[tuple[str, int], dict[str, Any]]], list[PlanError]]:
    errors = [
        PlanError(("row", 1), "plan.unknown_column", {"column": name, "kind": kind})
        for name in header
        if name and name not in allowed
    ]
    records = []
    for number, cells in rows:
        if all(nfc(c) == "" for c in cells):
            continue
        record = {name: cells[i] if i < len(cells) else None for i, name in enumerate(header) if name}
        records.append((("row", number), record))
    return records, errors


def _read_csv(data: bytes, limits: PlanLimits) -> tuple[Records, list[PlanError]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return {}, [PlanError(("file", 0), "plan.not_utf8")]
    first = text.splitlines()[0] if text.strip() else ""
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    rows: list[list[str]] = []
    try:
        for row in reader:
            if len(rows) > limits.max_rows:
                raise PlanFileError("plan.too_many_rows", rows=f"> {limits.max_rows}", limit=limits.max_rows)
            rows.append(row[:MAX_COLUMNS])
    except csv.Error as exc:
        raise PlanFileError("plan.bad_csv", ("row", reader.line_num), reason=str(exc)) from None
    if not rows:
        return {}, [PlanError(("file", 0), "plan.no_lists")]
    tasks, errors = _rows_to_records(
        "tasks",
        _header(rows[0]),
        [(i + 2, row) for i, row in enumerate(rows[1:])],
        TASK_COLUMNS + PROGRESS_COLUMNS,
    )
    return {"units": [], "groups": [], "tasks": tasks}, errors


_XML_REFUSED = (b"<!DOCTYPE", b"<!ENTITY")
_DIMENSION = re.compile(rb'<dimension\s+ref="[A-Z]{1,3}\d{1,7}(?::([A-Z]{1,3})(\d{1,7}))?"')
_MERGE = re.compile(rb'<mergeCell\s+ref="([A-Z]{1,3}\d{1,7}:[A-Z]{1,3}\d{1,7})"')
_CHUNK = 64 * 1024


@dataclass
class _SheetScan:
    """What a worksheet's XML says before openpyxl reads it: its size and its merged cells."""

    rows: int = 0
    columns: int = 0
    merged: list[str] = field(default_factory=list)


def _check_archive(archive: zipfile.ZipFile, limits: PlanLimits) -> None:
    """Refuse a zip bomb from the zip directory alone: nothing is inflated yet.

    Python's zipfile never inflates a member past its declared size, so these sizes bound the
    work that follows.
    """
    total = 0
    for info in archive.infolist():
        total += info.file_size
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > 1024 * 1024 and ratio > limits.max_ratio:
            raise PlanFileError("plan.xlsx_bomb", ratio=int(ratio), limit=limits.max_ratio)
    if total > limits.max_unpacked_mb * 1024 * 1024:
        raise PlanFileError("plan.xlsx_unpacked", mb=total // (1024 * 1024), limit=limits.max_unpacked_mb)


def _scan_member(archive: zipfile.ZipFile, name: str) -> _SheetScan:
    """Stream one XML part: refuse a DTD or entity (never in a real XLSX; the door to external
    entities and entity expansion); note a worksheet's dimension and merged cells."""
    scan = _SheetScan()
    tail = b""
    with archive.open(name) as member:
        while chunk := member.read(_CHUNK):
            window = tail + chunk
            if not tail and window.startswith((b"\xff\xfe", b"\xfe\xff")):
                raise PlanFileError("plan.xlsx_dtd")  # UTF-16 XML would hide a DTD from this scan
            if any(marker in window for marker in _XML_REFUSED):
                raise PlanFileError("plan.xlsx_dtd")
            if not tail and (dimension := _DIMENSION.search(window)) and dimension.group(2):
                scan.rows = int(dimension.group(2))
                scan.columns = _column_number(dimension.group(1).decode())
            scan.merged.extend(m.decode() for m in _MERGE.findall(window))  # repeats dropped below
            tail = window[-80:]
    scan.merged = list(dict.fromkeys(scan.merged))
    return scan


def _scan_archive(data: bytes, limits: PlanLimits) -> dict[str, _SheetScan]:
    """Check an XLSX before opening it; returns each worksheet part's scan by its path."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            _check_archive(archive, limits)
            scans = {
                info.filename: _scan_member(archive, info.filename)
                for info in archive.infolist()
                if info.filename.endswith((".xml", ".rels", ".vml"))
            }
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, OSError):
        raise PlanFileError("plan.bad_xlsx") from None
    for scan in scans.values():
        if scan.rows > limits.max_rows + 1:
            raise PlanFileError("plan.too_many_rows", rows=scan.rows - 1, limit=limits.max_rows)
        if scan.columns > MAX_COLUMNS:
            raise PlanFileError("plan.too_many_columns", columns=scan.columns, limit=MAX_COLUMNS)
    return scans


def _sheet_records(
    ws: Any, kind: str, scan: _SheetScan, limits: PlanLimits
) -> tuple[list[tuple[tuple[str, int], dict[str, Any]]], list[PlanError]]:
    """One worksheet, streamed row by row (read-only mode), at most max_rows rows."""
    errors = [
        PlanError(("row", _first_row(cells)), "plan.merged_cells", {"sheet": kind, "cells": cells})
        for cells in scan.merged
    ]
    rows: list[tuple[int, list[Any]]] = []
    header: list[str] = []
    for number, row in enumerate(ws.iter_rows(max_col=MAX_COLUMNS, max_row=limits.max_rows + 2), start=1):
        if number > limits.max_rows + 1:
            raise PlanFileError("plan.too_many_rows", rows=f"> {limits.max_rows}", limit=limits.max_rows)
        for cell in row:
            if cell.data_type == "f":
                errors.append(
                    PlanError(("row", number), "plan.formula", {"sheet": kind, "cell": cell.coordinate})
                )
        values = [cell.value for cell in row]
        if number == 1:
            header = _header(values)
        else:
            rows.append((number, values))
    found, header_errors = _rows_to_records(kind, header, rows, SHEET_COLUMNS[kind])
    return found, errors + header_errors


def _column_number(letters: str) -> int:
    """Spreadsheet column letters as a number: A is 1, Z 26, AA 27."""
    number = 0
    for letter in letters:
        number = number * 26 + ord(letter) - ord("A") + 1
    return number


def _first_row(cells: str) -> int:
    return int(re.sub(r"[^0-9]", " ", cells).split()[0])


SHEET_COLUMNS = {
    "programme": PROGRAMME_COLUMNS,
    "units": UNIT_COLUMNS,
    "groups": GROUP_COLUMNS,
    "tasks": TASK_COLUMNS + PROGRESS_COLUMNS,
}


def _read_xlsx(data: bytes, limits: PlanLimits) -> tuple[Records, list[PlanError]]:
    from xml.etree.ElementTree import ParseError

    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    scans = _scan_archive(data, limits)
    try:
        # Read-only streams each sheet; not data_only: a formula must be seen as one, not as a
        # stale cached value.
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, ValueError, TypeError, OSError, ParseError):
        raise PlanFileError("plan.bad_xlsx") from None
    try:
        return _workbook_records(workbook, scans, limits)
    except (KeyError, ValueError, TypeError, ParseError):
        raise PlanFileError("plan.bad_xlsx") from None
    finally:
        workbook.close()


def _workbook_records(
    workbook: Any, scans: dict[str, _SheetScan], limits: PlanLimits
) -> tuple[Records, list[PlanError]]:
    sheets = {nfc(ws.title).lower(): ws for ws in workbook.worksheets}
    errors: list[PlanError] = []
    if len(sheets) == 1:
        sheets = {"tasks": next(iter(sheets.values()))}
    for name in sheets:
        if name not in SHEET_COLUMNS:
            errors.append(PlanError(("file", 0), "plan.unknown_sheet", {"sheet": name}))
    records = _empty_records()
    for kind in SHEET_COLUMNS:
        ws = sheets.get(kind)
        if ws is None:
            continue
        scan = scans.get(getattr(ws, "_worksheet_path", ""), _SheetScan())
        records[kind], found = _sheet_records(ws, kind, scan, limits)
        errors.extend(found)
    if "tasks" not in sheets:
        errors.append(PlanError(("file", 0), "plan.no_tasks_sheet"))
    records["programme"] = records.get("programme", [])[:1]  # one programme: its first row
    return records, errors


READERS: dict[str, Reader] = {
    ".yaml": _read_yaml,
    ".yml": _read_yaml,
    ".csv": _read_csv,
    ".xlsx": _read_xlsx,
}


def read_records(data: bytes, filename: str, limits: PlanLimits) -> tuple[Records, list[PlanError]]:
    """The file's records by kind, or the errors that stop reading it (format, size, shape)."""
    suffix = Path(filename).suffix.lower()
    reader = READERS.get(suffix)
    if reader is None:
        return {}, [PlanError(("file", 0), "plan.bad_format", {"suffix": suffix or "?"})]
    if len(data) > MAX_FILE_BYTES:
        return {}, [PlanError(("file", 0), "plan.too_big", {"mb": MAX_FILE_BYTES // (1024 * 1024)})]
    try:
        return reader(data, limits)
    except PlanFileError as exc:
        return {}, [exc.error]


# --- validation ------------------------------------------------------------------------------


def _optional_date(
    rec: dict[str, Any], column: str, where: tuple[str, int], errors: list[PlanError]
) -> date | None:
    try:
        return parse_deadline(rec.get(column))
    except ValueError:
        errors.append(PlanError(where, "plan.bad_date", {"value": nfc(rec.get(column))}))
        return None


def _programme_text(rec: dict[str, Any], column: str, limit: int) -> str:
    return nfc(rec.get(column))[:limit]


def _programme_period(rec: dict[str, Any], where: tuple[str, int], errors: list[PlanError]) -> str | None:
    period = nfc(rec.get("period")).lower() or None
    if period is not None and period not in PERIODS:
        errors.append(PlanError(where, "plan.bad_period", {"value": period}))
        return None
    return period


def parse_programme(records: Records, errors: list[PlanError]) -> ProgrammeRow | None:
    """The file's programme record (YAML block or XLSX sheet), or None without one."""
    found = records.get("programme") or []
    if not found:
        return None
    where, rec = found[0]
    code = nfc(rec.get("code"))
    if not PROGRAMME_CODE.match(code):
        errors.append(PlanError(where, "plan.bad_programme_code", {"code": code}))
        return None
    short = nfc(rec.get("short_code")) or default_short_code(code)
    if not SHORT_CODE.match(short):
        errors.append(PlanError(where, "plan.bad_short_code", {"code": short}))
    title = _programme_text(rec, "title", MAX_TITLE)
    if not title:
        errors.append(PlanError(where, "plan.missing", {"column": "title"}))
    return ProgrammeRow(
        code=code,
        where=where,
        short_code=short,
        title=title,
        decision=_programme_text(rec, "decision", 64),
        decision_date=_optional_date(rec, "issued", where, errors),
        issuer=_programme_text(rec, "issuer", 300),
        starts_on=_optional_date(rec, "starts", where, errors),
        ends_on=_optional_date(rec, "ends", where, errors),
        period=_programme_period(rec, where, errors),
        cutoff=_programme_text(rec, "cutoff", 32) or None,
    )


def default_short_code(code: str) -> str:
    """A programme's short code when the file gives none: its last part ("QD-59-BKHCN-2024"
    gives "2024"), at most 16 characters."""
    return re.split(r"[-_.]", code)[-1][:16] or code[:16]


class _PlanBuilder:
    """Checks records kind by kind into a Plan, collecting every error with its row or line.

    One method per kind of record; a new kind (a `programme:` block) is one more method and
    one more entry in parse_plan's list.
    """

    def __init__(self, known_units: Set[str], known_groups: Set[str]) -> None:
        self.plan = Plan()
        self.known_units = known_units
        self.known_groups = known_groups
        self.all_units: set[str] = set(known_units)
        self.group_titles: dict[str, str] = {}
        self.seen_tasks: set[str] = set()

    def err(self, where: tuple[str, int], key: str, **params: Any) -> None:
        self.plan.errors.append(PlanError(where, key, params))

    def units(self, records: list[tuple[tuple[str, int], dict[str, Any]]]) -> None:
        seen: set[str] = set()
        for where, rec in records:
            code, name = nfc(rec.get("code")), nfc(rec.get("name"))
            if not UNIT_CODE.match(code):
                self.err(where, "plan.bad_unit_code", code=code)
                continue
            if code in seen:
                self.err(where, "plan.duplicate", kind="unit", code=code)
                continue
            if not name:
                self.err(where, "plan.missing", column="name")
            seen.add(code)
            self.plan.units.append(UnitRow(code, name[:300], nfc(rec.get("parent")) or None, where))
        self.all_units |= seen
        for row in self.plan.units:
            if row.parent and row.parent not in self.all_units:
                self.err(row.where, "plan.unknown_unit", code=row.parent)

    def groups(self, records: list[tuple[tuple[str, int], dict[str, Any]]]) -> None:
        for where, rec in records:
            code, title = nfc(rec.get("code")), nfc(rec.get("title"))
            if not TASK_CODE.match(code):
                self.err(where, "plan.bad_code", code=code)
                continue
            if code in self.group_titles:
                self.err(where, "plan.duplicate", kind="group", code=code)
                continue
            if not title:
                self.err(where, "plan.missing", column="title")
            self._add_group(code, title, where)

    def _add_group(self, code: str, title: str, where: tuple[str, int]) -> None:
        self.group_titles[code] = title
        self.plan.groups.append(GroupRow(code, title, len(self.plan.groups) + 1, where))

    def tasks(self, records: list[tuple[tuple[str, int], dict[str, Any]]]) -> None:
        for position, (where, rec) in enumerate(records, start=1):
            before = len(self.plan.errors)
            row = self._task(where, rec, position)
            if len(self.plan.errors) == before:
                self.plan.tasks.append(row)

    def _task(self, where: tuple[str, int], rec: dict[str, Any], position: int) -> TaskRow:
        code, title, group, lead = (nfc(rec.get(k)) for k in ("code", "title", "group", "lead_unit"))
        self._check_task_code(where, code)
        self._check_title(where, title)
        self._check_group(where, group, nfc(rec.get("group_title")))
        coordinating = self._check_units(where, lead, _split_codes(rec.get("coordinating_units")))
        texts = self._texts(where, rec)
        return TaskRow(
            code=code,
            group=group,
            title=title,
            description=texts["description"],
            legal_source=texts["legal_source"],
            lead=lead,
            coordinating=coordinating,
            deadline=self._deadline(where, rec.get("deadline")),
            expected_output=texts["expected_output"],
            target_value=self._target(where, rec.get("target_value")),
            target_unit=nfc(rec.get("target_unit")) or None,
            target_label=nfc(rec.get("target_label")) or None,
            position=position,
            where=where,
        )

    def _check_task_code(self, where: tuple[str, int], code: str) -> None:
        if not TASK_CODE.match(code):
            self.err(where, "plan.bad_code", code=code)
        elif code in self.seen_tasks:
            self.err(where, "plan.duplicate", kind="task", code=code)
        self.seen_tasks.add(code)

    def _check_title(self, where: tuple[str, int], title: str) -> None:
        if not title:
            self.err(where, "plan.missing", column="title")
        elif len(title) > MAX_TITLE:
            self.err(where, "plan.too_long", column="title", limit=MAX_TITLE)

    def _check_group(self, where: tuple[str, int], group: str, group_title: str) -> None:
        """A task's group must exist: in the file, in the database, or named by group_title."""
        if not group:
            self.err(where, "plan.missing", column="group")
        elif group in self.group_titles:
            return
        elif group_title:
            self._add_group(group, group_title, where)
        elif group not in self.known_groups:
            self.err(where, "plan.unknown_group", code=group)

    def _check_units(self, where: tuple[str, int], lead: str, coordinating: list[str]) -> tuple[str, ...]:
        """The lead and coordinating units must exist; returns the coordinating ones, once each."""
        if not lead:
            self.err(where, "plan.missing", column="lead_unit")
        elif lead not in self.all_units:
            self.err(where, "plan.unknown_unit", code=lead)
        for unit in coordinating:
            if unit not in self.all_units:
                self.err(where, "plan.unknown_unit", code=unit)
        return tuple(u for u in dict.fromkeys(coordinating) if u != lead)

    def _deadline(self, where: tuple[str, int], value: Any) -> date | None:
        try:
            return parse_deadline(value)
        except ValueError:
            self.err(where, "plan.bad_date", value=nfc(value))
            return None

    def _target(self, where: tuple[str, int], value: Any) -> float | None:
        try:
            return _parse_number(value)
        except ValueError:
            self.err(where, "plan.bad_number", column="target_value", value=nfc(value))
            return None

    def _texts(self, where: tuple[str, int], rec: dict[str, Any]) -> dict[str, str]:
        texts = {k: nfc(rec.get(k)) for k in ("description", "legal_source", "expected_output")}
        for column, text in texts.items():
            if len(text) > MAX_TEXT:
                self.err(where, "plan.too_long", column=column, limit=MAX_TEXT)
        return texts

    def finish(self) -> Plan:
        plan = self.plan
        if not plan.tasks and not plan.units and not plan.groups and not plan.errors:
            plan.errors.append(PlanError(("file", 0), "plan.no_lists"))
        plan.errors.sort(key=lambda e: (e.where[1], e.key))
        return plan


def parse_plan(
    data: bytes,
    filename: str,
    *,
    known_units: Set[str] = frozenset(),
    known_groups: Set[str] = frozenset(),
    limits: PlanLimits = DEFAULT_LIMITS,
) -> Plan:
    """Read and validate a plan file; every error is collected, nothing is written.

    This runs in the caller's process: the bot and `tiendo import` call it through
    bot.services.plan_worker, which bounds its memory and time.
    """
    records, errors = read_records(data, filename, limits)
    if errors and not any(records.values()):
        return Plan(errors=errors)
    builder = _PlanBuilder(known_units, known_groups)
    builder.plan.errors.extend(errors)
    builder.plan.programme = parse_programme(records, builder.plan.errors)
    # Units first (tasks name them), then groups, then tasks.
    for kind, check in (("units", builder.units), ("groups", builder.groups), ("tasks", builder.tasks)):
        check(records.get(kind, []))
    return builder.finish()
