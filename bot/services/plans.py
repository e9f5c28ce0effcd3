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
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml

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


# --- readers: each yields (where, record dict) per kind ----------------------------------------


class _PlanLoader(yaml.SafeLoader):
    """Safe YAML that keeps each mapping's line, leaves 1.10 as the string '1.10', and leaves
    dates as text so that 2024-02-30 is reported against its line instead of crashing."""


_AS_TEXT = {"tag:yaml.org,2002:float", "tag:yaml.org,2002:timestamp"}
_PlanLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in _AS_TEXT]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    mapping = loader.construct_mapping(node, deep=True)
    mapping["__line__"] = node.start_mark.line + 1
    return mapping


_PlanLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)

Records = dict[str, list[tuple[tuple[str, int], dict[str, Any]]]]


def _read_yaml(data: bytes) -> tuple[Records, list[PlanError]]:
    try:
        doc = yaml.load(data.decode("utf-8-sig"), Loader=_PlanLoader)
    except UnicodeDecodeError:
        return {}, [PlanError(("file", 0), "plan.not_utf8")]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 0
        return {}, [PlanError(("line", line), "plan.bad_yaml", {"reason": str(exc).splitlines()[0]})]
    if not isinstance(doc, dict):
        return {}, [PlanError(("file", 0), "plan.no_lists")]
    records: Records = {"units": [], "groups": [], "tasks": []}
    errors: list[PlanError] = _yaml_programme(doc.get("programme"), records)
    for kind in ("units", "groups", "tasks"):
        items = doc.get(kind) or []
        if not isinstance(items, list):
            errors.append(PlanError(("line", doc.get("__line__", 0)), "plan.not_a_list", {"kind": kind}))
            continue
        for item in items:
            if not isinstance(item, dict):
                errors.append(PlanError(("file", 0), "plan.not_a_record", {"kind": kind}))
                continue
            line = item.pop("__line__", 0)
            if kind == "tasks" and isinstance(item.get("target"), dict):
                target = item.pop("target")
                target.pop("__line__", None)
                item.setdefault("target_value", target.get("value"))
                item.setdefault("target_unit", target.get("unit"))
                item.setdefault("target_label", target.get("label"))
            elif kind == "tasks":
                item.pop("target", None)
            # YAML spells some columns shorter.
            for short, long in (
                ("lead", "lead_unit"),
                ("coordinating", "coordinating_units"),
                ("output", "expected_output"),
            ):
                if short in item:
                    item.setdefault(long, item.pop(short))
            records[kind].append((("line", line), item))
    if not any(records.values()):
        errors.append(PlanError(("file", 0), "plan.no_lists"))
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


def _header(cells: list[Any]) -> list[str]:
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


def _read_csv(data: bytes) -> tuple[Records, list[PlanError]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return {}, [PlanError(("file", 0), "plan.not_utf8")]
    first = text.splitlines()[0] if text.strip() else ""
    delimiter = ";" if first.count(";") > first.count(",") else ","
    rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    if not rows:
        return {}, [PlanError(("file", 0), "plan.no_lists")]
    header = _header(rows[0])
    tasks, errors = _rows_to_records(
        "tasks",
        header,
        [(i + 2, row) for i, row in enumerate(rows[1:])],
        TASK_COLUMNS + PROGRESS_COLUMNS,
    )
    return {"units": [], "groups": [], "tasks": tasks}, errors


def _read_xlsx(data: bytes) -> tuple[Records, list[PlanError]]:
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        # Not data_only: a formula must be seen as one, not as a stale cached value.
        workbook = load_workbook(io.BytesIO(data), read_only=False, data_only=False)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, ValueError, OSError):
        return {}, [PlanError(("file", 0), "plan.bad_xlsx")]
    sheets = {nfc(ws.title).lower(): ws for ws in workbook.worksheets}
    kinds = {
        "programme": PROGRAMME_COLUMNS,
        "units": UNIT_COLUMNS,
        "groups": GROUP_COLUMNS,
        "tasks": TASK_COLUMNS + PROGRESS_COLUMNS,
    }
    errors: list[PlanError] = []
    if len(sheets) == 1:
        sheets = {"tasks": next(iter(sheets.values()))}
    for name in sheets:
        if name not in kinds:
            errors.append(PlanError(("file", 0), "plan.unknown_sheet", {"sheet": name}))
    records: Records = {"units": [], "groups": [], "tasks": []}
    for kind, allowed in kinds.items():
        ws = sheets.get(kind)
        if ws is None:
            continue
        for merged in ws.merged_cells.ranges:
            errors.append(
                PlanError(("row", merged.min_row), "plan.merged_cells", {"sheet": kind, "cells": str(merged)})
            )
        rows: list[tuple[int, list[Any]]] = []
        header: list[str] = []
        for number, row in enumerate(ws.iter_rows(), start=1):
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
        found, header_errors = _rows_to_records(kind, header, rows, allowed)
        records[kind] = found[:1] if kind == "programme" else found
        errors.extend(header_errors)
    if "tasks" not in sheets:
        errors.append(PlanError(("file", 0), "plan.no_tasks_sheet"))
    return records, errors


READERS: dict[str, Callable[[bytes], tuple[Records, list[PlanError]]]] = {
    ".yaml": _read_yaml,
    ".yml": _read_yaml,
    ".csv": _read_csv,
    ".xlsx": _read_xlsx,
}


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


def parse_plan(
    data: bytes,
    filename: str,
    *,
    known_units: set[str] | frozenset[str] = frozenset(),
    known_groups: set[str] | frozenset[str] = frozenset(),
) -> Plan:
    """Read and validate a plan file; every error is collected, nothing is written."""
    plan = Plan()
    suffix = Path(filename).suffix.lower()
    reader = READERS.get(suffix)
    if reader is None:
        plan.errors.append(PlanError(("file", 0), "plan.bad_format", {"suffix": suffix or "?"}))
        return plan
    if len(data) > MAX_FILE_BYTES:
        plan.errors.append(PlanError(("file", 0), "plan.too_big", {"mb": MAX_FILE_BYTES // (1024 * 1024)}))
        return plan
    records, plan.errors = reader(data)
    if plan.errors and not any(records.values()):
        return plan
    plan.programme = parse_programme(records, plan.errors)

    def err(where: tuple[str, int], key: str, **params: Any) -> None:
        plan.errors.append(PlanError(where, key, params))

    seen_units: set[str] = set()
    for where, rec in records.get("units", []):
        code, name = nfc(rec.get("code")), nfc(rec.get("name"))
        parent = nfc(rec.get("parent")) or None
        if not UNIT_CODE.match(code):
            err(where, "plan.bad_unit_code", code=code)
            continue
        if code in seen_units:
            err(where, "plan.duplicate", kind="unit", code=code)
            continue
        if not name:
            err(where, "plan.missing", column="name")
        seen_units.add(code)
        plan.units.append(UnitRow(code, name[:300], parent, where))
    all_units = seen_units | set(known_units)
    for row in plan.units:
        if row.parent and row.parent not in all_units:
            err(row.where, "plan.unknown_unit", code=row.parent)

    group_titles: dict[str, str] = {}
    for where, rec in records.get("groups", []):
        code, title = nfc(rec.get("code")), nfc(rec.get("title"))
        if not TASK_CODE.match(code):
            err(where, "plan.bad_code", code=code)
            continue
        if code in group_titles:
            err(where, "plan.duplicate", kind="group", code=code)
            continue
        if not title:
            err(where, "plan.missing", column="title")
        group_titles[code] = title
        plan.groups.append(GroupRow(code, title, len(plan.groups) + 1, where))

    seen_tasks: set[str] = set()
    for position, (where, rec) in enumerate(records.get("tasks", []), start=1):
        code = nfc(rec.get("code"))
        group = nfc(rec.get("group"))
        title = nfc(rec.get("title"))
        lead = nfc(rec.get("lead_unit"))
        before = len(plan.errors)
        if not TASK_CODE.match(code):
            err(where, "plan.bad_code", code=code)
        elif code in seen_tasks:
            err(where, "plan.duplicate", kind="task", code=code)
        seen_tasks.add(code)
        if not title:
            err(where, "plan.missing", column="title")
        elif len(title) > MAX_TITLE:
            err(where, "plan.too_long", column="title", limit=MAX_TITLE)
        if not group:
            err(where, "plan.missing", column="group")
        elif group not in group_titles:
            group_title = nfc(rec.get("group_title"))
            if group_title:
                group_titles[group] = group_title
                plan.groups.append(GroupRow(group, group_title, len(plan.groups) + 1, where))
            elif group not in known_groups:
                err(where, "plan.unknown_group", code=group)
        if not lead:
            err(where, "plan.missing", column="lead_unit")
        elif lead not in all_units:
            err(where, "plan.unknown_unit", code=lead)
        coordinating = _split_codes(rec.get("coordinating_units"))
        for unit in coordinating:
            if unit not in all_units:
                err(where, "plan.unknown_unit", code=unit)
        coordinating = [u for u in dict.fromkeys(coordinating) if u != lead]
        try:
            deadline = parse_deadline(rec.get("deadline"))
        except ValueError:
            err(where, "plan.bad_date", value=nfc(rec.get("deadline")))
            deadline = None
        try:
            target_value = _parse_number(rec.get("target_value"))
        except ValueError:
            err(where, "plan.bad_number", column="target_value", value=nfc(rec.get("target_value")))
            target_value = None
        texts = {k: nfc(rec.get(k)) for k in ("description", "legal_source", "expected_output")}
        for column, text in texts.items():
            if len(text) > MAX_TEXT:
                err(where, "plan.too_long", column=column, limit=MAX_TEXT)
        if len(plan.errors) > before:
            continue
        plan.tasks.append(
            TaskRow(
                code=code,
                group=group,
                title=title,
                description=texts["description"],
                legal_source=texts["legal_source"],
                lead=lead,
                coordinating=tuple(coordinating),
                deadline=deadline,
                expected_output=texts["expected_output"],
                target_value=target_value,
                target_unit=nfc(rec.get("target_unit")) or None,
                target_label=nfc(rec.get("target_label")) or None,
                position=position,
                where=where,
            )
        )
    if not plan.tasks and not plan.units and not plan.groups and not plan.errors:
        plan.errors.append(PlanError(("file", 0), "plan.no_lists"))
    plan.errors.sort(key=lambda e: (e.where[1], e.key))
    return plan
