"""Hostile plan files, built on the fly: zip bombs, huge sheets, entity tricks, YAML laughs.

Each builder returns the file's bytes. The 1 GB cell is written without ever holding (or even
deflating) a gigabyte: a megabyte of one letter is deflated once with a full flush, and that
block (byte-aligned, history reset) is repeated; the CRC is taken over the same megabyte.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Iterable

from openpyxl import Workbook

SHEET = "xl/worksheets/sheet1.xml"
_SHEET_HEAD = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
)


def _template() -> dict[str, bytes]:
    """The parts of a small, valid one-sheet workbook, by name."""
    workbook = Workbook()
    workbook.active.append(["group", "code", "title", "lead_unit"])
    out = io.BytesIO()
    workbook.save(out)
    with zipfile.ZipFile(out) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    return packer.compress(data) + packer.flush()


def _raw_zip(members: Iterable[tuple[str, bytes, int, int]]) -> bytes:
    """A zip of already-deflated members: (name, deflated bytes, crc32, unpacked size)."""
    out = io.BytesIO()
    central = []
    for name, packed, crc, size in members:
        offset = out.tell()
        encoded = name.encode()
        out.write(
            struct.pack("<4s5H3L2H", b"PK\3\4", 20, 0, 8, 0, 0, crc, len(packed), size, len(encoded), 0)
        )
        out.write(encoded + packed)
        central.append(
            struct.pack(
                "<4s6H3L5H2L",
                b"PK\1\2",
                20,
                20,
                0,
                8,
                0,
                0,
                crc,
                len(packed),
                size,
                len(encoded),
                0,
                0,
                0,
                0,
                0,
                offset,
            )
            + encoded
        )
    start = out.tell()
    directory = b"".join(central)
    out.write(directory)
    out.write(struct.pack("<4s4H2LH", b"PK\5\6", 0, 0, len(central), len(central), len(directory), start, 0))
    return out.getvalue()


def _with_sheet(sheet: tuple[bytes, int, int]) -> bytes:
    parts = _template()
    members = []
    for name, content in parts.items():
        if name == SHEET:
            members.append((name, *sheet))
        else:
            members.append((name, _deflate(content), zlib.crc32(content), len(content)))
    return _raw_zip(members)


def xlsx_one_huge_cell(megabytes: int = 1024) -> bytes:
    """An XLSX of about 1 MB whose one cell inflates to `megabytes` MB of the letter A."""
    head = (_SHEET_HEAD + '<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>').encode()
    tail = b"</t></is></c></row></sheetData></worksheet>"
    block = b"A" * (1024 * 1024)
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = packer.compress(head) + packer.flush(zlib.Z_FULL_FLUSH)
    repeated = packer.compress(block) + packer.flush(zlib.Z_FULL_FLUSH)
    last = packer.compress(tail) + packer.flush()
    crc = zlib.crc32(head)
    for _ in range(megabytes):
        crc = zlib.crc32(block, crc)
    crc = zlib.crc32(tail, crc)
    packed = first + repeated * megabytes + last
    return _with_sheet((packed, crc, len(head) + len(block) * megabytes + len(tail)))


def xlsx_rows(count: int, *, dimension: bool = True) -> bytes:
    """An XLSX of `count` plausible task rows under a header, streamed (never a workbook)."""
    out = io.BytesIO()
    parts = _template()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name, content in parts.items():
            if name != SHEET:
                archive.writestr(name, content)
        with archive.open(SHEET, "w") as sheet:
            sheet.write(_SHEET_HEAD.encode())
            if dimension:
                sheet.write(f'<dimension ref="A1:D{count + 1}"/>'.encode())
            sheet.write(b"<sheetData>")
            sheet.write(_row(1, ("group", "code", "title", "lead_unit")))
            for start in range(2, count + 2, 1000):
                numbers = range(start, min(start + 1000, count + 2))
                sheet.write(b"".join(_row(n, ("1", f"1.{n}", f"Nhiệm vụ số {n}", "VP")) for n in numbers))
            sheet.write(b"</sheetData></worksheet>")
    return out.getvalue()


def _row(number: int, values: tuple[str, ...]) -> bytes:
    cells = "".join(
        f'<c r="{chr(65 + i)}{number}" t="inlineStr"><is><t>{value}</t></is></c>'
        for i, value in enumerate(values)
    )
    return f'<row r="{number}">{cells}</row>'.encode()


def xlsx_external_entity(target: str = "file:///etc/passwd") -> bytes:
    """An XLSX whose sheet declares an external entity and uses it in a cell."""
    sheet = (
        '<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n'
        f'<!DOCTYPE worksheet [<!ENTITY leak SYSTEM "{target}">]>'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
        '<row r="1"><c r="A1" t="inlineStr"><is><t>&leak;</t></is></c></row>'
        "</sheetData></worksheet>"
    ).encode()
    return _with_sheet((_deflate(sheet), zlib.crc32(sheet), len(sheet)))


def yaml_laughs(levels: int = 9, width: int = 9) -> bytes:
    """Nested anchors: each level lists the previous one `width` times (9^9 strings in ~540 B)."""
    lines = ["a0: &a0 [" + ", ".join(["lol"] * width) + "]"]
    for level in range(1, levels):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * width) + "]")
    lines.append("tasks:")
    lines.append(f"  - {{code: '1.1', group: '1', title: *a{levels - 1}, lead: VP}}")
    return ("\n".join(lines) + "\n").encode()
