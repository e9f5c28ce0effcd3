"""The inbox: updates from Telegram, stored before they are confirmed (storage/models.py,
InboxUpdate). Core statements for Database.write_statements / read_statements."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, or_, select, update
from sqlalchemy.sql.expression import Executable

from storage.handled import INBOX
from storage.statements import StatementRunner, insert_on_conflict

_COLUMNS = ("update_id", "chat_id", "kind", "payload", "state", "attempts", "received_at")
_ADD = insert_on_conflict(INBOX, ("update_id",), _COLUMNS, returning=INBOX.c.update_id)
# One update (what getUpdates or a webhook post mostly brings): a statement that is a
# transaction of its own (Database.write_statement); its row count says whether it was new.
ADD_ONE = insert_on_conflict(INBOX, ("update_id",), _COLUMNS)
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
# A chat's key among the processes sharing the database: its id, or 0 for updates without one.
_CHAT = func.coalesce(INBOX.c.chat_id, 0)
# Chats with updates pending since before a moment (the sweep leaves the newest to the process
# that stored them, about to take their chat).
PENDING_CHATS = (
    select(_CHAT)
    .where(INBOX.c.state == "pending", INBOX.c.received_at < bindparam("before", type_=_AT))
    .distinct()
)
PENDING_OF_CHAT = (
    select(INBOX.c.update_id, INBOX.c.payload, INBOX.c.attempts, INBOX.c.chat_id)
    .where(INBOX.c.state == "pending", bindparam("chat") == _CHAT)
    .order_by(INBOX.c.update_id)
)
COUNT_CHAT_ATTEMPT = (
    update(INBOX)
    .where(INBOX.c.state == "pending", bindparam("chat") == _CHAT)
    .values(attempts=INBOX.c.attempts + 1)
)
COUNT_ATTEMPT = update(INBOX).where(INBOX.c.state == "pending").values(attempts=INBOX.c.attempts + 1)
PRUNE = delete(INBOX).where(
    or_(
        (INBOX.c.state == "done") & (INBOX.c.handled_at < bindparam("done_before", type_=_AT)),
        (INBOX.c.state == "failed") & (INBOX.c.handled_at < bindparam("failed_before", type_=_AT)),
    )
)


def add_new(runner: StatementRunner, rows: Iterable[Mapping[str, Any]]) -> list[int]:
    """Store the updates (rows of every column in _COLUMNS) not stored yet; the update ids
    that were new, in the order given."""
    return [found[0][0] for row in rows if (found := runner.rows(_ADD, row))]


def restart(
    runner: StatementRunner, at: datetime, max_attempts: int, error: str
) -> tuple[list[Any], list[int]]:
    """At start-up: count one more attempt for every pending update and give up those tried
    more than max_attempts times (each start-up that found them pending: they may be what
    crashed the process). Returns the rest (update_id, payload, attempts), oldest first, and
    the ids given up."""
    return _attempt(runner, COUNT_ATTEMPT, PENDING, {}, at, max_attempts, error)


def take_chat(
    runner: StatementRunner, chat: int, at: datetime, max_attempts: int, error: str
) -> tuple[list[Any], list[int]]:
    """A process takes a chat (several processes on one database): as restart() for that
    chat's pending updates alone."""
    return _attempt(runner, COUNT_CHAT_ATTEMPT, PENDING_OF_CHAT, {"chat": chat}, at, max_attempts, error)


def _attempt(
    runner: StatementRunner,
    count: Executable,
    pending: Executable,
    values: Mapping[str, Any],
    at: datetime,
    max_attempts: int,
    error: str,
) -> tuple[list[Any], list[int]]:
    runner.execute(count, values)
    rows = runner.rows(pending, values)
    given_up = [row.update_id for row in rows if row.attempts > max_attempts]
    for update_id in given_up:
        runner.execute(FAIL, {"uid": update_id, "at": at, "error": error})
    return [row for row in rows if row.attempts <= max_attempts], given_up
