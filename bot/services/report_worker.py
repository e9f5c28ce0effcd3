"""The bot's report files are made in a child process, so what makes them never stays in the bot.

Matplotlib, python-docx, openpyxl and Jinja2 together weigh about 57 MiB once imported, and a
process cannot give imported modules back: rendering the weekly digest (or one /digest) in the
bot left it at about 150 MiB for the rest of its life, against some 73 MiB before. So
`render_apart` runs `python -m bot.services.report_worker`, which renders one language's digest
messages and writes its files, and exits; `workbook_apart` writes /export's workbook the same
way. That is CPU work too: in a process of its own it does not hold the bot's interpreter lock,
so other chats are answered meanwhile.

The command line (`tiendo report`, `tiendo demo`) renders in its own process, as before.
"""

from __future__ import annotations

import asyncio
import io
import pickle
import sys
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.services.child import ChildFailed, ChildTimedOut, in_child

if TYPE_CHECKING:
    from bot.config import Config
    from bot.services.report_data import ReportData

# A national programme's digest renders in a few seconds; past this the child is stopped.
RENDER_SECONDS = 300.0
# A child holds matplotlib and a report (120 MiB at its peak for the example programme): this
# many at once, however many managers ask; the others wait their turn (their time limit starts
# then).
RENDERS_AT_ONCE = 2
_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def _slot() -> asyncio.Semaphore:
    """This event loop's turns to render."""
    loop = asyncio.get_running_loop()
    slot = _slots.get(loop)
    if slot is None:
        slot = _slots[loop] = asyncio.Semaphore(RENDERS_AT_ONCE)
    return slot


class RenderFailed(RuntimeError):
    """The child could not render the report (its last line of error output says why)."""


@dataclass(frozen=True)
class Rendered:
    """One language's rendering of a report: the chat messages, the files, the period's name."""

    texts: list[str]
    files: dict[str, Path]
    period_name: str


async def render_apart(
    config: Config,
    data: ReportData,
    folder: Path,
    language: str | None,
    formats: tuple[str, ...],
    seconds: float = RENDER_SECONDS,
) -> Rendered:
    """The digest messages and the files (written into folder) of data, rendered in a child
    process; RenderFailed if it fails or takes longer than `seconds`."""
    request = {"config": config, "data": data, "folder": folder, "language": language, "formats": formats}
    try:
        async with _slot():
            texts, files, name = await in_child(__name__, request, seconds)
    except ChildTimedOut:
        raise RenderFailed(f"rendering the report {data.period} took over {seconds:g} s") from None
    except ChildFailed as exc:
        raise RenderFailed(f"rendering the report {data.period} failed ({exc})") from None
    return Rendered(texts, files, name)


async def workbook_apart(sheets: list[tuple[str, list[list[Any]]]], seconds: float = RENDER_SECONDS) -> bytes:
    """An Excel workbook of the named sheets, each a list of rows, written in a child process;
    RenderFailed if it fails or takes longer than `seconds`."""
    try:
        async with _slot():
            workbook: bytes = await in_child(__name__, {"job": "workbook", "sheets": sheets}, seconds)
    except ChildTimedOut:
        raise RenderFailed(f"writing the workbook took over {seconds:g} s") from None
    except ChildFailed as exc:
        raise RenderFailed(f"writing the workbook failed ({exc})") from None
    return workbook


def _digest(request: dict[str, Any]) -> tuple[list[str], dict[str, Path], str]:
    from bot.i18n import I18n
    from bot.services.report_render import ReportRenderer, write_report_files

    config: Config = request["config"]
    data: ReportData = request["data"]
    renderer = ReportRenderer(config, I18n(config.bot.language), request["language"])
    files = write_report_files(renderer, data, request["folder"], request["formats"])
    return renderer.telegram(data), files, renderer.period_name(data)


def _workbook(sheets: list[tuple[str, list[list[Any]]]]) -> bytes:
    from openpyxl import Workbook

    workbook = Workbook()
    for i, (title, rows) in enumerate(sheets):
        sheet = workbook.active if i == 0 else workbook.create_sheet()
        assert sheet is not None
        sheet.title = title
        for row in rows:
            sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def main() -> int:
    """The child: do the job and answer in plain types (in the child this module is __main__,
    so its classes would not unpickle in the bot)."""
    request: dict[str, Any] = pickle.loads(sys.stdin.buffer.read())
    answer = _workbook(request["sheets"]) if request.get("job") == "workbook" else _digest(request)
    sys.stdout.buffer.write(pickle.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main())
