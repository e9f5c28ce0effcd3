"""The scheduled digest: a repeating JobQueue check, so a schedule passed while the bot was
down is caught up at start-up (no APScheduler misfire can skip it), and the report_runs table,
not the scheduler, remembers what was sent."""

from __future__ import annotations

import logging

from bot.context import Context
from bot.jobs.dispatch import dispatch_outbox

log = logging.getLogger(__name__)

CHECK_INTERVAL = 60  # seconds


async def send_due_digest(context: Context) -> None:
    """Queue the digest of the period the last scheduled time closed, if not queued yet."""
    queued = await context.services.digest.run_due()
    if queued and context.job_queue is not None:
        context.job_queue.run_once(dispatch_outbox, 0)  # type: ignore[arg-type]
