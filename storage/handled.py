"""An update is recorded as handled in the same transaction as the first thing it changes.

bot/updates.py runs each stored update (the inbox table) with a HandledMark set for its task.
The first write transaction committed while it is set (storage/db.py: Database.transaction,
write_statements, write_statement) also sets the update's inbox row to `done`; after the
handler, an update that wrote nothing is marked in a statement of its own. So a crash at any
moment leaves each update either handled (what it changed committed together with its `done`)
or still pending with nothing of it committed, and the next start handles it exactly once.

A handler's later transactions are not covered: a flow whose one answer is stored in several
transactions must not depend on the later ones being repeated (storing the answer and moving
the flow on happen in one statement throughout; see bot/services/drafts.py).
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import bindparam, update

from storage.models import InboxUpdate, table_of

if TYPE_CHECKING:
    from storage.direct import StatementRunner

T = TypeVar("T")

INBOX = table_of(InboxUpdate)

# Only a pending row becomes done: a row another path marked failed stays failed.
MARK_DONE = (
    update(INBOX)
    .where(INBOX.c.update_id == bindparam("uid"), INBOX.c.state == "pending")
    .values(state="done", handled_at=bindparam("at", type_=INBOX.c.handled_at.type))
)


@dataclass
class HandledMark:
    """The update being handled in this task, and whether its `done` is committed."""

    update_id: int
    at: datetime
    committed: bool = False

    def values(self) -> dict[str, Any]:
        return {"uid": self.update_id, "at": self.at}


_CURRENT: contextvars.ContextVar[HandledMark | None] = contextvars.ContextVar("tiendo_handled", default=None)


@contextmanager
def handling(mark: HandledMark) -> Iterator[HandledMark]:
    """Run the block (one update's handlers) with `mark` as the update being handled."""
    token = _CURRENT.set(mark)
    try:
        yield mark
    finally:
        _CURRENT.reset(token)


def pending() -> HandledMark | None:
    """The mark a write transaction opened now should commit, if any."""
    mark = _CURRENT.get()
    return mark if mark is not None and not mark.committed else None


def with_mark(fn: Callable[[StatementRunner], T], mark: HandledMark) -> Callable[[StatementRunner], T]:
    """fn, then the update's `done`, in the same transaction."""

    def run(runner: StatementRunner) -> T:
        result = fn(runner)
        runner.execute(MARK_DONE, mark.values())
        return result

    return run
