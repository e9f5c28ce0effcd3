"""The inbox: updates from Telegram, stored before they are confirmed (storage/models.py,
InboxUpdate). Core statements for Database.write_statements / read_statements."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, or_, select, update
from sqlalchemy.sql.expression import Executable

from storage.handled import INBOX
from storage.statements import StatementRunner, insert_on_conflict, many_values

_COLUMNS = ("update_id", "chat_id", "kind", "payload", "state", "attempts", "received_at")
# One update (what getUpdates or a webhook post mostly brings): a statement that is a
# transaction of its own (Database.write_statement); its row count says whether it was new.
ADD_ONE = insert_on_conflict(INBOX, ("update_id",), _COLUMNS)


@functools.lru_cache(maxsize=128)
def _add_many(count: int) -> Executable:
    return insert_on_conflict(INBOX, ("update_id",), _COLUMNS, returning=INBOX.c.update_id, count=count)


def add_many(rows: Sequence[Mapping[str, Any]]) -> tuple[Executable, dict[str, Any]]:
    """Several updates (a getUpdates batch; Telegram sends at most 100) in one statement that
    returns the ids of those not stored before (Database.write_rows)."""
    return _add_many(len(rows)), many_values(rows, _COLUMNS)


_AT = INBOX.c.handled_at.type

FAIL = (
    update(INBOX)
    .where(INBOX.c.update_id == bindparam("uid"))
    .values(state="failed", handled_at=bindparam("at", type_=_AT), error=bindparam("error"))
)
PENDING = (
    select(INBOX.c.update_id, INBOX.c.payload, INBOX.c.attempts)
    .where(INBOX.c.state == "pending")
    .order_by(INBOX.c.update_id)
)
COUNT_ATTEMPT = update(INBOX).where(INBOX.c.state == "pending").values(attempts=INBOX.c.attempts + 1)
PRUNE = delete(INBOX).where(
    or_(
        (INBOX.c.state == "done") & (INBOX.c.handled_at < bindparam("done_before", type_=_AT)),
        (INBOX.c.state == "failed") & (INBOX.c.handled_at < bindparam("failed_before", type_=_AT)),
    )
)


def restart(
    runner: StatementRunner, at: datetime, max_attempts: int, error: str
) -> tuple[list[Any], list[int]]:
    """At start-up: count one more attempt for every pending update and give up those tried
    more than max_attempts times (each start-up that found them pending: they may be what
    crashed the process). Returns the rest (update_id, payload, attempts), oldest first, and
    the ids given up."""
    runner.execute(COUNT_ATTEMPT, {})
    rows = runner.rows(PENDING, {})
    given_up = [row.update_id for row in rows if row.attempts > max_attempts]
    for update_id in given_up:
        runner.execute(FAIL, {"uid": update_id, "at": at, "error": error})
    return [row for row in rows if row.attempts <= max_attempts], given_up
