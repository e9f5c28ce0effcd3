"""The Word report against Decree 30/2020/NĐ-CP (Appendix I), read back from the DOCX XML, and
the parts of a ministry report drawn from the data; the digest, spreadsheet and HTML as a
reader meets them."""

from __future__ import annotations

import dataclasses
import io
import itertools
import re
import zipfile
from datetime import date

import pytest
from docx import Document
from docx.enum.section import WD_ORIENT
from docx.oxml.ns import qn
from openpyxl import load_workbook

from bot.config import Config
from bot.i18n import I18n
from bot.services.periods import period_rule
from bot.services.report_data import (
    Issue,
    ProgrammeRef,
    ReportBuilder,
    ReportData,
    TaskLine,
    UnitRef,
    addressee,
    proposals,
    shortcomings,
)
from bot.services.report_docx import TBLPR_ORDER
from bot.services.report_render import ReportRenderer, decree_date, letter
from bot.services.report_xlsx import is_risky
from bot.services.status import StatusClass as S
from storage.db import Database
from tests.report_fixture import load_fixture
from tests.support.botapi import parse_html

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
PROGRAMME = ProgrammeRef(
    code="QD-59-BKHCN-2024",
    short_code="CTHĐ-59",
    title="Chương trình hành động của Bộ Khoa học và Công nghệ năm 2024",
    decision="59/QĐ-BKHCN",
    decision_date=date(2024, 1, 19),
    issuer="Bộ trưởng Bộ Khoa học và Công nghệ",
)


@pytest.fixture
async def data(db: Database, config: Config) -> ReportData:
    await load_fixture(db, config)
    rules = period_rule(config)
    return await ReportBuilder(db, rules, config.tz).build(rules.by_key("2024-W05"))


@pytest.fixture
def signed(config: Config) -> Config:
    digest = dataclasses.replace(
        config.digest,
        signer_authority="KT. BỘ TRƯỞNG",
        signer_title="THỨ TRƯỞNG",
        signer_name="Trần Văn Bình",
        recipients=["Bộ trưởng (để báo cáo);", "Các Thứ trưởng", "Lưu: VT, VP."],
    )
    return dataclasses.replace(config, digest=digest)


def _docx(config: Config, data: ReportData) -> bytes:
    return ReportRenderer(config, I18n("vi")).docx(data)


def _xml(blob: bytes, member: str = "word/document.xml") -> str:
    with zipfile.ZipFile(io.BytesIO(blob)) as archive:
        return archive.read(member).decode("utf-8")


def _texts(document: object) -> list[str]:
    texts = [p.text for p in document.paragraphs]  # type: ignore[attr-defined]
    for table in document.tables:  # type: ignore[attr-defined]
        for row in table.rows:
            for cell in row.cells:
                texts.extend(p.text for p in cell.paragraphs)
    return texts


def _is_rule(paragraph: object) -> bool:
    p_pr = paragraph._p.pPr  # type: ignore[attr-defined]
    if p_pr is None or paragraph.text:  # type: ignore[attr-defined]
        return False
    bottom = p_pr.find(f"{qn('w:pBdr')}/{qn('w:bottom')}")
    return bottom is not None and bottom.get(qn("w:val")) == "single"


def _followed_by_rule(paragraphs: list, text: str) -> bool:
    for here, after in itertools.pairwise(paragraphs):
        if here.text == text:
            return _is_rule(after)
    raise AssertionError(f"no paragraph {text!r}")


def test_short_solid_lines_under_body_motto_and_subject(data: ReportData, config: Config) -> None:
    document = Document(io.BytesIO(_docx(config, data)))
    left, right = document.tables[0].rows[0].cells
    assert _followed_by_rule(left.paragraphs, config.digest.issuing_body)
    assert _followed_by_rule(right.paragraphs, "Độc lập - Tự do - Hạnh phúc")
    subject = "Tình hình thực hiện chương trình hành động tuần từ 25/01 đến 01/02/2024"
    assert _followed_by_rule(document.paragraphs, subject)
    # Short: a third to a half of the text above it, not a full-width border.
    rule = next(p for p in document.paragraphs if _is_rule(p))
    width = 165 - rule.paragraph_format.left_indent.mm - rule.paragraph_format.right_indent.mm
    assert 40 <= width <= 80


def test_dates_pad_days_below_ten_and_months_one_and_two_only() -> None:
    assert decree_date(date(2024, 1, 26)) == ("26", "01", "2024")
    assert decree_date(date(2024, 2, 5)) == ("05", "02", "2024")
    assert decree_date(date(2024, 5, 5)) == ("05", "5", "2024")
    assert decree_date(date(2024, 12, 10)) == ("10", "12", "2024")


def test_place_and_date_line_in_may(data: ReportData, config: Config) -> None:
    may = dataclasses.replace(data, end=date(2024, 5, 5))
    document = Document(io.BytesIO(_docx(config, may)))
    right = document.tables[0].rows[0].cells[1]
    assert "Hà Nội, ngày 05 tháng 5 năm 2024" in [p.text for p in right.paragraphs]


def test_vietnamese_lettering(data: ReportData, config: Config) -> None:
    assert [letter(i) for i in range(10)] == ["a", "b", "c", "d", "đ", "e", "g", "h", "i", "k"]
    many = dataclasses.replace(data, groups=data.groups * 3)  # six task groups
    texts = _texts(Document(io.BytesIO(_docx(config, many))))
    headings = [t[:2] for t in texts if re.match(r"^[a-zđ]\) Nhóm ", t)]
    assert headings == ["a)", "b)", "c)", "d)", "đ)", "e)"]


def test_recipients_signer_and_authority(data: ReportData, signed: Config) -> None:
    document = Document(io.BytesIO(_docx(signed, data)))
    closing = next(t for t in document.tables if t.rows[0].cells[0].paragraphs[0].text == "Nơi nhận:")
    left, right = closing.rows[0].cells
    assert [p.text for p in left.paragraphs] == [
        "Nơi nhận:",
        "- Bộ trưởng (để báo cáo);",
        "- Các Thứ trưởng;",
        "- Lưu: VT, VP.",
    ]
    title = left.paragraphs[0].runs[0]
    assert title.bold and title.italic and title.font.size.pt == 12
    assert left.paragraphs[1].runs[0].font.size.pt == 11
    signer = [p.text for p in right.paragraphs if p.text]
    assert signer == ["KT. BỘ TRƯỞNG", "THỨ TRƯỞNG", "Trần Văn Bình"]


def test_signature_stays_with_the_text_before_it(data: ReportData, config: Config) -> None:
    xml = _xml(_docx(config, data))
    body = xml[xml.index("<w:body>") :]
    closing_at = body.index("Nơi nhận:")
    table_start = body.rindex("<w:tbl>", 0, closing_at)
    before = body[:table_start]
    last_paragraphs = re.findall(r"<w:p>.*?</w:p>|<w:p .*?</w:p>", before[-4000:], re.S)[-2:]
    assert all("<w:keepNext/>" in p for p in last_paragraphs)
    closing = body[table_start : body.index("</w:tbl>", closing_at)]
    assert "<w:cantSplit/>" in closing


def test_annexes_are_landscape_numbered_and_attached(data: ReportData, config: Config) -> None:
    document = Document(io.BytesIO(_docx(config, data)))
    body, annex = document.sections[0], document.sections[-1]
    assert body.orientation == WD_ORIENT.PORTRAIT
    assert annex.orientation == WD_ORIENT.LANDSCAPE
    assert (round(annex.page_width.mm), round(annex.page_height.mm)) == (297, 210)
    texts = [p.text for p in document.paragraphs]
    assert "Phụ lục I" in texts and "Phụ lục II" in texts
    assert texts.count("(Kèm theo Báo cáo số …/BC-VP ngày 01/02/2024 của Văn phòng Bộ)") == 2
    head = next(t for t in document.tables if t.rows[0].cells[0].text == "Mã").rows[0]
    assert [c.text for c in head.cells] == [
        "Mã",
        "Nhiệm vụ",
        "Đơn vị chủ trì",
        "Đơn vị phối hợp",
        "Thời hạn",
        "Tình trạng",
        "Tiến độ (%)",
        "Kết quả trong kỳ",
    ]
    # The annex starts on a page of its own, the page numbers continue on it.
    assert not annex.different_first_page_header_footer


def test_metadata_and_language(data: ReportData, config: Config) -> None:
    blob = _docx(config, data)
    props = Document(io.BytesIO(blob)).core_properties
    assert props.author == "Văn phòng Bộ" and props.last_modified_by == "Văn phòng Bộ"
    assert props.created.date() == date(2024, 2, 1)
    assert props.title.startswith("Tình hình thực hiện")
    styles = _xml(blob, "word/styles.xml")
    assert 'w:val="vi-VN"' in styles and "en-US" not in styles


def test_table_properties_in_schema_order(data: ReportData, config: Config) -> None:
    import xml.etree.ElementTree as ET

    root = ET.fromstring(_xml(_docx(config, data)))
    tables = root.iter(f"{W}tblPr")
    count = 0
    for tbl_pr in tables:
        names = [child.tag.removeprefix(W) for child in tbl_pr]
        assert names.count("tblLayout") <= 1 and names.count("tblBorders") <= 1, names
        ranks = [TBLPR_ORDER.index(n) for n in names]
        assert ranks == sorted(ranks), names
        count += 1
    assert count >= 4


def test_opening_cites_the_programme_decision(data: ReportData, config: Config) -> None:
    with_programme = dataclasses.replace(data, programme=PROGRAMME)
    texts = _texts(Document(io.BytesIO(_docx(config, with_programme))))
    assert (
        "Thực hiện Quyết định số 59/QĐ-BKHCN ngày 19/01/2024 của Bộ trưởng Bộ Khoa học và Công nghệ "
        "ban hành Chương trình hành động của Bộ Khoa học và Công nghệ năm 2024, Văn phòng Bộ báo cáo "
        "tình hình thực hiện tuần từ 25/01 đến 01/02/2024 như sau:"
    ) in texts
    # Without a programme record: the configured name, no decision.
    plain = _texts(Document(io.BytesIO(_docx(config, data))))
    assert (
        "Văn phòng Bộ báo cáo tình hình thực hiện chương trình hành động tuần từ 25/01 đến "
        "01/02/2024 như sau:"
    ) in plain


@pytest.mark.parametrize(
    ("key", "name"),
    [("2025-01", "tháng 01/2025"), ("2025-Q1", "quý I/2025"), ("2024-12", "tháng 12/2024")],
)
def test_periods_have_human_names(data: ReportData, config: Config, key: str, name: str) -> None:
    renderer = ReportRenderer(config, I18n("vi"))
    monthly = dataclasses.replace(data, period=key)
    assert renderer.period_name(monthly) == name
    assert f"<b>Báo cáo tiến độ {name}</b>" in renderer.telegram(monthly)[0]
    assert key not in renderer.html(monthly)


def test_results_targets_units_priorities_and_sections(data: ReportData, config: Config) -> None:
    texts = _texts(Document(io.BytesIO(_docx(config, data))))
    joined = "\n".join(texts)
    # I. results by group with the target against the value achieved, and a table by unit.
    assert "- T6 Tỷ lệ giải quyết: đạt 80/85% (94,1 %)." in texts
    assert "Vụ Pháp chế <PC>" in texts and "3. Kết quả theo đơn vị chủ trì" in texts
    # II. with the office's slot for causes; III. tasks coming due; IV. proposals.
    assert "[Văn phòng bổ sung nguyên nhân khách quan, chủ quan trước khi trình ký.]" in texts
    assert "1. Không có nhiệm vụ đến hạn từ nay đến ngày 02/03/2024." in texts
    assert "2. Đôn đốc các đơn vị hoàn thành 2 nhiệm vụ đã quá hạn." in texts
    assert "- Thiếu kinh phí & nhân lực (nhiệm vụ T5)." in texts
    assert "- Đề nghị bổ sung <kinh phí> năm 2024 (nhiệm vụ T5)." in texts
    assert ".." not in joined


async def test_priorities_are_the_tasks_coming_due(db: Database, config: Config) -> None:
    await load_fixture(db, config)
    rules = period_rule(config)
    # As of 2024-W04's cut-off (25/01), T1 … T6 all fall due within thirty days.
    data = await ReportBuilder(db, rules, config.tz).build(rules.by_key("2024-W04"))
    assert [t.code for t in data.priorities] == ["T6", "T1", "T2", "T4", "T3"]
    texts = _texts(Document(io.BytesIO(_docx(config, data))))
    assert "1. Tập trung hoàn thành các nhiệm vụ đến hạn từ nay đến ngày 24/02/2024:" in texts
    assert "- T6 Kiểm tra ngân sách (Cục Đổi mới sáng tạo; thời hạn 29/01/2024)." in texts


def test_unchanged_flag_is_written(data: ReportData, config: Config) -> None:
    group = data.groups[0]
    flagged = dataclasses.replace(group.tasks[0], unchanged=True)
    changed = dataclasses.replace(
        data, groups=[dataclasses.replace(group, tasks=[flagged, *group.tasks[1:]]), *data.groups[1:]]
    )
    texts = _texts(Document(io.BytesIO(_docx(config, changed))))
    assert any(t.endswith("Không thay đổi so với kỳ trước") for t in texts)
    assert "Có 1 nhiệm vụ được báo cáo không thay đổi so với kỳ trước." in texts


def _line(code: str, difficulties: str = "", proposal: str = "", status: S = S.OPEN_OVERDUE) -> TaskLine:
    return TaskLine(
        code, code, "1", UnitRef("A", "A"), (), None, status, None, "stuck", 10, True, "",
        difficulties, proposal, difficulties, proposal, "", None, None, None, None,
    )  # fmt: skip


def test_difficulties_grouped_and_proposals_by_addressee() -> None:
    lines = [
        _line("1.1", "Thiếu kinh phí; chưa có hướng dẫn.", "Đề nghị Bộ Tài chính bố trí kinh phí."),
        _line("1.2", "thiếu kinh phí", "Đề nghị Bộ Tài chính bố trí kinh phí"),
        _line("1.3", "Chưa có hướng dẫn", "Đề nghị Văn phòng Bộ đôn đốc các đơn vị."),
        _line("1.4", "Thiếu nhân lực", "Đề nghị bổ sung nhân lực"),
        _line("1.5", "Đã xong", "Đề nghị khen thưởng", status=S.DONE_LATE),  # completed: left out
    ]
    assert shortcomings(lines) == [
        Issue("Thiếu kinh phí", ("1.1", "1.2")),
        Issue("Chưa có hướng dẫn", ("1.1", "1.3")),
        Issue("Thiếu nhân lực", ("1.4",)),
    ]
    groups = proposals(lines)
    assert [g.addressee for g in groups] == ["Bộ Tài chính", "Văn phòng Bộ", ""]
    assert groups[0].items == [Issue("Đề nghị Bộ Tài chính bố trí kinh phí", ("1.1", "1.2"))]
    assert addressee("Kiến nghị Lãnh đạo Bộ xem xét, cho phép gia hạn") == "Lãnh đạo Bộ"


def test_digest_at_national_scale_is_one_screen(data: ReportData, config: Config) -> None:
    """10,000 tasks over 1,250 groups of lines: still one short message."""
    renderer = ReportRenderer(config, I18n("vi"))
    big_groups = [
        dataclasses.replace(g, tasks=g.tasks * 1250, counts=dataclasses.replace(g.counts))
        for g in data.groups
    ]
    big = dataclasses.replace(
        data,
        groups=big_groups,
        totals=dataclasses.replace(data.totals, open_within=9994, open_overdue=1234),
        overdue_by_unit=data.overdue_by_unit * 400,
        compliance=dataclasses.replace(data.compliance, silent=data.compliance.silent * 900),
    )
    (message,) = renderer.telegram(big)
    text, _ = parse_html(message)
    assert len(text) <= 1200
    assert "trong hạn 9.994, quá hạn 1.234" in text


def test_spreadsheet_never_holds_a_formula(data: ReportData, config: Config) -> None:
    evil = ['=HYPERLINK("http://x.example","bấm")', "+1+1", "-2+3", "@SUM(A1)", "\tlệnh", "\rlệnh"]
    group = data.groups[0]
    tasks = [
        dataclasses.replace(task, title=evil[i % len(evil)], results=evil[(i + 1) % len(evil)])
        for i, task in enumerate(group.tasks)
    ]
    poisoned = dataclasses.replace(data, groups=[dataclasses.replace(group, tasks=tasks), *data.groups[1:]])
    blob = ReportRenderer(config, I18n("vi")).xlsx(poisoned)
    with zipfile.ZipFile(io.BytesIO(blob)) as archive:
        for name in archive.namelist():
            if name.startswith("xl/worksheets/"):
                assert "<f>" not in archive.read(name).decode("utf-8")
    book = load_workbook(io.BytesIO(blob))
    sheet = book["Nhiệm vụ"]
    titles = {}
    for row in sheet.iter_rows(min_row=4):
        assert all(cell.data_type != "f" for cell in row)
        titles[row[0].value] = row[1]
    hyperlink = titles[group.tasks[0].code]
    assert hyperlink.value == evil[0] and hyperlink.data_type == "s" and hyperlink.quotePrefix
    assert all(is_risky(e) for e in evil) and not is_risky("Đề nghị")


def test_spreadsheet_reads_and_prints(data: ReportData, config: Config) -> None:
    book = load_workbook(io.BytesIO(ReportRenderer(config, I18n("vi")).xlsx(data)))
    sheet = book["Nhiệm vụ"]
    assert sheet["A1"].value == "Chương trình hành động — tuần từ 25/01 đến 01/02/2024"
    assert sheet.freeze_panes == "C4" and sheet.auto_filter.ref.startswith("A3:")
    assert sheet.column_dimensions["B"].width >= 40 and sheet["B4"].alignment.wrap_text
    deadline = next(c for c in sheet["F"][3:] if c.is_date)
    assert deadline.number_format == "dd/mm/yyyy"
    assert sheet.page_setup.orientation == "landscape" and sheet.sheet_properties.pageSetUpPr.fitToPage
    assert sheet.page_setup.fitToHeight == 0 and sheet.print_title_rows == "$3:$3"
    totals = book["Tổng hợp"]
    rate = next(c for row in totals.iter_rows() for c in row if isinstance(c.value, float))
    assert rate.number_format == "0.0%"


def test_printable_html(data: ReportData, signed: Config) -> None:
    page = ReportRenderer(signed, I18n("vi")).html(data)
    assert '<b class="nowrap">CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM</b>' in page
    assert ".nowrap { white-space: nowrap; }" in page
    assert "counter(page)" in page and "@page :first" in page
    assert page.count("<thead>") == page.count("<table>") > 2
    assert "Trần Văn Bình" in page and "KT. BỘ TRƯỞNG" in page and "- Lưu: VT, VP.<br>" in page
    assert ". ." not in page and ".." not in re.sub(r"<[^>]+>", "", page).replace("…", "")
