"""Every callback-data string the bot puts on a button and reads back: the prefixes, how each
is built, the pattern a handler is registered under, and how it is parsed. Nothing else in the
code spells a callback string (tests/test_layering.py checks).

    rp:start:<task id>            open /report on a task (any message may carry it)
    rp:same:<task id>             "Không thay đổi": file this period's report as a copy of
                                  the last one (a nudge or /tasks may carry it)
    rp:<kind>:<version>:<value>   a step inside /report (the draft's version; see report.py)
    ng:snooze:<outbox id>         remind me later, on a nudge
    ad:<flow>:ok|no:<version>     confirm or cancel an admin flow (ta task_add, imp import,
                                  bc broadcast), for the pending draft of that version
    ex:ok|no:<extension id>       approve or reject a deadline extension
    lg:<language>                 /lang
    tk:pg:<page>                  a page of /tasks

Services name the action of a button they put into the outbox (bot.services.outbox.Button:
"report", "unchanged", "snooze", "extension_ok", "extension_no"); `for_action` turns it into the string
here, when the message is sent. Telegram allows 64 bytes of callback data.
"""

from __future__ import annotations

import re

MAX_BYTES = 64

REPORT = "rp"
NUDGE = "ng"
ADMIN = "ad"
EXTENSION = "ex"
LANGUAGE = "lg"
TASKS = "tk"
PREFIXES = (REPORT, NUDGE, ADMIN, EXTENSION, LANGUAGE, TASKS)

_ID = r"(\d{1,18})"


def oversize(data: object) -> bool:
    """Longer than Telegram allows: not made by this bot."""
    return isinstance(data, str) and len(data.encode("utf-8")) > MAX_BYTES


# --- /report ----------------------------------------------------------------------------------

REPORT_ANY = rf"^{REPORT}:"
REPORT_START = rf"^{REPORT}:start:"
REPORT_UNCHANGED = rf"^{REPORT}:same:"
_UNCHANGED = re.compile(rf"^{REPORT}:same:(\d{{1,12}})$")


def report_start(task_id: int | str) -> str:
    return f"{REPORT}:start:{task_id}"


def report_unchanged(task_id: int | str) -> str:
    return f"{REPORT}:same:{task_id}"


def parse_report_unchanged(data: str | None) -> int | None:
    """The task id of a "Không thay đổi" button, or None for data that is not one."""
    match = _UNCHANGED.match(data or "")
    return int(match.group(1)) if match else None


_START = re.compile(rf"^{REPORT}:start:(\d{{1,12}})$")
# Kinds of buttons inside /report: pg page, t task, s status, p percent, ev evidence done,
# c confirm (send, add, edit, cancel), e edit a field.
REPORT_STEP_KINDS = ("pg", "t", "s", "p", "ev", "c", "e")
_STEP = re.compile(rf"^{REPORT}:({'|'.join(REPORT_STEP_KINDS)}):(\d{{1,9}}):([a-z_0-9]{{1,20}})$")


def parse_report_start(data: str | None) -> int | None:
    """The task id of a "Báo cáo" button, or None for data that is not one."""
    match = _START.match(data or "")
    return int(match.group(1)) if match else None


def report_step_prefix(*kinds: str) -> str:
    """The pattern of some kinds of button inside /report (rp:<kind>:...)."""
    return rf"^{REPORT}:({'|'.join(kinds)}):"


def parse_report_step(data: object) -> tuple[str, int, str] | None:
    """(kind, draft version, value) of a button inside /report, or None for data that is not one."""
    match = _STEP.match(data if isinstance(data, str) else "")
    return (match.group(1), int(match.group(2)), match.group(3)) if match else None


def report_step(kind: str, version: int, value: object) -> str:
    return f"{REPORT}:{kind}:{version}:{value}"


def report_page_prefix(version: int) -> str:
    """What page_row appends a page number to, inside /report."""
    return f"{REPORT}:pg:{version}:"


# --- nudges -----------------------------------------------------------------------------------

SNOOZE = rf"^{NUDGE}:snooze:"
_SNOOZE = re.compile(rf"^{NUDGE}:snooze:{_ID}$")


def snooze(outbox_id: int | str) -> str:
    return f"{NUDGE}:snooze:{outbox_id}"


def parse_snooze(data: str | None) -> int | None:
    match = _SNOOZE.match(data or "")
    return int(match.group(1)) if match else None


# --- admin confirmations ----------------------------------------------------------------------

TASK_ADD, IMPORT, BROADCAST = "ta", "imp", "bc"


def confirm(flow: str, ok: bool, version: int) -> str:
    return f"{ADMIN}:{flow}:{'ok' if ok else 'no'}:{version}"


def confirm_pattern(flow: str) -> str:
    return rf"^{ADMIN}:{flow}:(ok|no):\d+$"


def parse_confirm(data: str | None) -> tuple[bool, int]:
    """(ok, version) of a confirmation button (its handler's pattern already matched)."""
    _, _, choice, version = (data or "").split(":")
    return choice == "ok", int(version)


# --- deadline extensions ----------------------------------------------------------------------

EXTENSION_DECISION = rf"^{EXTENSION}:(ok|no):\d+$"


def extension(ok: bool, extension_id: int) -> str:
    return f"{EXTENSION}:{'ok' if ok else 'no'}:{extension_id}"


def parse_extension(data: str | None) -> tuple[bool, int]:
    """(approve, extension id) (its handler's pattern already matched)."""
    _, choice, extension_id = (data or "").split(":")
    return choice == "ok", int(extension_id)


# --- /lang and /tasks -------------------------------------------------------------------------

LANGUAGE_ANY = rf"^{LANGUAGE}:"


def language(code: str) -> str:
    return f"{LANGUAGE}:{code}"


def parse_language(data: str | None) -> str:
    """The language a button names, or "" for data that is not a language button."""
    data = data or ""
    return data[len(LANGUAGE) + 1 :] if data.startswith(f"{LANGUAGE}:") else ""


TASKS_PAGE = rf"^{TASKS}:pg:"
TASKS_PAGE_PREFIX = f"{TASKS}:pg:"


def parse_tasks_page(data: str | None) -> int | None:
    parts = (data or "").split(":")
    if len(parts) != 3 or not parts[2].isdigit() or len(parts[2]) > 4:
        return None
    return int(parts[2])


# --- buttons the services put into the outbox -------------------------------------------------

_ACTIONS = {
    "report": report_start,
    "unchanged": report_unchanged,
    "snooze": snooze,
    "extension_ok": lambda arg: extension(True, int(arg)),
    "extension_no": lambda arg: extension(False, int(arg)),
}


def for_action(action: str, arg: int | str) -> str:
    """The callback data of a button a service named by its action (bot.services.outbox.Button)."""
    return _ACTIONS[action](arg)
