"""Render a ReportData into every format, all worded by files in templates/.

An office changes the wording by putting files of the same name in `[digest] templates_dir`
(they take precedence over the built-in ones) or by editing bot/locales/*/digest.toml.
Layout that Decree 30/2020 fixes (page, margins, fonts, the masthead table) lives in code; the
Word template is an XML outline (report.docx.xml) that the code lays out with python-docx.
"""

from __future__ import annotations

import dataclasses
import enum
import io
import json
import re
import textwrap
from collections.abc import Callable
from datetime import date, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.config import ROOT, Config
from bot.i18n import I18n
from bot.services.report_data import Counts, ReportData
from bot.services.status import STATUS_ORDER, StatusClass

if TYPE_CHECKING:
    from jinja2 import Environment

BUILTIN_TEMPLATES = ROOT / "templates"
TELEGRAM_LIMIT = 4096
FORMATS = ("telegram", "html", "docx", "xlsx", "png", "json")
SUFFIX = {"telegram": "txt", "html": "html", "docx": "docx", "xlsx": "xlsx", "png": "png", "json": "json"}
# How much the short chat digest and the report body list before they say "and N more" (the
# full lists are in the annexes and the spreadsheet).
DIGEST_LIMITS = {
    "units": 5,
    "codes": 2,
    "stuck": 3,
    "silent": 8,
    "targets": 10,
    "issues": 15,
    "priorities": 30,
    "report_units": 30,
}
CHART_COLOURS = {
    StatusClass.DONE_ON_TIME: "#2e7d32",
    StatusClass.DONE_LATE: "#9ccc65",
    StatusClass.OPEN_WITHIN: "#b0bec5",
    StatusClass.OPEN_OVERDUE: "#c62828",
}
CHART_TEXT = {
    StatusClass.DONE_ON_TIME: "white",
    StatusClass.DONE_LATE: "black",
    StatusClass.OPEN_WITHIN: "black",
    StatusClass.OPEN_OVERDUE: "white",
}
# Vietnamese lettering of sub-items (Decree 30): no f, j, w, z.
LETTERS = "a b c d đ e g h i k l m n o p q r s t u v x y".split()  # noqa: SIM905
ROMAN = {1: "I", 2: "II", 3: "III", 4: "IV"}


# Control characters that XML (Word) and Excel refuse; a pasted report may hold them.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(value: Any) -> Any:
    return _CONTROL.sub("", value) if isinstance(value, str) else value


def _day(value: date | None) -> str:
    return value.strftime("%d/%m/%Y") if value else ""


def decree_date(day: date) -> tuple[str, str, str]:
    """(day, month, year) as Decree 30 writes them: days below 10 and months 1 and 2 padded."""
    return f"{day.day:02d}", f"{day.month:02d}" if day.month <= 2 else str(day.month), str(day.year)


def letter(index: int) -> str:
    """The index-th sub-item letter: a, b, c, d, đ, e, g, h, i, k, …"""
    return LETTERS[index % len(LETTERS)] * (1 + index // len(LETTERS))


def _swap_separators(text: str, language: str) -> str:
    # Vietnamese writes 10.000,5 where English writes 10,000.5.
    return text.translate(str.maketrans(",.", ".,")) if language == "vi" else text


def _percent(value: float | None, language: str = "vi") -> str:
    if value is None:
        return ""
    return _swap_separators(f"{value * 100:,.1f}", language) + " %"


def _number(value: float | None, language: str = "vi") -> str:
    """A figure with thousands separators and at most two decimals (10.000; 12,5)."""
    if value is None:
        return ""
    text = f"{int(value):,}" if float(value).is_integer() else f"{value:,.2f}".rstrip("0").rstrip(".")
    return _swap_separators(text, language)


def _short(text: str, width: int) -> str:
    """Cut at a word boundary to at most width characters, with an ellipsis."""
    text = " ".join(text.split())
    if len(text) <= width:
        return text
    cut = text[: width - 1].rsplit(" ", 1)[0].rstrip(" ,;:.-–")
    return cut + "…"


class ReportRenderer:
    def __init__(self, config: Config, i18n: I18n, language: str | None = None) -> None:
        self.config = config
        self.i18n = i18n
        self.language = language or config.bot.language

    @cached_property
    def env(self) -> Environment:
        """The templates' environment, made on first use: Jinja2 is imported when a report is
        rendered, not when the bot starts."""
        from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined

        config = self.config
        loaders = []
        if config.digest.templates_dir:
            folder = Path(config.digest.templates_dir)
            if not folder.is_absolute() and config.source is not None:
                folder = config.source.parent / folder
            loaders.append(FileSystemLoader(str(folder)))
        loaders.append(FileSystemLoader(str(BUILTIN_TEMPLATES)))
        env = Environment(
            loader=ChoiceLoader(loaders),
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )
        language = self.language
        env.filters.update(
            day=_day,
            num=lambda value: _number(value, language),
            n=lambda value: _number(value, language),
            pct=lambda value: _percent(value, language),
            short=_short,
            signed=lambda value: (
                ("+" if value > 0 else "−" if value < 0 else "") + _number(abs(value), language)
            ),
            codes=self.codes,
        )
        env.globals.update(
            t=self.t,
            status_label=self.status_label,
            letter=letter,
            period_name=self.period_name,
            change_sentence=self.change_sentence,
            target_sentence=self.target_sentence,
            share=share,
            limits=DIGEST_LIMITS,
            statuses=STATUS_ORDER,
            digest=config.digest,
            language=self.language,
        )
        return env

    def t(self, key: str, **params: Any) -> str:
        return self.i18n.t(self.language, key, **params)

    def status_label(self, status: StatusClass | str | None) -> str:
        if status is None:
            return ""
        if isinstance(status, StatusClass):
            return self.t(f"status.{status.value}")
        return self.t(f"report_status.{status}")

    def number(self, value: float | None) -> str:
        return _number(value, self.language)

    def period_name(self, data: ReportData) -> str:
        """The period as people name it: "tháng 01/2025", "quý I/2025", "tuần từ 02/01 đến
        08/01/2025" (never the key "2025-W02")."""
        key = data.period
        if match := re.fullmatch(r"(\d{4})-(\d{2})", key):
            return self.t("period.month", month=match.group(2), year=match.group(1))
        if match := re.fullmatch(r"(\d{4})-Q([1-4])", key):
            return self.t("period.quarter", quarter=ROMAN[int(match.group(2))], year=match.group(1))
        start = data.start.strftime("%d/%m" if data.start.year == data.end.year else "%d/%m/%Y")
        return self.t("period.week", start=start, end=_day(data.end))

    def codes(self, codes: Any, limit: int = 6) -> str:
        """Task codes for a sentence: "nhiệm vụ 1.2, 3.4, …" (at most `limit`)."""
        codes = list(codes)
        shown = ", ".join(codes[:limit]) + (", …" if len(codes) > limit else "")
        return self.t("report.codes", codes=shown)

    def change_sentence(self, data: ReportData) -> str:
        now, before = data.totals, data.previous_totals
        delta = now.open_overdue - before.open_overdue
        if delta > 0:
            overdue = self.t("report.overdue_up", n=_number(delta, self.language))
        elif delta < 0:
            overdue = self.t("report.overdue_down", n=_number(-delta, self.language))
        else:
            overdue = self.t("report.overdue_same")
        # The rate's move in words: up, down, unchanged; or, when a period had nothing due
        # (no rate), what can be said instead of "from — to —".
        if now.rate is None:
            key = "report.s1_change_no_rate"
        elif before.rate is None:
            key = "report.s1_change_first_rate"
        elif now.rate < before.rate:
            key = "report.s1_change_down"
        elif now.rate == before.rate:
            key = "report.s1_change_same"
        else:
            key = "report.s1_change"
        return self.t(
            key,
            before=_percent(before.rate, self.language) or "—",
            after=_percent(now.rate, self.language) or "—",
            completed=_number(max(0, now.completed - before.completed), self.language),
            overdue_change=overdue,
        )

    def target_sentence(self, task: Any) -> str:
        label = task.target_label or self.t("col.target")
        params = {
            "label": label,
            "target": _number(task.target_value, self.language),
            "unit": task.target_unit or "",
        }
        if task.value is None:
            return self.t("report.target_none", **params)
        return self.t(
            "report.target",
            value=_number(task.value, self.language),
            share=_percent(share(task), self.language),
            **params,
        )

    def _render(self, name: str, data: ReportData, **extra: Any) -> str:
        return self.env.get_template(name).render(data=data, **extra)

    # --- chat ---------------------------------------------------------------------------------

    def telegram(self, data: ReportData, limit: int = TELEGRAM_LIMIT) -> list[str]:
        """The short digest as Telegram HTML messages, split between blocks (blank lines)."""
        text = self._render("digest.telegram.html", data)
        return split_blocks(text, limit)

    # --- documents ----------------------------------------------------------------------------

    def html(self, data: ReportData) -> str:
        return self._render("report.html", data, **self._document_context(data))

    def json(self, data: ReportData) -> str:
        return json.dumps(to_jsonable(data), ensure_ascii=False, indent=1)

    def docx(self, data: ReportData) -> bytes:
        import xml.etree.ElementTree as ET

        from bot.services.report_docx import write_docx

        outline = self._render("report.docx.xml", data, **self._document_context(data))
        return write_docx(ET.fromstring(_clean(outline)))

    def programme_title(self, data: ReportData) -> str:
        if data.programme is not None and data.programme.title:
            return data.programme.title
        return self.config.digest.programme_title or self.t("report.programme")

    def _decision(self, data: ReportData) -> str:
        programme = data.programme
        if programme is not None and programme.decision:
            issued = _day(programme.decision_date) if programme.decision_date else "…"
            if not programme.issuer:
                return self.t("report.decision_cite_plain", number=programme.decision, date=issued)
            return self.t(
                "report.decision_cite", number=programme.decision, date=issued, issuer=programme.issuer
            )
        return self.config.digest.decision

    def body_name(self) -> str:
        digest = self.config.digest
        return digest.issuing_body_name or digest.issuing_body

    def _document_context(self, data: ReportData) -> dict[str, Any]:
        day, month, year = decree_date(data.end)
        period = self.period_name(data)
        programme = self.programme_title(data)
        decision = self._decision(data)
        body = self.body_name()
        if data.scope is not None:
            subject = self.t("report.subject_unit", unit=data.scope.name, period=period)
        else:
            subject = self.t("report.subject", programme=_lower_first(programme), period=period)
        if decision:
            opening = self.t(
                "report.opening_decision", decision=decision, programme=programme, body=body, period=period
            )
        else:
            opening = self.t("report.opening", programme=_lower_first(programme), body=body, period=period)
        annex_ref = self.t(
            "report.annex_ref",
            number="…",
            code=self.config.digest.issuing_code,
            date=_day(data.end),
            body=body,
        )
        return {
            "place_date": self.t(
                "report.place_date", place=self.config.digest.place, day=day, month=month, year=year
            ),
            "doc": {
                "author": body,
                "date": data.end.isoformat(),
                "title": subject,
                "subject": subject,
                "opening": opening,
                "annex_ref": annex_ref,
                "period": period,
                "programme": programme,
            },
            "recipients": recipient_lines(self.config.digest.recipients),
        }

    def xlsx(self, data: ReportData) -> bytes:
        from bot.services.report_xlsx import write_xlsx

        return write_xlsx(data, self)

    def chart(self, data: ReportData) -> Any:
        """The chart as a matplotlib Figure, sized for a phone held upright: a stacked bar per
        task group, named, with the count of each status on the bar and the group's total at
        its end; the completion rate under the title; no text below 12 pt."""
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator

        groups = data.groups
        names = [_short(self.t("report.group", code=g.code, title=g.title), 52) for g in groups]
        figure = Figure(figsize=(6.4, max(7.0, 2.6 + 0.8 * len(groups))), dpi=150)
        axes = figure.add_subplot()
        widest = max((g.counts.total for g in groups), default=1) or 1
        left = [0] * len(groups)
        for status in STATUS_ORDER:
            values = [g.counts.get(status) for g in groups]
            bars = axes.barh(
                range(len(groups)),
                values,
                left=left,
                height=0.5,
                color=CHART_COLOURS[status],
                label=self.status_label(status),
            )
            # A count inside its segment when it fits; the bar's total is written at its end.
            shown = [self.number(v) if v and v / widest >= 0.07 else "" for v in values]
            axes.bar_label(bars, labels=shown, label_type="center", fontsize=12, color=CHART_TEXT[status])
            left = [a + b for a, b in zip(left, values, strict=True)]
        for y, (group, name) in enumerate(zip(groups, names, strict=True)):
            axes.text(0, y - 0.33, name, va="bottom", ha="left", fontsize=12)
            total = f" {self.number(group.counts.total)}"
            axes.text(left[y], y, total, va="center", fontsize=12, fontweight="bold")
        axes.set_yticks([])
        axes.set_ylim(len(groups) - 0.5, -0.9)
        axes.set_xlim(0, widest * 1.12)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.tick_params(axis="x", labelsize=12)
        axes.set_xlabel(self.t("chart.axis"), fontsize=12)
        axes.spines[["top", "right", "left"]].set_visible(False)
        c = data.totals
        rate = self.t(
            "chart.rate",
            rate=self.pct(c.rate) or "—",
            completed=self.number(c.completed),
            due=self.number(c.due),
        )
        title = "\n".join(textwrap.wrap(self.t("chart.title", period=self.period_name(data)), 44))
        figure.suptitle(title, fontsize=14, fontweight="bold")
        axes.set_title(rate, fontsize=13)
        figure.legend(loc="lower center", ncol=2, fontsize=12, frameon=False)
        figure.tight_layout(rect=(0, 0.09, 1, 0.97))
        return figure

    def png(self, data: ReportData) -> bytes:
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        figure = self.chart(data)
        FigureCanvasAgg(figure)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        return buffer.getvalue()

    def pct(self, value: float | None) -> str:
        return _percent(value, self.language)

    def render(self, data: ReportData, fmt: str) -> bytes:
        """One format as bytes (the Telegram digest: its messages separated by a rule)."""
        renderers: dict[str, Callable[[ReportData], Any]] = {
            "telegram": lambda d: "\n\n-----\n\n".join(self.telegram(d)),
            "html": self.html,
            "json": self.json,
            "docx": self.docx,
            "xlsx": self.xlsx,
            "png": self.png,
        }
        out = renderers[fmt](data)
        return out.encode("utf-8") if isinstance(out, str) else out


def file_stem(data: ReportData) -> str:
    """The name of a report's files without the suffix: tiendo-<programme>-<period>[-<unit>]."""
    programme = f"{data.programme.short_code}-" if data.programme is not None else ""
    scope = f"-{data.scope.code}" if data.scope else ""
    return f"tiendo-{programme}{data.period}{scope}"


def write_report_files(
    renderer: ReportRenderer, data: ReportData, folder: Path, formats: tuple[str, ...]
) -> dict[str, Path]:
    """Each format of data written into folder (each file whole or not at all), by format."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = file_stem(data)
    paths = {}
    for fmt in formats:
        path = folder / f"{stem}.{SUFFIX[fmt]}"
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_bytes(renderer.render(data, fmt))
        tmp.replace(path)
        paths[fmt] = path
    return paths


def recipient_lines(lines: list[str]) -> list[str]:
    """Each recipient line ends with ";", the last with "." (Decree 30, Appendix I)."""
    cleaned = [line.strip().rstrip(";.,").rstrip() for line in lines if line.strip()]
    return [line + ("." if i == len(cleaned) - 1 else ";") for i, line in enumerate(cleaned)]


def _lower_first(text: str) -> str:
    """ "Chương trình hành động …" inside a sentence: "chương trình hành động …"."""
    return text[:1].lower() + text[1:] if text[:1].isupper() and not text[1:2].isupper() else text


def share(task: Any) -> float | None:
    """The achieved value over the numeric target."""
    if task.value is None or not task.target_value:
        return None
    return float(task.value) / float(task.target_value)


def _bold(sheet: Any, value: Any) -> Any:
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    cell = WriteOnlyCell(sheet, value=value)
    cell.font = Font(bold=True)
    return cell


def utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def split_blocks(text: str, limit: int = TELEGRAM_LIMIT) -> list[str]:
    """Pack blocks (separated by blank lines) into messages of at most `limit` UTF-16 units.

    Blocks and lines are self-contained HTML, so a split between them never cuts a tag; a
    block longer than a message is split between its lines.
    """
    pieces: list[str] = []
    for block in text.split("\n\n"):
        block = block.strip("\n")
        if not block.strip():
            continue
        if utf16_length(block) <= limit:
            pieces.append(block)
            continue
        current = ""
        for line in block.split("\n"):
            candidate = f"{current}\n{line}" if current else line
            if utf16_length(candidate) <= limit:
                current = candidate
            else:
                if current:
                    pieces.append(current)
                current = line if utf16_length(line) <= limit else line[: limit // 2]
        if current:
            pieces.append(current)
    messages: list[str] = []
    current = ""
    for piece in pieces:
        candidate = f"{current}\n\n{piece}" if current else piece
        if utf16_length(candidate) <= limit:
            current = candidate
        else:
            messages.append(current)
            current = piece
    if current:
        messages.append(current)
    return messages


def to_jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, Counts):
            out.update(total=value.total, rate=value.rate, due=value.due)
        return out
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    return value
