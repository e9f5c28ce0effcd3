"""Closing /report drafts left untouched for longer than [reporting] draft_timeout."""

from __future__ import annotations

import logging

from bot.context import Context
from bot.services.outbox import OutgoingMessage

log = logging.getLogger(__name__)


async def close_expired_drafts(context: Context) -> None:
    """Close stale drafts and tell each user how to start again (through the outbox)."""
    services = context.services
    closed = await services.drafts.close_expired("report", services.config.draft_timeout)
    if not closed:
        return
    now = services.clock.now()
    await services.outbox.enqueue(
        OutgoingMessage(
            key=f"draft-expired:{d.telegram_id}:{now.isoformat()}",
            kind="notice",
            chat_id=d.telegram_id,
            text=services.i18n.t(
                d.language or d.data.get("lang"), "report.draft_closed", code=d.data.get("task_code") or "…"
            ),
        )
        for d in closed
    )
    log.info("closed %s unfinished report drafts", len(closed))
