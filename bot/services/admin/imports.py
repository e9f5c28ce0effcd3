"""A plan file sent in chat: previewed, kept until Áp dụng or Hủy, then applied."""

from __future__ import annotations

import base64

from bot.services.admin.common import (
    Actor,
    AdminError,
)
from bot.services.admin.drafts import DraftAdmin
from bot.services.programme import ImportResult


class ImportAdmin(DraftAdmin):
    async def stage_import(
        self, actor: Actor, filename: str, data: bytes, programme: str | None = None
    ) -> tuple[ImportResult, int]:
        """Preview a plan file and keep it (in the database) until Áp dụng or Hủy.

        Returns the preview and the draft version the buttons must carry; a file with errors is
        not kept, so it can never be applied (a corrected file may follow).
        """
        if len(data) > self.config.admin.import_max_kb * 1024:
            raise AdminError("file_too_big", kb=self.config.admin.import_max_kb)
        plan = await self.programme.read_plan(data, filename, programme)
        result = await self.programme.preview(plan)
        named = {"programme": programme} if programme else {}
        if result.errors:
            # Keep waiting: the admin may send the corrected file straight away.
            await self.save_draft(actor, "import", {"state": "awaiting", **named})
            return result, 0
        version = await self.save_draft(
            actor,
            "import",
            {
                "state": "preview",
                **named,
                "filename": filename,
                "data": base64.b64encode(data).decode("ascii"),
            },
        )
        return result, version

    async def apply_import(self, actor: Actor, version: int) -> ImportResult:
        """Apply the pending import the buttons of this version showed; re-checked first."""
        pending = await self.draft(actor, "import")
        if pending is None or pending[1] != version or pending[0].get("state") != "preview":
            raise AdminError("stale")
        data = base64.b64decode(pending[0]["data"])
        plan = await self.programme.read_plan(data, pending[0]["filename"], pending[0].get("programme"))
        result = await self.programme.apply(plan, actor=actor.label, actor_telegram_id=actor.telegram_id)
        if result.applied:
            await self.drop_draft(actor, "import")
        return result
