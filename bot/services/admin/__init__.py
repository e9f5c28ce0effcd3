"""Running the programme from chat, by area: units, tasks (and the notices they send), people
and roles, drafts of admin flows, broadcasts, deadline extensions, plan imports. Every change is
audited with the values before and after; every notice goes through the outbox.

Errors the admin can fix raise AdminError(key, **params); the key is a catalog key under
"admin.error." that the handler shows in the admin's language.
"""

from __future__ import annotations

from bot.services.admin.broadcast import BroadcastAdmin
from bot.services.admin.common import (
    EDITABLE_FIELDS,
    ROLES,
    Actor,
    AdminError,
    Change,
    PendingExtension,
    TaskView,
    UnitInfo,
    UserInfo,
    clean,
    parse_target,
)
from bot.services.admin.extensions import ExtensionAdmin
from bot.services.admin.imports import ImportAdmin
from bot.services.admin.people import PeopleAdmin
from bot.services.admin.units import UnitAdmin

__all__ = [
    "EDITABLE_FIELDS",
    "ROLES",
    "Actor",
    "AdminError",
    "AdminService",
    "Change",
    "PendingExtension",
    "TaskView",
    "UnitInfo",
    "UserInfo",
    "clean",
    "parse_target",
]


class AdminService(UnitAdmin, ExtensionAdmin, PeopleAdmin, BroadcastAdmin, ImportAdmin):
    """Every area in one service (Services.admin): each area is a module of its own."""
