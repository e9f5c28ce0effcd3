"""The planning job: writes due nudges and period reminders into the outbox.

One repeating JobQueue job for everything (no job per task): the database says what is due,
so a restart or downtime loses nothing; run once at start-up before the dispatcher.
"""

from __future__ import annotations

import logging

from bot import metrics
from bot.context import Context

log = logging.getLogger(__name__)


async def plan_nudges(context: Context) -> None:
    """Plan deadline nudges and period reminders from the database."""
    nudges = context.services.nudges
    # Planning scans every open task: in the driver's thread, so chats are served meanwhile.
    with context.services.db.offloaded():
        deadline = await nudges.plan()
        period = await nudges.plan_period_reminders()
    metrics.NUDGES_PLANNED.inc(deadline.planned + period.planned)
    if deadline.planned or deadline.cancelled or period.planned or period.cancelled:
        log.info(
            "nudges planned %s (cancelled %s), period reminders planned %s (cancelled %s)",
            deadline.planned,
            deadline.cancelled,
            period.planned,
            period.cancelled,
        )
