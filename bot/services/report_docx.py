"""Lay out the Word report (Decree 30/2020/NĐ-CP) from the XML outline that
templates/report.docx.xml renders: the template says what is written, this module how.

A4; margins top/bottom 20 mm, left 30 mm, right 15 mm; Times New Roman; the masthead as a
borderless two-column table (issuing body and number left, national title, motto, place and
date right); page numbers centred in the top margin from page 2; the annex tables are built
as raw XML rows because python-docx's add_row is too slow for ten thousand tasks.
"""

from __future__ import annotations

import copy
import io
import xml.etree.ElementTree as ET

from docx import Document
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_BREAK
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Mm, Pt
from docx.table import Table
from docx.text.paragraph import Paragraph

FONT = "Times New Roman"
CENTER = WD_ALIGN_PARAGRAPH.CENTER
JUSTIFY = WD_ALIGN_PARAGRAPH.JUSTIFY


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


def _set_font(document: object) -> None:
    style = document.styles["Normal"]  # type: ignore[attr-defined]
    style.font.name = FONT
    style.font.size = Pt(14)
    fonts = style.element.get_or_add_rPr().get_or_add_rFonts()
    for attr in ("w:ascii", "w:hAnsi", "w:eastAsia", "w:cs"):
        fonts.set(qn(attr), FONT)
    paragraph_format = style.paragraph_format
    paragraph_format.space_after = Pt(6)
    paragraph_format.space_before = Pt(0)
    paragraph_format.line_spacing = 1.15


def _page(section: object) -> None:
    section.page_width, section.page_height = Mm(210), Mm(297)  # type: ignore[attr-defined]
    section.top_margin = section.bottom_margin = Mm(20)  # type: ignore[attr-defined]
    section.left_margin, section.right_margin = Mm(30), Mm(15)  # type: ignore[attr-defined]
    section.header_distance = Mm(10)  # type: ignore[attr-defined]


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


def _widths(table: Table, widths_mm: list[float]) -> None:
    """Fix the column widths (Word and LibreOffice follow the grid, not only the cells)."""
    table.autofit = False
    layout = OxmlElement("w:tblLayout")
    layout.set(qn("w:type"), "fixed")
    table._tbl.tblPr.append(layout)
    for grid_col, width in zip(table._tbl.tblGrid.gridCol_lst, widths_mm, strict=False):
        grid_col.w = Mm(width)
    for row in table.rows:
        for cell, width in zip(row.cells, widths_mm, strict=False):
            cell.width = Mm(width)


def _no_borders(table: Table) -> None:
    borders = OxmlElement("w:tblBorders")
    for edge in ("top", "left", "bottom", "right", "insideH", "insideV"):
        element = OxmlElement(f"w:{edge}")
        element.set(qn("w:val"), "nil")
        borders.append(element)
    table._tbl.tblPr.append(borders)


def _cell_paragraph(cell: object, first: bool) -> Paragraph:
    return cell.paragraphs[0] if first else cell.add_paragraph()  # type: ignore[attr-defined]


def _masthead(document: object, masthead: ET.Element) -> None:
    table = document.add_table(rows=1, cols=2)  # type: ignore[attr-defined]
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    _no_borders(table)
    # Wider than the text block (centred, a few mm into each margin), as ministries lay it out:
    # the parent body and the national title each fit on one line at 12 pt.
    _widths(table, [74, 100])
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
        paragraph.paragraph_format.space_after = Pt(2 if tag not in ("body", "motto") else 8)
        _runs(paragraph, element, bold=bold, italic=tag == "placedate", size=size)


def _heading(document: object, element: ET.Element, level: int) -> None:
    paragraph = document.add_paragraph()  # type: ignore[attr-defined]
    paragraph.paragraph_format.space_before = Pt(6)
    paragraph.paragraph_format.keep_with_next = True
    _runs(paragraph, element, bold=level < 3, italic=level == 3)


def _body_paragraph(document: object, element: ET.Element) -> None:
    paragraph = document.add_paragraph()  # type: ignore[attr-defined]
    paragraph.alignment = JUSTIFY
    paragraph.paragraph_format.first_line_indent = Mm(10)
    _runs(paragraph, element)


def _closing(document: object, closing: ET.Element) -> None:
    table = document.add_table(rows=1, cols=2)  # type: ignore[attr-defined]
    _no_borders(table)
    _widths(table, [85, 80])
    left, right = table.rows[0].cells
    recipients = closing.find("recipients")
    first = True
    if recipients is not None:
        for child in recipients:
            paragraph = _cell_paragraph(left, first)
            first = False
            paragraph.paragraph_format.space_after = Pt(0)
            if child.tag == "title":
                _runs(paragraph, child, bold=True, italic=True, size=12)
            else:
                _runs(paragraph, child, size=11)
    signer = closing.find("signer")
    if signer is not None:
        title = _cell_paragraph(right, True)
        title.alignment = CENTER
        _runs(title, _child(signer, "title"), bold=True)
        for _ in range(3):
            _cell_paragraph(right, False)
        name = _cell_paragraph(right, False)
        name.alignment = CENTER
        _runs(name, _child(signer, "name"), bold=True)


def _fast_table(document: object, table_element: ET.Element, widths_mm: list[float]) -> None:
    rows = table_element.findall("tr")
    if not rows:
        return
    head = rows[0]
    columns = len(list(head))
    table = document.add_table(rows=1, cols=columns)  # type: ignore[attr-defined]
    table.style = "Table Grid"
    _widths(table, widths_mm)
    for cell, text_element in zip(table.rows[0].cells, head, strict=False):
        paragraph = cell.paragraphs[0]
        paragraph.alignment = CENTER
        _runs(paragraph, text_element, bold=True, size=11)
    # Repeat the heading row on every page.
    tr_pr = table.rows[0]._tr.get_or_add_trPr()
    repeat = OxmlElement("w:tblHeader")
    tr_pr.append(repeat)
    # A template row: one cell per column with its width and an 11 pt run, copied per task.
    template = OxmlElement("w:tr")
    for width in widths_mm[:columns]:
        tc = OxmlElement("w:tc")
        tc_pr = OxmlElement("w:tcPr")
        tc_w = OxmlElement("w:tcW")
        tc_w.set(qn("w:w"), str(int(width * 56.7)))
        tc_w.set(qn("w:type"), "dxa")
        tc_pr.append(tc_w)
        tc.append(tc_pr)
        p = OxmlElement("w:p")
        p_pr = OxmlElement("w:pPr")
        spacing = OxmlElement("w:spacing")
        spacing.set(qn("w:after"), "0")
        p_pr.append(spacing)
        p.append(p_pr)
        r = OxmlElement("w:r")
        r_pr = OxmlElement("w:rPr")
        sz = OxmlElement("w:sz")
        sz.set(qn("w:val"), "22")
        r_pr.append(sz)
        r.append(r_pr)
        t = OxmlElement("w:t")
        t.set("{http://www.w3.org/XML/1998/namespace}space", "preserve")
        r.append(t)
        p.append(r)
        tc.append(p)
        template.append(tc)
    tbl = table._tbl
    t_tag = qn("w:t")
    for row in rows[1:]:
        tr = copy.deepcopy(template)
        for text_node, cell in zip(tr.iter(t_tag), row, strict=False):
            text_node.text = _text(cell)
        tbl.append(tr)


def _annex(document: object, annex: ET.Element) -> None:
    paragraph = document.add_paragraph()  # type: ignore[attr-defined]
    paragraph.add_run().add_break(WD_BREAK.PAGE)
    for child in annex:
        if child.tag == "title":
            p = document.add_paragraph()  # type: ignore[attr-defined]
            p.alignment = CENTER
            _runs(p, child, bold=True)
        elif child.tag == "subject":
            p = document.add_paragraph()  # type: ignore[attr-defined]
            p.alignment = CENTER
            _runs(p, child, italic=True)
        elif child.tag == "group":
            heading = child.find("title")
            if heading is not None:
                _heading(document, heading, 2)
            table = child.find("table")
            if table is not None:
                _fast_table(document, table, [12, 58, 20, 22, 25, 28])


def write_docx(outline: ET.Element) -> bytes:
    document = Document()
    _set_font(document)
    section = document.sections[0]
    _page(section)
    _page_numbers(section)
    # python-docx starts with one empty paragraph: the masthead table comes first.
    body = document.element.body
    for paragraph in list(body.iterchildren(qn("w:p"))):
        body.remove(paragraph)
    for element in outline:
        tag = element.tag
        if tag == "masthead":
            _masthead(document, element)
        elif tag == "kind":
            paragraph = document.add_paragraph()
            paragraph.alignment = CENTER
            paragraph.paragraph_format.space_before = Pt(18)
            paragraph.paragraph_format.space_after = Pt(0)
            _runs(paragraph, element, bold=True)
        elif tag == "subject":
            paragraph = document.add_paragraph()
            paragraph.alignment = CENTER
            paragraph.paragraph_format.space_after = Pt(18)
            _runs(paragraph, element, bold=True)
        elif tag in ("h1", "h2", "h3"):
            _heading(document, element, int(tag[1]))
        elif tag == "p":
            _body_paragraph(document, element)
        elif tag == "closing":
            _closing(document, element)
        elif tag == "annex":
            _annex(document, element)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()
