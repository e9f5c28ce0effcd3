"""Lay out the Word report (Decree 30/2020/NĐ-CP) from the XML outline that
templates/report.docx.xml renders: the template says what is written, this module how.

A4; margins top/bottom 20 mm, left 30 mm, right 15 mm; Times New Roman; the masthead as a
borderless two-column table (issuing body and number left, national title, motto, place and
date right), a short solid line under the issuing body, the motto and the subject; page
numbers centred in the top margin from page 2; the signature block kept with the text before
it; the annexes in a landscape section. Tables are built as raw XML rows (python-docx's add_row
is too slow for ten thousand tasks), their properties in the schema's order.
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Callable
from contextvars import ContextVar
from datetime import date, datetime, time
from typing import Any
from xml.sax.saxutils import escape

from docx import Document
from docx.enum.section import WD_ORIENT, WD_SECTION
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_BREAK
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Mm, Pt
from docx.table import Table
from docx.text.paragraph import Paragraph

from bot.services.report_render import recipient_lines

# The rows of the big tables, as text, keyed by their placeholder (see _defer_rows).
_DEFERRED: ContextVar[dict[str, str]] = ContextVar("deferred_rows")
FONT = "Times New Roman"
LANGUAGE = "vi-VN"
CENTER = WD_ALIGN_PARAGRAPH.CENTER
JUSTIFY = WD_ALIGN_PARAGRAPH.JUSTIFY
TWIPS_PER_MM = 56.7
# CT_TblPr's children in the order the schema (ECMA-376 §17.4.60) requires.
TBLPR_ORDER = (
    "tblStyle",
    "tblpPr",
    "tblOverlap",
    "bidiVisual",
    "tblStyleRowBandSize",
    "tblStyleColBandSize",
    "tblW",
    "jc",
    "tblCellSpacing",
    "tblInd",
    "tblBorders",
    "shd",
    "tblLayout",
    "tblCellMar",
    "tblLook",
    "tblCaption",
    "tblDescription",
)
# The short solid lines: (width in mm) under the issuing body, the motto and the subject.
RULE_MM = {"body": 30, "motto": 62, "subject": 50}
MASTHEAD_MM = (74, 100)
CLOSING_MM = (85, 80)
BODY_MM = 165  # A4 width less the 30 + 15 mm margins
ANNEX_MM = 257  # landscape A4 less the 25 + 15 mm margins


def _text(element: ET.Element | None) -> str:
    return "".join(element.itertext()).strip() if element is not None else ""


def _child(element: ET.Element, tag: str) -> ET.Element:
    found = element.find(tag)
    return found if found is not None else ET.Element(tag)


def _runs(
    paragraph: Paragraph,
    element: ET.Element,
    *,
    bold: bool = False,
    italic: bool = False,
    size: float | None = None,
) -> Paragraph:
    """Add the element's mixed content as runs (<b> and <i> children become bold/italic)."""

    def add(text: str | None, b: bool, i: bool) -> None:
        if text:
            run = paragraph.add_run(text)
            run.bold = b or None
            run.italic = i or None
            if size:
                run.font.size = Pt(size)

    add(element.text, bold, italic)
    for child in element:
        add("".join(child.itertext()), bold or child.tag == "b", italic or child.tag == "i")
        add(child.tail, bold, italic)
    return paragraph


def _lang(r_pr: object) -> None:
    """w:lang vi-VN on a run-properties element (so Word spell-checks Vietnamese)."""
    lang = r_pr.find(qn("w:lang"))  # type: ignore[attr-defined]
    if lang is None:
        lang = OxmlElement("w:lang")
        r_pr.append(lang)  # type: ignore[attr-defined]
    for attr in ("w:val", "w:eastAsia", "w:bidi"):
        lang.set(qn(attr), LANGUAGE)


def _set_font(document: object) -> None:
    style = document.styles["Normal"]  # type: ignore[attr-defined]
    style.font.name = FONT
    style.font.size = Pt(14)
    r_pr = style.element.get_or_add_rPr()
    fonts = r_pr.get_or_add_rFonts()
    for attr in ("w:ascii", "w:hAnsi", "w:eastAsia", "w:cs"):
        fonts.set(qn(attr), FONT)
    _lang(r_pr)
    # The document defaults too: tables and headers take their language from there.
    defaults = document.styles.element.find(qn("w:docDefaults"))  # type: ignore[attr-defined]
    if defaults is not None:
        for lang in defaults.iter(qn("w:lang")):
            for attr in ("w:val", "w:eastAsia", "w:bidi"):
                lang.set(qn(attr), LANGUAGE)
    paragraph_format = style.paragraph_format
    paragraph_format.space_after = Pt(6)
    paragraph_format.space_before = Pt(0)
    paragraph_format.line_spacing = 1.15


def _properties(document: object, outline: ET.Element) -> None:
    """Core properties: the issuing body as author, the report's date as created."""
    props = document.core_properties  # type: ignore[attr-defined]
    author = outline.get("author", "")
    props.author = author
    props.last_modified_by = author
    props.title = outline.get("title", "")
    props.language = LANGUAGE
    props.comments = ""
    props.revision = 1
    day = outline.get("date")
    if day:
        moment = datetime.combine(date.fromisoformat(day), time(8))
        props.created = props.modified = moment


def _page(section: object, landscape: bool = False) -> None:
    s = section
    if landscape:
        s.orientation = WD_ORIENT.LANDSCAPE  # type: ignore[attr-defined]
        s.page_width, s.page_height = Mm(297), Mm(210)  # type: ignore[attr-defined]
        s.left_margin, s.right_margin = Mm(25), Mm(15)  # type: ignore[attr-defined]
    else:
        s.orientation = WD_ORIENT.PORTRAIT  # type: ignore[attr-defined]
        s.page_width, s.page_height = Mm(210), Mm(297)  # type: ignore[attr-defined]
        s.left_margin, s.right_margin = Mm(30), Mm(15)  # type: ignore[attr-defined]
    s.top_margin = s.bottom_margin = Mm(20)  # type: ignore[attr-defined]
    s.header_distance = Mm(10)  # type: ignore[attr-defined]


def _page_numbers(section: object) -> None:
    """A centred PAGE field in the header, absent from the first page."""
    section.different_first_page_header_footer = True  # type: ignore[attr-defined]
    paragraph = section.header.paragraphs[0]  # type: ignore[attr-defined]
    paragraph.alignment = CENTER
    field = OxmlElement("w:fldSimple")
    field.set(qn("w:instr"), "PAGE")
    run = OxmlElement("w:r")
    text = OxmlElement("w:t")
    text.text = "2"
    run.append(text)
    field.append(run)
    paragraph._p.append(field)


def _tbl_pr_insert(tbl_pr: Any, element: Any) -> None:
    """Put a child of w:tblPr where the schema wants it (Word offers a repair otherwise)."""
    name = element.tag.split("}")[1]
    rank = TBLPR_ORDER.index(name)
    for existing in tbl_pr.findall(element.tag):
        tbl_pr.remove(existing)
    for index, child in enumerate(tbl_pr):
        child_name = child.tag.split("}")[1]
        if child_name in TBLPR_ORDER and TBLPR_ORDER.index(child_name) > rank:
            tbl_pr.insert(index, element)
            return
    tbl_pr.append(element)


def _widths(table: Table, widths_mm: list[float]) -> None:
    """Fix the column widths (Word and LibreOffice follow the grid, not only the cells)."""
    table.autofit = False  # one w:tblLayout type="fixed", in its place
    width = OxmlElement("w:tblW")
    width.set(qn("w:w"), str(int(sum(widths_mm) * TWIPS_PER_MM)))
    width.set(qn("w:type"), "dxa")
    _tbl_pr_insert(table._tbl.tblPr, width)
    for grid_col, mm in zip(table._tbl.tblGrid.gridCol_lst, widths_mm, strict=False):
        grid_col.w = Mm(mm)
    for row in table.rows:
        for cell, mm in zip(row.cells, widths_mm, strict=False):
            cell.width = Mm(mm)


def _no_borders(table: Table) -> None:
    borders = OxmlElement("w:tblBorders")
    for edge in ("top", "left", "bottom", "right", "insideH", "insideV"):
        element = OxmlElement(f"w:{edge}")
        element.set(qn("w:val"), "nil")
        borders.append(element)
    _tbl_pr_insert(table._tbl.tblPr, borders)


def _cell_paragraph(cell: object, first: bool) -> Paragraph:
    return cell.paragraphs[0] if first else cell.add_paragraph()  # type: ignore[attr-defined]


def _rule(paragraph: Paragraph, width_mm: float, container_mm: float) -> None:
    """Turn an empty paragraph into a short solid line, centred: a bottom border between
    indents, so it stays a line when the text is edited."""
    paragraph.alignment = CENTER
    fmt = paragraph.paragraph_format
    side = max(0.0, (container_mm - width_mm) / 2)
    fmt.left_indent = fmt.right_indent = Mm(side)
    fmt.space_before = fmt.space_after = Pt(0)
    fmt.line_spacing = Pt(3)
    p_pr = paragraph._p.get_or_add_pPr()
    borders = OxmlElement("w:pBdr")
    bottom = OxmlElement("w:bottom")
    for attr, value in (("w:val", "single"), ("w:sz", "6"), ("w:space", "1"), ("w:color", "000000")):
        bottom.set(qn(attr), value)
    borders.append(bottom)
    # w:pBdr comes after keepNext/keepLines/pageBreakBefore/…/numPr and before w:shd, w:spacing.
    spacing = p_pr.find(qn("w:spacing"))
    if spacing is not None:
        spacing.addprevious(borders)
    else:
        p_pr.append(borders)
    run = paragraph.add_run()
    run.font.size = Pt(2)


def _masthead(document: object, masthead: ET.Element) -> None:
    table = document.add_table(rows=1, cols=2)  # type: ignore[attr-defined]
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    _no_borders(table)
    # Wider than the text block (centred, a few mm into each margin), as ministries lay it out:
    # the parent body and the national title each fit on one line at 12 pt.
    _widths(table, list(MASTHEAD_MM))
    left, right = table.rows[0].cells
    lines = [
        (left, "parent", False, 12),
        (left, "body", True, 12.5),
        (left, "number", False, 13),
        (right, "nation", True, 12),
        (right, "motto", True, 13),
        (right, "placedate", False, 13),
    ]
    used: set[int] = set()
    for cell, tag, bold, size in lines:
        element = masthead.find(tag)
        if element is None:
            continue
        paragraph = _cell_paragraph(cell, id(cell) not in used)
        used.add(id(cell))
        paragraph.alignment = CENTER
        paragraph.paragraph_format.space_after = Pt(0 if tag in RULE_MM else 2)
        _runs(paragraph, element, bold=bold, italic=tag == "placedate", size=size)
        if tag in RULE_MM:
            _rule(cell.add_paragraph(), RULE_MM[tag], MASTHEAD_MM[0 if cell is left else 1])
            cell.paragraphs[-1].paragraph_format.space_after = Pt(6)


def _heading(document: object, element: ET.Element, level: int) -> None:
    paragraph = document.add_paragraph()  # type: ignore[attr-defined]
    paragraph.paragraph_format.space_before = Pt(6)
    paragraph.paragraph_format.keep_with_next = True
    if level > 1:
        paragraph.paragraph_format.first_line_indent = Mm(10)
    _runs(paragraph, element, bold=level < 3, italic=level == 3)


def _body_paragraph(document: object, element: ET.Element) -> None:
    paragraph = document.add_paragraph()  # type: ignore[attr-defined]
    paragraph.alignment = JUSTIFY
    paragraph.paragraph_format.first_line_indent = Mm(10)
    _runs(paragraph, element)


def _centred(document: object, element: ET.Element, *, bold: bool = False, italic: bool = False) -> Paragraph:
    paragraph = document.add_paragraph()  # type: ignore[attr-defined]
    paragraph.alignment = CENTER
    paragraph.paragraph_format.space_after = Pt(0)
    paragraph.paragraph_format.keep_with_next = True
    return _runs(paragraph, element, bold=bold, italic=italic)


def _keep_last_with_next(document: object, count: int = 2) -> None:
    """The paragraphs just before the signature block stay on its page (no lone signature)."""
    body = document.element.body  # type: ignore[attr-defined]
    paragraphs = [child for child in body.iterchildren(qn("w:p"))][-count:]
    for p in paragraphs:
        Paragraph(p, document).paragraph_format.keep_with_next = True  # type: ignore[arg-type]


def _closing(document: object, closing: ET.Element) -> None:
    _keep_last_with_next(document)
    table = document.add_table(rows=1, cols=2)  # type: ignore[attr-defined]
    _no_borders(table)
    _widths(table, list(CLOSING_MM))
    row = table.rows[0]
    row._tr.get_or_add_trPr().append(OxmlElement("w:cantSplit"))
    left, right = row.cells
    recipients = closing.find("recipients")
    if recipients is not None:
        _recipients(left, recipients)
    signer = closing.find("signer")
    if signer is not None:
        _signer(right, signer)


def _recipients(cell: object, recipients: ET.Element) -> None:
    """ "Nơi nhận:" 12 pt bold italic, then the list in 11 pt."""
    title = _cell_paragraph(cell, True)
    title.paragraph_format.space_after = Pt(0)
    _runs(title, _child(recipients, "title"), bold=True, italic=True, size=12)
    for line in recipient_lines([_text(line) for line in recipients.findall("line")]):
        paragraph = _cell_paragraph(cell, False)
        paragraph.paragraph_format.space_after = Pt(0)
        paragraph.add_run(f"- {line}").font.size = Pt(11)


def _signer(cell: object, signer: ET.Element) -> None:
    first = True
    for tag in ("authority", "title"):
        element = signer.find(tag)
        if element is None or not _text(element):
            continue
        paragraph = _cell_paragraph(cell, first)
        first = False
        paragraph.alignment = CENTER
        paragraph.paragraph_format.space_after = Pt(0)
        paragraph.paragraph_format.keep_with_next = True
        _runs(paragraph, element, bold=True)
    for _ in range(4):  # room for the signature and the seal
        _cell_paragraph(cell, first).paragraph_format.keep_with_next = True
        first = False
    name = _cell_paragraph(cell, False)
    name.alignment = CENTER
    _runs(name, _child(signer, "name"), bold=True)


def _row_xml(widths_mm: list[float], aligns: list[str | None], size: int, bold: bool) -> str:
    """A table row as WordprocessingML text with one %s per cell for its (escaped) text."""
    run_pr = ("<w:b/>" if bold else "") + f'<w:sz w:val="{size}"/>'
    cells = []
    for width, align in zip(widths_mm, aligns, strict=False):
        jc = f'<w:jc w:val="{align}"/>' if align else ""
        cells.append(
            f'<w:tc><w:tcPr><w:tcW w:w="{int(width * TWIPS_PER_MM)}" w:type="dxa"/></w:tcPr>'
            f'<w:p><w:pPr><w:spacing w:after="0" w:line="240" w:lineRule="auto"/>{jc}</w:pPr>'
            f'<w:r><w:rPr>{run_pr}</w:rPr><w:t xml:space="preserve">%s</w:t></w:r></w:p></w:tc>'
        )
    return "<w:tr><w:trPr><w:cantSplit/></w:trPr>" + "".join(cells) + "</w:tr>"


def _defer_rows(tbl: object, rows_xml: str) -> None:
    """Leave a placeholder row that write_docx replaces by the rows' text after saving: ten
    thousand rows as lxml elements would take hundreds of megabytes and seconds to build."""
    deferred = _DEFERRED.get()
    marker = f"@@tiendo-rows-{len(deferred)}@@"
    deferred[marker] = rows_xml
    tr = OxmlElement("w:tr")
    tc = OxmlElement("w:tc")
    p = OxmlElement("w:p")
    r = OxmlElement("w:r")
    t = OxmlElement("w:t")
    t.text = marker
    r.append(t)
    p.append(r)
    tc.append(p)
    tr.append(tc)
    tbl.append(tr)  # type: ignore[attr-defined]


def _table(document: object, table_element: ET.Element, container_mm: float) -> None:
    """A bordered table; the first row is a heading repeated on every page."""
    rows = table_element.findall("tr")
    if not rows:
        return
    head = rows[0]
    columns = len(list(head))
    widths = [float(w) for w in table_element.get("widths", "").split(",") if w] or [container_mm / columns]
    widths = (widths + [widths[-1]] * columns)[:columns]
    aligns = [{"c": "center", "r": "right"}.get(a) for a in table_element.get("align", "").ljust(columns)]
    size = int(float(table_element.get("size", "11")) * 2)
    table = document.add_table(rows=1, cols=columns)  # type: ignore[attr-defined]
    table.style = "Table Grid"
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    _widths(table, widths)
    for cell, text_element in zip(table.rows[0].cells, head, strict=False):
        paragraph = cell.paragraphs[0]
        paragraph.alignment = CENTER
        paragraph.paragraph_format.space_after = Pt(0)
        _runs(paragraph, text_element, bold=True, size=size / 2)
    tr_pr = table.rows[0]._tr.get_or_add_trPr()
    tr_pr.append(OxmlElement("w:cantSplit"))
    tr_pr.append(OxmlElement("w:tblHeader"))
    plain, bold = _row_xml(widths, aligns, size, False), _row_xml(widths, aligns, size, True)
    body = []
    for row in rows[1:]:
        texts = [escape(_text(cell)) for cell in row][:columns]
        texts += [""] * (columns - len(texts))
        body.append((bold if row.get("bold") else plain) % tuple(texts))
    if body:
        _defer_rows(table._tbl, "".join(body))
    document.add_paragraph().paragraph_format.space_after = Pt(0)  # type: ignore[attr-defined]


def _splice(blob: bytes, deferred: dict[str, str]) -> bytes:
    """Put the deferred rows in place of their placeholder rows in word/document.xml."""
    source = zipfile.ZipFile(io.BytesIO(blob))
    xml = source.read("word/document.xml").decode("utf-8")
    pieces, position = [], 0
    for marker in sorted(deferred, key=xml.index):
        at = xml.index(marker)
        start = xml.rindex("<w:tr>", 0, at)
        pieces += [xml[position:start], deferred[marker]]
        position = xml.index("</w:tr>", at) + len("</w:tr>")
    pieces.append(xml[position:])
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            data = (
                "".join(pieces).encode("utf-8") if item.filename == "word/document.xml" else source.read(item)
            )
            target.writestr(item, data, compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


def _annex(document: object, annex: ET.Element, first: bool) -> None:
    """An annex: the first opens a landscape section (page numbers go on), later ones a page."""
    if first:
        section = document.add_section(WD_SECTION.NEW_PAGE)  # type: ignore[attr-defined]
        _page(section, landscape=True)
        section.different_first_page_header_footer = False
    else:
        document.add_paragraph().add_run().add_break(WD_BREAK.PAGE)  # type: ignore[attr-defined]
    for child in annex:
        if child.tag in ("label", "title"):
            _centred(document, child, bold=True)
        elif child.tag == "ref":
            _centred(document, child, italic=True).paragraph_format.space_after = Pt(12)
        else:
            _BLOCKS[child.tag](document, child, ANNEX_MM)


def _kind(document: object, element: ET.Element) -> None:
    paragraph = document.add_paragraph()  # type: ignore[attr-defined]
    paragraph.alignment = CENTER
    paragraph.paragraph_format.space_before = Pt(18)
    paragraph.paragraph_format.space_after = Pt(0)
    paragraph.paragraph_format.keep_with_next = True
    _runs(paragraph, element, bold=True)


def _subject(document: object, element: ET.Element) -> None:
    paragraph = document.add_paragraph()  # type: ignore[attr-defined]
    paragraph.alignment = CENTER
    paragraph.paragraph_format.space_after = Pt(0)
    paragraph.paragraph_format.keep_with_next = True
    _runs(paragraph, element, bold=True)
    rule = document.add_paragraph()  # type: ignore[attr-defined]
    _rule(rule, RULE_MM["subject"], BODY_MM)
    rule.paragraph_format.space_after = Pt(12)


_BLOCKS: dict[str, Callable[[object, ET.Element, float], None]] = {
    "h1": lambda d, e, _w: _heading(d, e, 1),
    "h2": lambda d, e, _w: _heading(d, e, 2),
    "h3": lambda d, e, _w: _heading(d, e, 3),
    "p": lambda d, e, _w: _body_paragraph(d, e),
    "table": _table,
    "kind": lambda d, e, _w: _kind(d, e),
    "subject": lambda d, e, _w: _subject(d, e),
    "masthead": lambda d, e, _w: _masthead(d, e),
    "closing": lambda d, e, _w: _closing(d, e),
}


def write_docx(outline: ET.Element) -> bytes:
    _DEFERRED.set({})
    document = Document()
    _set_font(document)
    _properties(document, outline)
    section = document.sections[0]
    _page(section)
    _page_numbers(section)
    # python-docx starts with one empty paragraph: the masthead table comes first.
    body = document.element.body
    for paragraph in list(body.iterchildren(qn("w:p"))):
        body.remove(paragraph)
    annexes = 0
    for element in outline:
        if element.tag == "annex":
            _annex(document, element, annexes == 0)
            annexes += 1
        elif element.tag in _BLOCKS:
            _BLOCKS[element.tag](document, element, BODY_MM)
    buffer = io.BytesIO()
    document.save(buffer)
    deferred = _DEFERRED.get()
    return _splice(buffer.getvalue(), deferred) if deferred else buffer.getvalue()
