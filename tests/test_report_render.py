"""Every format renders the same computed data; Word and Excel are opened and read back."""

from __future__ import annotations

import dataclasses
import io
import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
from docx import Document
from docx.shared import Mm
from openpyxl import load_workbook

from bot.config import Config
from bot.i18n import I18n
from bot.services.periods import period_rule
from bot.services.report_data import Counts, ReportBuilder, ReportData
from bot.services.report_render import ReportRenderer, split_blocks, utf16_length
from storage.db import Database
from tests.report_fixture import SPECIAL, load_fixture
from tests.support.botapi import parse_html

PROPOSAL = "Đề nghị bổ sung <kinh phí> năm 2024"
DIFFICULTY = "Thiếu kinh phí & nhân lực"


@pytest.fixture
async def data(db: Database, config: Config) -> ReportData:
    await load_fixture(db, config)
    rules = period_rule(config)
    return await ReportBuilder(db, rules, config.tz).build(rules.by_key("2024-W05"))


@pytest.fixture
def renderer(config: Config) -> ReportRenderer:
    return ReportRenderer(config, I18n("vi"))


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_text(source: str) -> str:
    parser = _Text()
    parser.feed(source)
    return "".join(parser.parts)


def test_telegram_digest_is_short_valid_html_with_user_text_escaped(
    data: ReportData, renderer: ReportRenderer
) -> None:
    (message,) = renderer.telegram(data)
    text, _entities = parse_html(message)  # Telegram's own rules: raises on a bad tag
    assert text.startswith("Báo cáo tiến độ tuần từ 25/01 đến 01/02/2024\n")  # no "2024-W05"
    assert (
        "Tổng số 8 nhiệm vụ. Đã hoàn thành 3 (đúng hạn 2, quá hạn 1) · "
        "Chưa hoàn thành 5 (trong hạn 3, quá hạn 2)"
    ) in text
    assert "Tỷ lệ hoàn thành (trên nhiệm vụ đã đến hạn): 60,0 % (3/5)" in text
    assert "Đơn vị đã báo cáo: 3/4" in text
    # Overdue tasks by lead unit, each with a short title.
    assert "B (1): T4 Sửa đổi Luật" in text and "C (1): T6 Kiểm tra ngân sách" in text
    assert PROPOSAL in text and "&lt;kinh phí&gt;" in message
    assert "Chưa báo cáo (1): D" in text


def test_html_page_escapes_and_keeps_vietnamese(data: ReportData, renderer: ReportRenderer) -> None:
    page = renderer.html(data)
    assert "Kiểm tra &lt;b&gt;thẻ&lt;/b&gt; &amp; ký tự" in page
    text = html_text(page)
    assert SPECIAL in text and PROPOSAL in text and DIFFICULTY in text
    assert "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM" in text and "Nhóm hai <pháp luật>" in text


def test_json_is_the_computed_data(data: ReportData, renderer: ReportRenderer) -> None:
    loaded = json.loads(renderer.json(data))
    assert loaded["period"] == "2024-W05"
    assert loaded["totals"]["done_late"] == 1 and loaded["totals"]["rate"] == 0.6
    titles = {t["code"]: t["title"] for g in loaded["groups"] for t in g["tasks"]}
    assert titles["T3"] == SPECIAL
    assert loaded["stuck"][0]["proposals"] == PROPOSAL
    assert [u["code"] for u in loaded["compliance"]["silent"]] == ["D"]


def _paragraph_texts(document: object) -> list[str]:
    texts = [p.text for p in document.paragraphs]  # type: ignore[attr-defined]
    for table in document.tables:  # type: ignore[attr-defined]
        for row in table.rows:
            for cell in row.cells:
                texts.extend(p.text for p in cell.paragraphs)
    return texts


def test_docx_follows_decree_30(data: ReportData, renderer: ReportRenderer, config: Config) -> None:
    document = Document(io.BytesIO(renderer.docx(data)))
    section = document.sections[0]
    assert (round(section.page_width.mm), round(section.page_height.mm)) == (210, 297)
    assert 20 <= round(section.top_margin.mm) <= 25 and 20 <= round(section.bottom_margin.mm) <= 25
    assert 30 <= round(section.left_margin.mm) <= 35 and 15 <= round(section.right_margin.mm) <= 20
    assert document.styles["Normal"].font.name == "Times New Roman"
    # Page numbers: centred PAGE field in the header, not on the first page.
    assert section.different_first_page_header_footer
    assert 'w:instr="PAGE"' in section.header._element.xml
    texts = _paragraph_texts(document)
    joined = "\n".join(texts)
    masthead = document.tables[0]
    left, right = ([p for p in cell.paragraphs if p.text] for cell in masthead.rows[0].cells)
    assert [p.text for p in left][:2] == [config.digest.parent_body, config.digest.issuing_body]
    assert left[2].text.startswith("Số:") and left[2].text.endswith("/BC-VP")
    nation, motto, place = right[:3]
    assert nation.text == "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM" and nation.runs[0].bold
    assert motto.text == "Độc lập - Tự do - Hạnh phúc" and motto.runs[0].bold
    assert place.text == "Hà Nội, ngày 01 tháng 02 năm 2024" and place.runs[0].italic
    kind = next(p for p in document.paragraphs if p.text == "BÁO CÁO")
    assert kind.runs[0].bold
    assert any(
        p.text == "Tình hình thực hiện chương trình hành động tuần từ 25/01 đến 01/02/2024"
        for p in document.paragraphs
    )
    for heading in (
        "I. KẾT QUẢ THỰC HIỆN",
        "1. Kết quả chung",
        "a) Đã hoàn thành đúng hạn: 2 nhiệm vụ;",
        "II. TỒN TẠI, HẠN CHẾ VÀ NGUYÊN NHÂN",
        "III. NHIỆM VỤ TRỌNG TÂM KỲ TỚI",
        "IV. ĐỀ XUẤT, KIẾN NGHỊ",
        "Nơi nhận:",
        config.digest.signer_title,
        "Phụ lục I",
    ):
        assert heading in joined, heading
    assert SPECIAL in joined and PROPOSAL in joined and DIFFICULTY in joined
    # Annex I: one table per task group, a row per task, in the group's order.
    annex = [t for t in document.tables if t.rows[0].cells[0].text == "Mã"]
    assert len(annex) == len(data.groups) + 1  # and Annex II, the targets
    for table, group in zip(annex, data.groups, strict=False):
        assert [row.cells[0].text for row in table.rows[1:]] == [t.code for t in group.tasks]
    t3 = next(row for row in annex[1].rows if row.cells[0].text == "T3")
    assert t3.cells[1].text == SPECIAL and t3.cells[5].text == "Chưa hoàn thành, trong hạn"
    t4 = next(row for row in annex[1].rows if row.cells[0].text == "T4")
    assert t4.cells[3].text == "C"  # coordinating units
    assert annex[0].columns[1].width is None or annex[0].columns[1].width > Mm(40)


def test_xlsx_holds_every_task_and_the_totals(data: ReportData, renderer: ReportRenderer) -> None:
    book = load_workbook(io.BytesIO(renderer.xlsx(data)))
    tasks, totals = book["Nhiệm vụ"], book["Tổng hợp"]
    rows = list(tasks.iter_rows(values_only=True))
    assert rows[0][0] == "Chương trình hành động — tuần từ 25/01 đến 01/02/2024"
    assert rows[2][:3] == ("Mã", "Nhiệm vụ", "Nhóm")
    by_code = {row[0]: row for row in rows[3:]}
    assert sorted(by_code) == [f"T{i}" for i in range(1, 9)]
    assert by_code["T3"][1] == SPECIAL
    assert by_code["T2"][6] == "Đã hoàn thành quá hạn"
    t5 = by_code["T5"]
    assert t5[12] == DIFFICULTY and t5[13] == PROPOSAL and t5[7] == "Gặp vướng mắc"
    assert by_code["T6"][15] == "Tỷ lệ giải quyết 85%" and by_code["T6"][16] == 80.0
    summary = list(totals.iter_rows(values_only=True))
    group_rows = {row[0]: row for row in summary if row and row[0]}
    assert group_rows["1. Nhóm một: tài chính & ngân sách"][1:6] == (2, 1, 0, 1, 4)
    assert group_rows["Tổng số"][1:7] == (2, 1, 3, 2, 8, 0.6)
    assert group_rows["B — Vụ Pháp chế <PC>"][1:6] == (0, 0, 1, 1, 2)


def test_png_chart_reads_on_a_phone(data: ReportData, renderer: ReportRenderer) -> None:
    from matplotlib.image import imread

    image = imread(io.BytesIO(renderer.png(data)), format="png")
    assert image.shape[0] > image.shape[1] >= 900  # portrait, sharp on a phone
    figure = renderer.chart(data)
    texts = [t for t in figure.findobj(lambda a: hasattr(a, "get_text") and hasattr(a, "get_fontsize"))]
    visible = [t for t in texts if t.get_text().strip() and t.get_visible()]
    words = "\n".join(t.get_text() for t in visible)
    # The groups by name, the completion rate with its fraction, the counts on the bars.
    assert "Nhóm 1. Nhóm một: tài chính & ngân sách" in words and "Nhóm 2. Nhóm hai <pháp luật>" in words
    assert "Tỷ lệ hoàn thành 60,0 % (3/5)" in words
    assert {" 4"} <= {t.get_text() for t in visible}  # each group's total at its bar's end
    assert "tuần từ 25/01 đến 01/02/2024" in words.replace("\n", " ")
    assert min(t.get_fontsize() for t in visible) >= 12


def test_split_at_block_boundaries() -> None:
    blocks = [
        f"<b>Khối {i}</b>\n" + "\n".join(f"• dòng {i}.{j} &amp; <i>chữ</i>" for j in range(5))
        for i in range(60)
    ]
    messages = split_blocks("\n\n".join(blocks), limit=700)
    assert len(messages) > 5
    for message in messages:
        assert utf16_length(message) <= 700
        parse_html(message)
        assert message.startswith("<b>Khối ")  # every message starts at a block
    assert "\n\n".join(messages) == "\n\n".join(blocks)
    # A block longer than a message is split between its lines.
    long_block = "\n".join(f"<i>dòng {i}</i>" for i in range(400))
    parts = split_blocks(long_block, limit=500)
    assert all(utf16_length(p) <= 500 for p in parts) and "\n".join(parts) == long_block


def test_a_long_digest_from_an_override_template_is_split(
    data: ReportData, config: Config, tmp_path: Path
) -> None:
    folder = tmp_path / "office-templates"
    folder.mkdir()
    (folder / "digest.telegram.html").write_text(
        "<b>Toàn bộ nhiệm vụ {{ data.period }}</b>\n\n"
        "{% for i in range(300) %}{% for task in data.tasks %}\n"
        "<b>{{ task.code }}</b> {{ task.title }} — {{ status_label(task.status) }}\n"
        "{% endfor %}\n\n{% endfor %}",
        encoding="utf-8",
    )
    custom = config.with_overrides(digest={"templates_dir": str(folder)})
    messages = ReportRenderer(custom, I18n("vi")).telegram(data)
    assert len(messages) > 10
    for message in messages:
        assert utf16_length(message) <= 4096
        parse_html(message)
    assert messages[0].startswith("<b>Toàn bộ nhiệm vụ 2024-W05</b>")
    assert SPECIAL in parse_html(messages[1])[0]


def test_english_catalog_renders_too(data: ReportData, config: Config) -> None:
    (message,) = ReportRenderer(config, I18n("vi"), "en").telegram(data)
    assert "8 tasks. Completed 3 (on time 2, late 1)" in parse_html(message)[0]


def test_control_characters_pasted_into_a_report_do_not_break_word_or_excel(
    data: ReportData, renderer: ReportRenderer
) -> None:
    group = data.groups[0]
    task = dataclasses.replace(group.tasks[0], results="Dòng một\x0bdòng hai\x00 & <ba>")
    broken = dataclasses.replace(
        data, groups=[dataclasses.replace(group, tasks=[task, *group.tasks[1:]]), *data.groups[1:]]
    )
    document = Document(io.BytesIO(renderer.docx(broken)))
    assert any(
        cell.text == "Dòng mộtdòng hai & <ba>"
        for table in document.tables
        for row in table.rows
        for cell in row.cells
    )
    book = load_workbook(io.BytesIO(renderer.xlsx(broken)))
    assert any(row[11] == "Dòng mộtdòng hai & <ba>" for row in book["Nhiệm vụ"].iter_rows(values_only=True))


@pytest.mark.parametrize(
    ("before", "now", "expected"),
    [
        (Counts(done_on_time=1, open_overdue=1), Counts(done_on_time=2), "từ 50,0 % lên 100,0 %"),
        (Counts(done_on_time=2), Counts(done_on_time=1, open_overdue=1), "từ 100,0 % xuống 50,0 %"),
        (
            Counts(done_on_time=1, open_overdue=1),
            Counts(done_on_time=2, open_overdue=2),
            "giữ nguyên ở 50,0 %",
        ),
        (Counts(open_within=3), Counts(done_on_time=1, open_within=2), "nay là 100,0 %"),
        (Counts(open_within=3), Counts(open_within=3), "Chưa có nhiệm vụ đến hạn"),
    ],
)
def test_the_change_since_the_previous_period_never_reads_from_dash_to_dash(
    data: ReportData, renderer: ReportRenderer, before: Counts, now: Counts, expected: str
) -> None:
    """A period with nothing due has no completion rate: the sentence says so instead of
    "tỷ lệ hoàn thành từ — lên —", and an unchanged rate is not said to rise."""
    changed = dataclasses.replace(data, totals=now, previous_totals=before)
    sentence = renderer.change_sentence(changed)
    assert expected in sentence.replace("\xa0", " ") and "—" not in sentence
