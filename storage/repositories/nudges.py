"""Set-based queries for nudges and period reminders: what to plan, what to cancel, and what a
message needs when it is sent (whether a task is completed comes from ReportRepository).

Planning writes outbox rows with INSERT ... SELECT and cancels with one UPDATE: no Python object
per row, since planning looks at every open task on each run. A nudge row holds only what it is
for (task, deadline version, offset, recipient); its text is rendered when it is sent, from the
reads at the end of this module.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    ColumnElement,
    Date,
    Index,
    Integer,
    MetaData,
    Row,
    Select,
    String,
    Table,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    or_,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import aliased
from sqlalchemy.sql.functions import FunctionElement

from storage.dialects import upsert_insert
from storage.models import (
    Membership,
    OutboxMessage,
    ProgressReport,
    Task,
    TaskUnit,
    Unit,
    User,
    UTCDateTime,
)
from storage.repositories.reports import ReportRepository

# The current nudge offset of each deadline date, worked out in Python (the working calendar)
# and joined against tasks in SQL; a temporary table lives only for one planning transaction.
_OFFSETS = Table(
    "tmp_nudge_offsets",
    MetaData(),
    Column("deadline", Date, primary_key=True),
    Column("name", String(16)),
    Column("escalate", Integer),  # 1: the unit's leaders are told too
    Column("slot", UTCDateTime),  # when it is due, inside working hours
    # The planning run's moment, the same in every row. Completion is checked against it
    # here rather than against a parameter, so that SQLite checks it only for tasks whose
    # deadline has a current offset (a condition is evaluated as soon as the tables it names
    # are joined), not for every open task.
    Column("at", UTCDateTime),
    prefixes=["TEMPORARY"],
)


# Who may be nudged in each unit, worked out once per run rather than for every task: each
# active, reachable member, whether they are the unit's leader, and for a focal point whether
# they lead the unit too (a leader who is also a focal point gets the leader's nudge only).
_RECIPIENTS = Table(
    "tmp_nudge_recipients",
    MetaData(),
    Column("unit_id", Integer),
    Column("user_id", Integer),
    Column("telegram_id", BigInteger),
    Column("leader", Integer),
    Column("also_leader", Integer),
    Index("ix_tmp_nudge_recipients", "unit_id", "user_id", "telegram_id", "leader", "also_leader"),
    prefixes=["TEMPORARY"],
)


@dataclass(frozen=True)
class NudgeOffset:
    deadline: date
    name: str
    escalate: bool
    slot: datetime


class _AsJSON(FunctionElement[Any]):
    """JSON text for a JSON column: SQLite stores the text, PostgreSQL needs a cast."""

    type = JSON()
    inherit_cache = True


@compiles(_AsJSON)
def _as_json_sqlite(element: _AsJSON, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.clauses, **kw))


@compiles(_AsJSON, "postgresql")
def _as_json_postgresql(element: _AsJSON, compiler: Any, **kw: Any) -> str:
    return f"CAST({compiler.process(element.clauses, **kw)} AS JSON)"


class _Format(FunctionElement[str]):
    """A text from a template with %s for each argument: printf on SQLite, format on
    PostgreSQL. For the dedup keys of many rows at once: one call costs half what a chain
    of || concatenations does on SQLite."""

    type = String()
    inherit_cache = True


@compiles(_Format)
def _format_sqlite(element: _Format, compiler: Any, **kw: Any) -> str:
    return f"printf({compiler.process(element.clauses, **kw)})"


@compiles(_Format, "postgresql")
def _format_postgresql(element: _Format, compiler: Any, **kw: Any) -> str:
    return f"format({compiler.process(element.clauses, **kw)})"


def _key(template: str, *values: Any) -> _Format:
    return _Format(literal(template, String), *values)


def _json(value: Mapping[str, Any]) -> _AsJSON:
    return _AsJSON(literal(json.dumps(value), String))


def _insert(session: AsyncSession) -> Any:
    return upsert_insert(session.bind.dialect.name if session.bind else "sqlite")


def _reported(task_id: Any, unit_id: Any, period: str) -> ColumnElement[bool]:
    """The unit has reported on the task in the period."""
    return exists().where(
        ProgressReport.task_id == task_id, ProgressReport.unit_id == unit_id, ProgressReport.period == period
    )


@dataclass(frozen=True)
class NudgeToSend:
    """What a nudge's text is rendered from when it is sent: the row, and its task now."""

    deadline_version: int | None  # the row's
    offset: str | None
    payload: Mapping[str, Any]
    language: str | None  # the recipient's
    task_id: int | None  # None: the task is gone
    code: str
    title: str
    unit: str  # the lead unit's name
    deadline: date | None
    task_version: int
    closed: bool


@dataclass(frozen=True)
class OwedReport:
    task_id: int
    code: str
    title: str
    unit: str


class NudgeRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # ------------------------------------------------------------------ deadline nudges

    async def deadlines(self, task_ids: Sequence[int] | None = None) -> list[date]:
        """The distinct deadlines of open tasks."""
        query = select(Task.deadline).distinct().where(Task.closed_at.is_(None), Task.deadline.is_not(None))
        if task_ids is not None:
            query = query.where(Task.id.in_(list(task_ids)))
        return [d for d in await self.session.scalars(query) if d is not None]

    async def begin_plan(self, offsets: Sequence[NudgeOffset], at: datetime) -> None:
        """Hold the current offset of each deadline, and who may be nudged in each unit, for
        the queries of this planning run at `at`."""
        connection = await self.session.connection()

        def create(sync: Any) -> None:
            _OFFSETS.create(sync, checkfirst=True)
            _RECIPIENTS.create(sync, checkfirst=True)

        await connection.run_sync(create)
        await self.end_plan()
        if offsets:
            await connection.execute(
                _OFFSETS.insert(),
                [
                    {
                        "deadline": o.deadline,
                        "name": o.name,
                        "escalate": int(o.escalate),
                        "slot": o.slot,
                        "at": at,
                    }
                    for o in offsets
                ],
            )
        leads = aliased(Membership)
        is_leader = Membership.role == "leader"
        also_leader = and_(
            ~is_leader,
            exists().where(
                leads.user_id == Membership.user_id,
                leads.unit_id == Membership.unit_id,
                leads.role == "leader",
            ),
        )
        await connection.execute(
            _RECIPIENTS.insert().from_select(
                ["unit_id", "user_id", "telegram_id", "leader", "also_leader"],
                select(
                    Membership.unit_id,
                    User.id,
                    User.telegram_id,
                    case((is_leader, 1), else_=0),
                    case((also_leader, 1), else_=0),
                )
                .join(User, User.id == Membership.user_id)
                .where(User.active.is_(True), User.reachable.is_(True)),
            )
        )

    async def end_plan(self) -> None:
        connection = await self.session.connection()
        await connection.execute(_OFFSETS.delete())
        await connection.execute(_RECIPIENTS.delete())

    async def cancel_superseded(self, kinds: Iterable[str], task_ids: Sequence[int] | None) -> int:
        """Cancel, in one UPDATE, pending nudges (and snoozed repeats) that are no longer the
        latest wanted one: their task is gone, closed or completed, its deadline changed
        (another version), or the deadline's current offset (begin_plan) is another one or
        none."""
        o = _OFFSETS.c
        wanted = (
            select(literal(1))
            .select_from(Task)
            .join(_OFFSETS, o.deadline == Task.deadline)
            .where(
                Task.id == OutboxMessage.task_id,
                Task.deadline_version == OutboxMessage.deadline_version,
                o.name == OutboxMessage.nudge_offset,
                Task.closed_at.is_(None),
                ~ReportRepository.completed(o.at),
            )
            .correlate(OutboxMessage)
            .exists()
        )
        statement = (
            update(OutboxMessage)
            .where(OutboxMessage.state == "pending", OutboxMessage.kind.in_(list(kinds)), ~wanted)
            .values(state="cancelled")
            .execution_options(synchronize_session=False)
        )
        if task_ids is not None:
            statement = statement.where(OutboxMessage.task_id.in_(list(task_ids)))
        result = await self.session.execute(statement)
        return result.rowcount or 0  # type: ignore[attr-defined]

    async def pending_count(self, kinds: Iterable[str]) -> int:
        """How many rows of these kinds wait to be sent (planned, not yet claimed)."""
        return int(
            await self.session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.state == "pending", OutboxMessage.kind.in_(list(kinds)))
            )
            or 0
        )

    async def insert_nudges(
        self,
        kind: str,
        include_coordinating: bool,
        task_ids: Sequence[int] | None,
        now: datetime,
        limit: int | None = None,
    ) -> int:
        """Write the nudges due now and not in the outbox yet (the first `limit` of them), in
        one INSERT ... SELECT, in programme order: for each open task not completed whose
        deadline has a current offset (begin_plan), one to each reachable focal point of its
        lead unit (of coordinating units too, if asked) and, where the offset escalates, to
        each leader of the lead unit instead. A leader who is also a focal point gets the
        leader's nudge only. Returns how many rows were written."""
        o, r = _OFFSETS.c, _RECIPIENTS.c
        if include_coordinating:
            who = union_all(
                select(
                    Task.id.label("task_id"), Task.lead_unit_id.label("unit_id"), literal(1).label("lead")
                ),
                select(TaskUnit.task_id, TaskUnit.unit_id, literal(0)),
            ).subquery("who")
            unit_id: Any = who.c.unit_id
            is_lead: ColumnElement[bool] = who.c.lead == 1
            # A focal point of a coordinating unit may lead the lead unit.
            leads = aliased(Membership)
            leads_lead_unit: ColumnElement[bool] = exists().where(
                leads.user_id == r.user_id, leads.unit_id == Task.lead_unit_id, leads.role == "leader"
            )
        else:
            unit_id, is_lead, leads_lead_unit = Task.lead_unit_id, true(), r.also_leader == 1
        columns = {
            "dedup_key": _key("nudge:%s:v%s:%s:%s", Task.id, Task.deadline_version, o.name, r.user_id),
            "kind": literal(kind, String),
            "chat_id": r.telegram_id,
            "user_id": r.user_id,
            "task_id": Task.id,
            "deadline_version": Task.deadline_version,
            "nudge_offset": o.name,
            # The leader's text (escalation) or the focal point's, chosen at send time.
            "payload": case((r.leader == 1, _json({"escalation": True})), else_=_json({})),
            "due_at": o.slot,
            "state": literal("pending", String),
            "attempts": literal(0, Integer),
            "created_at": literal(now, UTCDateTime),
        }
        query = select(*[value.label(name) for name, value in columns.items()]).select_from(Task)
        query = query.join(_OFFSETS, o.deadline == Task.deadline)
        if include_coordinating:
            query = query.join(who, who.c.task_id == Task.id)
        query = (
            query.join(_RECIPIENTS, r.unit_id == unit_id)
            .where(
                Task.closed_at.is_(None),
                or_(
                    and_(r.leader == 0, ~and_(o.escalate == 1, leads_lead_unit)),
                    and_(r.leader == 1, is_lead, o.escalate == 1),
                ),
                ~ReportRepository.completed(o.at),
                # Only nudges and their snoozed repeats hold an offset, and a repeat is
                # made from a sent nudge: a row here means this nudge's key is taken.
                ~exists().where(
                    OutboxMessage.task_id == Task.id,
                    OutboxMessage.user_id == r.user_id,
                    OutboxMessage.nudge_offset == o.name,
                    OutboxMessage.deadline_version == Task.deadline_version,
                ),
            )
            .order_by(Task.position, Task.id, r.user_id)
        )
        if task_ids is not None:
            query = query.where(Task.id.in_(list(task_ids)))
        if limit is not None:
            query = query.limit(limit)
        return await self._insert_new(columns, query)

    async def _insert_new(self, columns: dict[str, Any], query: Select[Any]) -> int:
        """INSERT the query's rows into the outbox, skipping keys already there; how many."""
        statement = (
            _insert(self.session)(OutboxMessage)
            .from_select(list(columns), query)
            .on_conflict_do_nothing(index_elements=["dedup_key"])
        )
        connection = await self.session.connection()
        result = await connection.execute(statement)
        return result.rowcount or 0  # type: ignore[attr-defined]

    async def nudge_to_send(self, outbox_id: int) -> NudgeToSend | None:
        """The nudge row and its task as they are now (None: no such row)."""
        row = (
            await self.session.execute(
                select(
                    OutboxMessage.deadline_version,
                    OutboxMessage.nudge_offset,
                    OutboxMessage.payload,
                    User.language,
                    Task.id,
                    Task.code,
                    Task.title,
                    Unit.name,
                    Task.deadline,
                    Task.deadline_version,
                    Task.closed_at,
                )
                .select_from(OutboxMessage)
                .outerjoin(User, User.id == OutboxMessage.user_id)
                .outerjoin(Task, Task.id == OutboxMessage.task_id)
                .outerjoin(Unit, Unit.id == Task.lead_unit_id)
                .where(OutboxMessage.id == outbox_id)
            )
        ).first()
        if row is None:
            return None
        (
            version,
            offset,
            payload,
            language,
            task_id,
            code,
            title,
            unit,
            deadline,
            task_version,
            closed_at,
        ) = row
        return NudgeToSend(
            version,
            offset,
            payload or {},
            language,
            task_id,
            code or "",
            title or "",
            unit or "",
            deadline,
            task_version or 0,
            closed_at is not None,
        )

    # ------------------------------------------------------------------ period reminders

    @staticmethod
    def _owed(user_id: Any, period: str, at: datetime, include_coordinating: bool) -> list[Select[Any]]:
        """(task id, code, title, unit name, position, rank) of what this person owes as a
        focal point: an open task not completed at `at` whose lead unit (or coordinating unit,
        if asked) is theirs and has not reported on it in the period. One select per way of
        owing; rank orders a task's lead unit before its coordinating units."""

        def owed(unit_id: Any, rank: Any, *joins: tuple[Any, Any]) -> Select[Any]:
            query = select(
                Task.id.label("task_id"),
                Task.code.label("code"),
                Task.title.label("title"),
                Unit.name.label("unit"),
                Task.position.label("position"),
                rank.label("rank"),
            )
            query = query.select_from(Membership)
            for table, on in joins:
                query = query.join(table, on)
            return query.join(Unit, Unit.id == unit_id).where(
                Membership.user_id == user_id,
                Membership.role == "focal",
                Task.closed_at.is_(None),
                ~_reported(Task.id, unit_id, period),
                ~ReportRepository.completed(at),
            )

        selects = [owed(Task.lead_unit_id, literal(-1), (Task, Task.lead_unit_id == Membership.unit_id))]
        if include_coordinating:
            selects.append(
                owed(
                    TaskUnit.unit_id,
                    TaskUnit.position,
                    (TaskUnit, TaskUnit.unit_id == Membership.unit_id),
                    (Task, Task.id == TaskUnit.task_id),
                )
            )
        return selects

    def _owes(
        self, user_id: Any, period: str, at: datetime, include_coordinating: bool
    ) -> ColumnElement[bool]:
        """Whether this person owes any report in the period (see _owed); the first found
        answers, so planning costs about one probe per focal point."""
        return or_(
            *[
                query.with_only_columns(literal(1)).exists()
                for query in self._owed(user_id, period, at, include_coordinating)
            ]
        )

    async def insert_period_reminders(
        self,
        kind: str,
        key_prefix: str,
        payload: Mapping[str, Any],
        slot: datetime,
        period: str,
        include_coordinating: bool,
        now: datetime,
    ) -> int:
        """One reminder to each reachable person who owes a report in the period (key:
        key_prefix + user id), unless planned already, in one INSERT ... SELECT."""
        key = literal(key_prefix, String) + cast(User.id, String)
        columns = {
            "dedup_key": key,
            "kind": literal(kind, String),
            "chat_id": User.telegram_id,
            "user_id": User.id,
            "payload": _json(payload),
            "due_at": literal(slot, UTCDateTime),
            "state": literal("pending", String),
            "attempts": literal(0, Integer),
            "created_at": literal(now, UTCDateTime),
        }
        query = (
            select(*[value.label(name) for name, value in columns.items()])
            .where(
                User.active.is_(True),
                User.reachable.is_(True),
                ~exists().where(OutboxMessage.dedup_key == key),
                self._owes(User.id, period, now, include_coordinating),
            )
            .order_by(User.id)
        )
        return await self._insert_new(columns, query)

    async def cancel_period_reminders(
        self, kind: str, key_prefix: str | None, period: str, include_coordinating: bool, now: datetime
    ) -> int:
        """Cancel pending reminders other than this one's (key_prefix + user id; None: all),
        and this one's to people who now owe nothing or cannot be reached."""
        statement = (
            update(OutboxMessage)
            .where(OutboxMessage.state == "pending", OutboxMessage.kind == kind)
            .values(state="cancelled")
            .execution_options(synchronize_session=False)
        )
        if key_prefix is not None:
            person = aliased(User)
            wanted = and_(
                OutboxMessage.dedup_key == literal(key_prefix, String) + cast(OutboxMessage.user_id, String),
                select(literal(1))
                .select_from(person)
                .where(
                    person.id == OutboxMessage.user_id,
                    person.active.is_(True),
                    person.reachable.is_(True),
                    self._owes(person.id, period, now, include_coordinating),
                )
                .correlate(OutboxMessage)
                .exists(),
            )
            statement = statement.where(~wanted)
        result = await self.session.execute(statement)
        return result.rowcount or 0  # type: ignore[attr-defined]

    async def owed(
        self, user_id: int, period: str, at: datetime, include_coordinating: bool, limit: int
    ) -> tuple[list[OwedReport], int]:
        """The first `limit` reports this person owes in the period, in programme order (a
        task's lead unit first, then its coordinating units), and how many they owe."""
        owed = union_all(*self._owed(user_id, period, at, include_coordinating)).subquery()
        rows = (
            await self.session.execute(
                select(owed.c.task_id, owed.c.code, owed.c.title, owed.c.unit, func.count().over())
                .order_by(owed.c.position, owed.c.task_id, owed.c.rank)
                .limit(limit)
            )
        ).all()
        return (
            [OwedReport(task_id, code, title, unit or "") for task_id, code, title, unit, _ in rows],
            rows[0][4] if rows else 0,
        )

    async def owed_tasks(
        self, user_id: int, period: str, at: datetime, include_coordinating: bool, limit: int
    ) -> list[tuple[int, str]]:
        """(id, code) of the first `limit` distinct tasks this person owes a report on."""
        owed = union_all(*self._owed(user_id, period, at, include_coordinating)).subquery()
        rows = await self.session.execute(
            select(owed.c.task_id, owed.c.code, owed.c.position)
            .distinct()
            .order_by(owed.c.position, owed.c.task_id)
            .limit(limit)
        )
        return [(task_id, code) for task_id, code, _ in rows]

    # ------------------------------------------------------------------ people, messages

    async def language(self, user_id: int | None) -> str | None:
        if user_id is None:
            return None
        return await self.session.scalar(select(User.language).where(User.id == user_id))

    async def units(self) -> dict[int, str]:
        rows = await self.session.execute(select(Unit.id, Unit.name))
        return {unit_id: name for unit_id, name in rows}

    async def unit_people(self) -> Sequence[Row[tuple[int, str, int, int, str | None, str]]]:
        """(unit_id, role, user_id, telegram_id, language, first_name) of people who can be
        messaged: active and reachable."""
        query = (
            select(
                Membership.unit_id, Membership.role, User.id, User.telegram_id, User.language, User.first_name
            )
            .join(User, User.id == Membership.user_id)
            .where(User.active.is_(True), User.reachable.is_(True))
            .order_by(Membership.unit_id, User.id)
        )
        return (await self.session.execute(query)).all()

    async def units_of(self, user_id: int) -> list[int]:
        rows = await self.session.scalars(
            select(Membership.unit_id).where(Membership.user_id == user_id, Membership.role == "focal")
        )
        return list(rows)

    async def message(self, message_id: int) -> OutboxMessage | None:
        return await self.session.get(OutboxMessage, message_id)

    async def by_key(self, key: str) -> OutboxMessage | None:
        return await self.session.scalar(select(OutboxMessage).where(OutboxMessage.dedup_key == key))

    async def user(self, user_id: int) -> dict[str, Any] | None:
        row = (
            await self.session.execute(
                select(User.first_name, User.last_name, User.unreachable_since).where(User.id == user_id)
            )
        ).first()
        if row is None:
            return None
        return {"name": " ".join(p for p in (row[0], row[1]) if p), "unreachable_since": row[2]}
