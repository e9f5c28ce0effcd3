"""Admins and managers run the programme from chat.

COMMANDS lists (command, role) for /help and the per-role command menus; each command's help
line is the catalog key help.<command> (bot/locales/*/admin.toml).
"""

from __future__ import annotations

from telegram.ext import BaseHandler

from handlers.admin import extensions, files, people, programme, programmes, views

COMMANDS: list[tuple[str, str]] = [
    ("unit_add", "admin"),
    ("unit_list", "manager"),
    ("task_add", "admin"),
    ("task_edit", "admin"),
    ("task_close", "admin"),
    ("assign", "admin"),
    ("deadline", "admin"),
    ("invite", "admin"),
    ("users", "admin"),
    ("role", "admin"),
    ("revoke", "admin"),
    ("import", "admin"),
    ("export", "admin"),
    ("broadcast", "admin"),
    ("audit", "admin"),
    ("history", "manager"),
    ("overdue", "manager"),
    ("stats", "manager"),
    ("extend", "focal"),
    ("programmes", "manager"),
    ("programme_close", "admin"),
]

# The handler group of the /import document handler (see bot/app.py).
DOCUMENT_GROUP = 5


def handlers() -> list[BaseHandler]:  # type: ignore[type-arg]
    return [
        *programme.handlers(),
        *programmes.handlers(),
        *people.handlers(),
        *files.handlers(),
        *views.handlers(),
        *extensions.handlers(),
    ]


def document_handlers() -> list[BaseHandler]:  # type: ignore[type-arg]
    return files.document_handlers()
