"""The Telegram surface: one module per flow; no SQL, no business rules.

Each flow module exposes `handlers()` and `COMMANDS` = [(command, role)] with role one of
focal, leader, manager, admin, any. MODULES is the one list of them: build_application
registers their handlers in this order, and /help and the per-role command menus are built
from their COMMANDS (the help line of a command is the catalog key `help.<command>`).
"""

from __future__ import annotations

from types import ModuleType


def modules() -> list[ModuleType]:
    from handlers import admin, digest, help, nudges, report, start, tasks

    return [start, help, report, tasks, admin, digest, nudges]


def all_commands() -> list[tuple[str, str]]:
    return [entry for module in modules() for entry in getattr(module, "COMMANDS", [])]
