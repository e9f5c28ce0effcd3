"""Set-based reads for nudge planning: open tasks, who to tell, what is pending (whether a task
is completed comes from ReportRepository.lead_progress).

Plain rows (tuples), not ORM objects: planning reads every open task on each run.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    ColumnElement,
    Date,
    Integer,
    MetaData,
    Row,
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
    type_coerce,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import aliased
from sqlalchemy.sql.functions import FunctionElement

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

# The current nudge offset of each deadline date, worked out in Python (the working calendar)
# and joined against tasks in SQL; a temporary table lives only for one planning transaction.
# Besides the offset's name it holds what the message needs from the offset: which text
# (before / on_the_day / overdue), the days it names, the deadline as shown, and when it is due.
_OFFSETS = Table(
    "tmp_nudge_offsets", MetaData(),
    Column("deadline", Date, primary_key=True),
    Column("name", String(16)),
    Column("escalate", Integer),
    Column("kind", String(16)),
    Column("days", String(16)),
    Column("shown", String(16)),
    Column("slot", UTCDateTime),
    prefixes=["TEMPORARY"],
)
# The lead unit's progress on tasks that have reports (worked out in Python from the report
# history): completed tasks get no nudge; percent is the last reported one.
_PROGRESS = Table(
    "tmp_nudge_progress", MetaData(),
    Column("task_id", Integer, primary_key=True),
    Column("percent", Integer),
    Column("done", Integer),
    prefixes=["TEMPORARY"],
)

# A message template split into SQL pieces: re.split(r"\x01(\w+)\x01", text) of a rendering
# with marked fields, so even indexes are literal text and odd ones name a field.
Template = Sequence[str]


@dataclass(frozen=True)
class NudgeOffset:
    deadline: date
    name: str
    escalate: bool
    kind: str  # the text: before, on_the_day or overdue (escalation is per recipient)
    days: int
    shown: str  # the deadline as the message shows it
    slot: datetime


@dataclass(frozen=True)
class NudgeTemplates:
    """The nudge's payload in one language, as templates over SQL fields: text templates by
    kind (before, on_the_day, overdue, escalation) over code, title, unit, deadline, days,
    percent; percent over percent; payload over text (JSON-quoted) and task."""
    texts: Mapping[str, Template]
    percent: Template
    no_report: str
    payload: Template


class _JSONQuoted(FunctionElement[str]):
    """A string as a JSON string literal (quotes and escapes included)."""
    type = String()
    inherit_cache = True


@compiles(_JSONQuoted)
def _json_quoted_sqlite(element: _JSONQuoted, compiler: Any, **kw: Any) -> str:
    return f"json_quote({compiler.process(element.clauses, **kw)})"


@compiles(_JSONQuoted, "postgresql")
def _json_quoted_postgresql(element: _JSONQuoted, compiler: Any, **kw: Any) -> str:
    return f"CAST(to_json(CAST({compiler.process(element.clauses, **kw)} AS TEXT)) AS TEXT)"


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


def _html_escaped(value: Any) -> ColumnElement[str]:
    """html.escape(value) (quote=True) in SQL. Most texts hold none of the five characters:
    testing for them (LIKE) costs a third of the five replace() copies."""
    pairs = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;"), ("'", "&#x27;"))
    escaped = value
    for char, entity in pairs:
        escaped = func.replace(escaped, literal(char, String), literal(entity, String),
                               type_=String)
    special = or_(*[value.like(literal(f"%{char}%", String)) for char, _ in pairs])
    return case((special, escaped), else_=value)


def _filled(template: Template, fields: Mapping[str, ColumnElement[Any]]) -> ColumnElement[str]:
    """The template's literal pieces and fields concatenated in SQL."""
    parts: list[ColumnElement[Any]] = []
    for index, piece in enumerate(template):
        if index % 2:
            parts.append(fields[piece])
        elif piece:
            parts.append(literal(piece, String))
    if not parts:
        return literal("", String)
    expression = parts[0]
    for part in parts[1:]:
        expression = expression.op("||")(part)
    return type_coerce(expression, String)


def _insert(session: AsyncSession) -> Any:
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    return pg_insert if dialect == "postgresql" else sqlite_insert


class NudgeRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def open_task_leads(self) -> Sequence[Row[tuple[int, int]]]:
        """(id, lead_unit_id) of tasks not closed, in programme order."""
        return (await self.session.execute(
            select(Task.id, Task.lead_unit_id).where(Task.closed_at.is_(None))
            .order_by(Task.position, Task.id))).all()

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

    async def begin_plan(self, offsets: Sequence[NudgeOffset]) -> None:
        """Hold the current offset of each deadline for the queries of this planning run."""
        connection = await self.session.connection()

        def create(sync: Any) -> None:
            _OFFSETS.create(sync, checkfirst=True)
            _PROGRESS.create(sync, checkfirst=True)

        await connection.run_sync(create)
        await self.end_plan()
        if offsets:
            await connection.execute(_OFFSETS.insert(), [
                {"deadline": o.deadline, "name": o.name, "escalate": int(o.escalate),
                 "kind": o.kind, "days": str(o.days), "shown": o.shown, "slot": o.slot}
                for o in offsets])

    async def end_plan(self) -> None:
        connection = await self.session.connection()
        await connection.execute(_OFFSETS.delete())
        await connection.execute(_PROGRESS.delete())

    @staticmethod
    def _nudge_key() -> ColumnElement[str]:
        o = _OFFSETS.c
        return ("nudge:" + cast(Task.id, String) + ":v" + cast(Task.deadline_version, String)
                + ":" + o.name + ":" + cast(User.id, String))

    def _new_nudges(self, columns: Sequence[Any], include_coordinating: bool,
                    task_ids: Sequence[int] | None) -> Any:
        """Each open task whose deadline has a current offset (begin_plan), with each reachable
        focal point of its lead unit (of coordinating units too, if asked) and, where the
        offset escalates, each leader of the lead unit, whose nudge key is not in the outbox
        yet. A leader who is also a focal point gets the leader's (escalated) nudge only."""
        o = _OFFSETS.c
        lead = select(Task.id.label("task_id"), Task.lead_unit_id.label("unit_id"),
                      literal(1).label("lead"))
        who = (lead.union_all(select(TaskUnit.task_id, TaskUnit.unit_id, literal(0)))
               if include_coordinating else lead).subquery("who")
        leads = aliased(Membership)
        query = (
            select(*columns)
            .select_from(Task)
            .join(_OFFSETS, o.deadline == Task.deadline)
            .join(who, who.c.task_id == Task.id)
            .join(Membership, Membership.unit_id == who.c.unit_id)
            .join(User, User.id == Membership.user_id)
            .where(Task.closed_at.is_(None), User.active.is_(True),
                   User.reachable.is_(True),
                   or_(and_(Membership.role == "focal",
                            ~and_(o.escalate == 1,
                                  exists().where(leads.user_id == User.id,
                                                 leads.unit_id == Task.lead_unit_id,
                                                 leads.role == "leader"))),
                       and_(Membership.role == "leader", who.c.lead == 1, o.escalate == 1)),
                   ~exists().where(OutboxMessage.dedup_key == self._nudge_key()))
        )
        if task_ids is not None:
            query = query.where(Task.id.in_(list(task_ids)))
        return query

    async def reported_nudge_tasks(self, include_coordinating: bool,
                                   task_ids: Sequence[int] | None = None) -> list[int]:
        """The tasks with a nudge not in the outbox yet that have any progress report: the
        only ones whose completion or last percent the report history can tell."""
        query = (self._new_nudges([Task.id], include_coordinating, task_ids)
                 .where(exists().where(ProgressReport.task_id == Task.id)).distinct())
        return list(await self.session.scalars(query))

    async def insert_nudges(self, kind: str, templates: Mapping[str, NudgeTemplates],
                            default_language: str, progress: Mapping[int, tuple[int | None, bool]],
                            include_coordinating: bool, task_ids: Sequence[int] | None,
                            now: datetime) -> int:
        """Write the new nudges into the outbox in one INSERT ... SELECT, the text rendered in
        SQL from the templates (by the recipient's language); tasks done by progress (task ->
        (last percent, completed)) are left out. Returns how many rows were written."""
        connection = await self.session.connection()
        if progress:
            rows = [{"task_id": task_id, "percent": percent, "done": int(done)}
                    for task_id, (percent, done) in progress.items()]
            for start in range(0, len(rows), 5000):
                await connection.execute(_PROGRESS.insert(), rows[start:start + 5000])
        o, p = _OFFSETS.c, _PROGRESS.c
        percent_text = cast(p.percent, String)

        def payload(language: NudgeTemplates) -> ColumnElement[str]:
            shown = case((p.percent.is_(None), literal(language.no_report, String)),
                         else_=_filled(language.percent, {"percent": percent_text}))
            fields = {"code": _html_escaped(Task.code), "title": _html_escaped(Task.title),
                      "unit": _html_escaped(func.coalesce(Unit.name, "")),
                      "deadline": o.shown, "days": o.days, "percent": shown}
            text = case((Membership.role == "leader",
                         _filled(language.texts["escalation"], fields)),
                        *[(o.kind == name, _filled(language.texts[name], fields))
                          for name in ("before", "on_the_day")],
                        else_=_filled(language.texts["overdue"], fields))
            return _filled(language.payload, {"text": _JSONQuoted(text),
                                              "task": cast(Task.id, String)})

        others = [(User.language == name, payload(t)) for name, t in templates.items()
                  if name != default_language]
        default = payload(templates[default_language])
        columns = {
            "dedup_key": self._nudge_key(),
            "kind": literal(kind, String),
            "chat_id": User.telegram_id,
            "user_id": User.id,
            "task_id": Task.id,
            "payload": _AsJSON(case(*others, else_=default) if others else default),
            "due_at": o.slot,
            "state": literal("pending", String),
            "attempts": literal(0, Integer),
            "created_at": literal(now, UTCDateTime),
        }
        query = (self._new_nudges([value.label(name) for name, value in columns.items()],
                                  include_coordinating, task_ids)
                 .outerjoin(Unit, Unit.id == Task.lead_unit_id)
                 .outerjoin(_PROGRESS, p.task_id == Task.id)
                 .where(func.coalesce(p.done, 0) == 0)
                 .order_by(Task.position, Task.id, User.id))
        statement = (_insert(self.session)(OutboxMessage)
                     .from_select(list(columns), query)
                     .on_conflict_do_nothing(index_elements=["dedup_key"]))
        result = await connection.execute(statement)
        return result.rowcount or 0  # type: ignore[attr-defined]

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
