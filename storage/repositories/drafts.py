"""Drafts of guided flows and the conversation states PTB restores after a restart."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage.direct import StatementRunner, insert_on_conflict
from storage.models import ConversationState, Draft, User, table_of
from storage.repositories.users import IN_SCOPE

_DRAFTS = table_of(Draft)
_COLUMNS = ("user_id", "flow", "data", "version", "updated_at")
_DRAFT_UPSERT = insert_on_conflict(
    _DRAFTS, ("user_id", "flow"), _COLUMNS, update=("data", "version", "updated_at")
)
# SQLite only (the chat path's single-statement write, Database.write_statement): the draft is
# written only while its person is still in scope for the task and unit (users.IN_SCOPE); one
# statement, its own transaction. Returns one row written, or none when out of scope.
_INSERT_IN_SCOPE = sqlite_insert(_DRAFTS).from_select(
    _COLUMNS, select(*(bindparam(name, type_=_DRAFTS.c[name].type) for name in _COLUMNS)).where(IN_SCOPE)
)
DRAFT_UPSERT_IN_SCOPE = _INSERT_IN_SCOPE.on_conflict_do_update(
    index_elements=["user_id", "flow"],
    set_={name: _INSERT_IN_SCOPE.excluded[name] for name in ("data", "version", "updated_at")},
)
_DRAFT_DROP = delete(_DRAFTS).where(
    _DRAFTS.c.user_id == bindparam("user_id"), _DRAFTS.c.flow == bindparam("flow")
)


_DRAFT_OF = select(_DRAFTS.c.version, _DRAFTS.c.data, _DRAFTS.c.updated_at).where(
    _DRAFTS.c.user_id == bindparam("user_id"), _DRAFTS.c.flow == bindparam("flow")
)


def draft_of(runner: StatementRunner, user_id: int, flow: str) -> Any | None:
    """The user's draft of the flow (version, data, updated_at), or None."""
    rows = runner.rows(_DRAFT_OF, {"user_id": user_id, "flow": flow})
    return rows[0] if rows else None


def store_drafts(runner: StatementRunner, rows: list[dict[str, Any]]) -> None:
    """Store several drafts: rows of user_id, flow, data, version, updated_at (each
    (user_id, flow) at most once). One statement, compiled once."""
    runner.execute_many(_DRAFT_UPSERT, rows)


def drop_drafts(runner: StatementRunner, keys: list[tuple[int, str]]) -> None:
    """Delete drafts by (user_id, flow)."""
    for user_id, flow in keys:
        runner.execute(_DRAFT_DROP, {"user_id": user_id, "flow": flow})


class DraftRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, user_id: int, flow: str) -> Draft | None:
        return await self.session.scalar(select(Draft).where(Draft.user_id == user_id, Draft.flow == flow))

    async def data_of(self, flow: str) -> list[tuple[int, dict[str, Any]]]:
        """(Telegram id of its user, data) of every draft of the flow."""
        rows = await self.session.execute(
            select(User.telegram_id, Draft.data)
            .join(User, User.id == Draft.user_id)
            .where(Draft.flow == flow)
        )
        return [(int(t), data) for t, data in rows.all()]

    async def put(self, user_id: int, flow: str, data: dict[str, Any]) -> Draft:
        """Replace the user's draft of this flow; the version goes up at every write."""
        draft = await self.get(user_id, flow)
        if draft is None:
            draft = Draft(user_id=user_id, flow=flow, data=data, version=1)
            self.session.add(draft)
        else:
            draft.data = data
            draft.version += 1
        await self.session.flush()
        return draft

    async def drop(self, user_id: int, flow: str) -> None:
        # On the table, not the entity: no ORM bulk-delete bookkeeping at every report's end.
        await self.session.execute(_DRAFT_DROP, {"user_id": user_id, "flow": flow})

    async def older_than(self, flow: str, before: datetime) -> list[Draft]:
        rows = await self.session.scalars(
            select(Draft).where(Draft.flow == flow, Draft.updated_at < before).order_by(Draft.id)
        )
        return list(rows)


class ConversationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def all(self, name: str) -> list[ConversationState]:
        rows = await self.session.scalars(select(ConversationState).where(ConversationState.name == name))
        return list(rows)

    async def drop(self, name: str, key: str) -> None:
        states = table_of(ConversationState)
        await self.session.execute(delete(states).where(states.c.name == name, states.c.key == key))
