"""Forgetting handled updates after a while (bot/services/inbox.py keeps them for a few days)."""

from __future__ import annotations

import logging

from handlers.context import Context

log = logging.getLogger(__name__)

# How often old inbox rows are removed.
PRUNE_INTERVAL = 3600


async def prune_inbox(context: Context) -> None:
    removed = await context.services.inbox.prune()
    if removed:
        log.info("inbox: %s old updates removed", removed)
