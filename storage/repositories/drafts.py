"""Drafts of guided flows and the conversation states PTB restores after a restart."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import bindparam, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.dialects import upsert_insert
from storage.models import ConversationState, Draft, KeyValue, User, table_of
from storage.repositories.users import IN_SCOPE
from storage.statements import StatementRunner, insert_on_conflict

# The key, in a draft's data, of the conversation it belongs to and the step reached.
CONVERSATION = "__conversation__"


def conversation_key(key: tuple[int | str, ...]) -> str:
    """A conversation's key (chat id, user id) as stored."""
    return json.dumps(list(key), separators=(",", ":"))


_DRAFTS = table_of(Draft)
_COLUMNS = ("user_id", "flow", "data", "version", "updated_at")
_DRAFT_UPSERT = insert_on_conflict(
    _DRAFTS, ("user_id", "flow"), _COLUMNS, update=("data", "version", "updated_at")
)


def _upsert_in_scope(insert: Any) -> Any:
    """The draft written only while its person is still in scope for the task and unit
    (users.IN_SCOPE): the check and the write in one statement. ON CONFLICT is spelt by each
    dialect's own insert(), hence one statement per engine (store_draft_in_scope picks)."""
    rows = insert(_DRAFTS).from_select(
        _COLUMNS, select(*(bindparam(name, type_=_DRAFTS.c[name].type) for name in _COLUMNS)).where(IN_SCOPE)
    )
    return rows.on_conflict_do_update(
        index_elements=["user_id", "flow"],
        set_={name: rows.excluded[name] for name in ("data", "version", "updated_at")},
    )


@cache
def _draft_upsert_in_scope(dialect: str) -> Any:
    return _upsert_in_scope(upsert_insert(dialect))


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


def store_draft_in_scope(
    runner: StatementRunner, row: dict[str, Any], person: int, scope: tuple[int, int]
) -> bool:
    """Store one draft (user_id, flow, data, version, updated_at) if the person (Telegram id)
    may still report on the scope's task for its unit (task id, unit id); whether it was."""
    values = {**row, "person": person, "task": scope[0], "unit": scope[1]}
    return runner.execute(_draft_upsert_in_scope(runner.dialect), values) > 0


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

    async def states(self, name: str) -> dict[tuple[int | str, ...], object]:
        """The step each conversation of the flow is at, by conversation key (chat id, user
        id): kept in the draft's row, or, as versions before kept it, in conversation_states
        (a state there counts only while its draft, without a state of its own, exists)."""
        rows = await self.all(name)
        drafts = await DraftRepository(self.session).data_of(name)
        legacy = {
            tuple(json.loads(row.key)): (row.state or {}).get("state")
            for row in rows
            if (row.state or {}).get("state") is not None
        }
        states: dict[tuple[int | str, ...], object] = {}
        for telegram_id, data in drafts:
            conversation = (data or {}).get(CONVERSATION) or {}
            if conversation.get("key") and conversation.get("state") is not None:
                states[tuple(json.loads(conversation["key"]))] = conversation["state"]
            else:
                states.update({key: state for key, state in legacy.items() if key[-1] == telegram_id})
        return states

    async def all(self, name: str) -> list[ConversationState]:
        rows = await self.session.scalars(select(ConversationState).where(ConversationState.name == name))
        return list(rows)

    async def drop(self, name: str, key: str) -> None:
        states = table_of(ConversationState)
        await self.session.execute(delete(states).where(states.c.name == name, states.c.key == key))


# Processes that stopped cleanly: every question they saved was sent before they stopped.
_CLEAN_STOP = "clean_stop"


async def record_clean_stop(session: AsyncSession, owner: str, at: datetime, keep: timedelta) -> None:
    """Note that the process `owner` stopped cleanly (and forget those older than `keep`)."""
    await session.execute(
        delete(KeyValue).where(
            KeyValue.namespace == _CLEAN_STOP,
            or_(KeyValue.updated_at < at - keep, KeyValue.key == owner[:128]),
        )
    )
    session.add(KeyValue(namespace=_CLEAN_STOP, key=owner[:128], value={"at": at.isoformat()}, updated_at=at))


async def clean_stops(session: AsyncSession) -> set[str]:
    """The processes that stopped cleanly (see record_clean_stop)."""
    return set((await session.scalars(select(KeyValue.key).where(KeyValue.namespace == _CLEAN_STOP))).all())
