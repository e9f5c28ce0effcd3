"""Set-based reads for nudge planning: open tasks, who to tell, what is pending (whether a task
is completed comes from ReportRepository.lead_progress).

Plain rows (tuples), not ORM objects: planning reads every open task on each run.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import date
from typing import Any

from sqlalchemy import (
    Column,
    Date,
    Integer,
    MetaData,
    Row,
    String,
    Table,
    and_,
    cast,
    exists,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Membership, OutboxMessage, ProgressReport, Task, TaskUnit, Unit, User

# The current nudge offset of each deadline date, worked out in Python (the working calendar)
# and joined against tasks in SQL; a temporary table lives only for one planning transaction.
_OFFSETS = Table(
    "tmp_nudge_offsets", MetaData(),
    Column("deadline", Date, primary_key=True),
    Column("name", String(16)),
    Column("escalate", Integer),
    prefixes=["TEMPORARY"],
)


class NudgeRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def open_tasks(self, task_ids: Sequence[int] | None = None
                         ) -> Sequence[Row[tuple[int, date | None, int, int]]]:
        """(id, deadline, deadline_version, lead_unit_id) of tasks not closed."""
        query = (select(Task.id, Task.deadline, Task.deadline_version, Task.lead_unit_id)
                 .where(Task.closed_at.is_(None)).order_by(Task.position, Task.id))
        if task_ids is not None:
            query = query.where(Task.id.in_(list(task_ids)))
        return (await self.session.execute(query)).all()

    async def titles(self, task_ids: Collection[int]) -> dict[int, tuple[str, str]]:
        """(code, title) of these tasks."""
        ids = list(task_ids)
        found: dict[int, tuple[str, str]] = {}
        for start in range(0, len(ids), 500):
            rows = await self.session.execute(
                select(Task.id, Task.code, Task.title).where(Task.id.in_(ids[start:start + 500])))
            found.update((task_id, (code, title)) for task_id, code, title in rows)
        return found

    async def deadlines(self, task_ids: Sequence[int] | None = None) -> list[date]:
        """The distinct deadlines of open tasks."""
        query = select(Task.deadline).distinct().where(Task.closed_at.is_(None),
                                                       Task.deadline.is_not(None))
        if task_ids is not None:
            query = query.where(Task.id.in_(list(task_ids)))
        return [d for d in await self.session.scalars(query) if d is not None]

    async def new_nudges(self, offsets: Sequence[tuple[date, str, bool]],
                         include_coordinating: bool, task_ids: Sequence[int] | None = None
                         ) -> Sequence[Row[tuple[int, int, int, str, int, str, int, str | None]]]:
        """(task_id, deadline_version, lead_unit_id, offset, user_id, role, telegram_id,
        language) for each open task whose deadline has a current offset, and each reachable
        focal point of its lead unit (of coordinating units too, if asked) and, where the
        offset escalates, each leader of the lead unit, whose nudge key is not in the outbox
        yet. Completion is left to the caller (ReportRepository.lead_progress)."""
        if not offsets:
            return []
        connection = await self.session.connection()
        await connection.run_sync(lambda sync: _OFFSETS.create(sync, checkfirst=True))
        try:
            await connection.execute(_OFFSETS.delete())
            await connection.execute(_OFFSETS.insert(), [
                {"deadline": d, "name": name, "escalate": int(up)} for d, name, up in offsets])
            o = _OFFSETS.c
            lead = select(Task.id.label("task_id"), Task.lead_unit_id.label("unit_id"),
                          literal(1).label("lead"))
            who = (lead.union_all(select(TaskUnit.task_id, TaskUnit.unit_id, literal(0)))
                   if include_coordinating else lead).subquery("who")
            key = ("nudge:" + cast(Task.id, String) + ":v" + cast(Task.deadline_version, String)
                   + ":" + o.name + ":" + cast(User.id, String))
            query = (
                select(Task.id, Task.deadline_version, Task.lead_unit_id, o.name, User.id,
                       Membership.role, User.telegram_id, User.language)
                .join(_OFFSETS, o.deadline == Task.deadline)
                .join(who, who.c.task_id == Task.id)
                .join(Membership, Membership.unit_id == who.c.unit_id)
                .join(User, User.id == Membership.user_id)
                .where(Task.closed_at.is_(None), User.active.is_(True),
                       User.reachable.is_(True),
                       or_(Membership.role == "focal",
                           and_(Membership.role == "leader", who.c.lead == 1, o.escalate == 1)),
                       ~exists().where(OutboxMessage.dedup_key == key))
                .order_by(Task.position, Task.id, User.id)
            )
            if task_ids is not None:
                query = query.where(Task.id.in_(list(task_ids)))
            return (await connection.execute(query)).all()
        finally:
            await connection.execute(_OFFSETS.delete())

    async def task_states(self, task_ids: Collection[int]
                          ) -> dict[int, tuple[date | None, int, bool]]:
        """task_id -> (deadline, deadline_version, closed)."""
        ids = list(task_ids)
        found: dict[int, tuple[date | None, int, bool]] = {}
        for start in range(0, len(ids), 500):
            rows = await self.session.execute(
                select(Task.id, Task.deadline, Task.deadline_version, Task.closed_at)
                .where(Task.id.in_(ids[start:start + 500])))
            found.update((task_id, (deadline, version, closed is not None))
                         for task_id, deadline, version, closed in rows)
        return found

    async def coordinating(self, task_ids: Sequence[int] | None = None
                           ) -> Sequence[Row[tuple[int, int]]]:
        query = select(TaskUnit.task_id, TaskUnit.unit_id).order_by(TaskUnit.position)
        if task_ids is not None:
            query = query.where(TaskUnit.task_id.in_(list(task_ids)))
        return (await self.session.execute(query)).all()

    async def units(self) -> dict[int, str]:
        rows = await self.session.execute(select(Unit.id, Unit.name))
        return {unit_id: name for unit_id, name in rows}

    async def unit_people(self) -> Sequence[Row[tuple[int, str, int, int, str | None, str]]]:
        """(unit_id, role, user_id, telegram_id, language, first_name) of people who can be
        messaged: active and reachable."""
        query = (select(Membership.unit_id, Membership.role, User.id, User.telegram_id,
                        User.language, User.first_name)
                 .join(User, User.id == Membership.user_id)
                 .where(User.active.is_(True), User.reachable.is_(True))
                 .order_by(Membership.unit_id, User.id))
        return (await self.session.execute(query)).all()

    async def units_of(self, user_id: int) -> list[int]:
        rows = await self.session.scalars(
            select(Membership.unit_id).where(Membership.user_id == user_id,
                                             Membership.role == "focal"))
        return list(rows)

    async def reported(self, period: str) -> set[tuple[int, int]]:
        """(task_id, unit_id) pairs with a report in the period."""
        rows = await self.session.execute(
            select(ProgressReport.task_id, ProgressReport.unit_id)
            .where(ProgressReport.period == period))
        return {(task_id, unit_id) for task_id, unit_id in rows}

    async def pending(self, kinds: Iterable[str], task_ids: Sequence[int] | None = None
                      ) -> Sequence[Row[tuple[int, str, str, int | None]]]:
        """(id, dedup_key, kind, task_id) of messages of these kinds not sent yet."""
        query = (select(OutboxMessage.id, OutboxMessage.dedup_key, OutboxMessage.kind,
                        OutboxMessage.task_id)
                 .where(OutboxMessage.state == "pending", OutboxMessage.kind.in_(list(kinds))))
        if task_ids is not None:
            query = query.where(OutboxMessage.task_id.in_(list(task_ids)))
        return (await self.session.execute(query)).all()

    async def cancel(self, ids: Sequence[int]) -> int:
        cancelled = 0
        for start in range(0, len(ids), 500):
            result = await self.session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(list(ids[start:start + 500])),
                       OutboxMessage.state == "pending")
                .values(state="cancelled"))
            cancelled += result.rowcount or 0  # type: ignore[attr-defined]
        return cancelled

    async def message(self, message_id: int) -> OutboxMessage | None:
        return await self.session.get(OutboxMessage, message_id)

    async def by_key(self, key: str) -> OutboxMessage | None:
        return await self.session.scalar(
            select(OutboxMessage).where(OutboxMessage.dedup_key == key))

    async def user(self, user_id: int) -> dict[str, Any] | None:
        row = (await self.session.execute(
            select(User.first_name, User.last_name, User.unreachable_since)
            .where(User.id == user_id))).first()
        if row is None:
            return None
        return {"name": " ".join(p for p in (row[0], row[1]) if p),
                "unreachable_since": row[2]}
