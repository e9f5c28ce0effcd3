"""The whole domain as SQLAlchemy 2 models, portable between SQLite and PostgreSQL.

Times are stored in UTC and always come back timezone-aware (UTCDateTime); calendar days
(deadlines) are plain dates reckoned in the configured time zone.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.sql.expression import false
from sqlalchemy.types import TypeDecorator

# Deterministic constraint names, so that Alembic batch migrations on SQLite can find them.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Roles a membership gives inside one unit, and roles that span the whole programme.
UNIT_ROLES = ("focal", "leader")
GLOBAL_ROLES = ("admin", "manager")
INVITE_ROLES = ("focal", "leader", "manager")
# What a focal point reports (DOMAIN.md): chưa thực hiện / đang thực hiện / đã hoàn thành /
# gặp vướng mắc.
REPORT_STATUSES = ("not_started", "in_progress", "done", "stuck")
OUTBOX_STATES = ("pending", "claimed", "sent", "failed", "cancelled")
INBOX_STATES = ("pending", "done", "failed")
PROGRAMME_STATES = ("active", "closed")
PROGRAMME_PERIODS = ("weekly", "monthly", "quarterly")


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC; refuses naive datetimes so no local time slips in."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        # SQLite keeps no offset: store the UTC wall time.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class Unit(Base):
    __tablename__ = "units"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(300))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("units.id", ondelete="SET NULL"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    parent: Mapped[Unit | None] = relationship(remote_side=[id])


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    telegram_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    first_name: Mapped[str] = mapped_column(String(200), default="")
    last_name: Mapped[str | None] = mapped_column(String(200))
    username: Mapped[str | None] = mapped_column(String(64), index=True)
    # None: the bot's default language.
    language: Mapped[str | None] = mapped_column(String(8))
    # False once Telegram answers 403 (blocked, deactivated); True again when they write.
    reachable: Mapped[bool] = mapped_column(Boolean, default=True)
    unreachable_since: Mapped[datetime | None]
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime | None]

    memberships: Mapped[list[Membership]] = relationship(back_populates="user")
    roles: Mapped[list[UserRole]] = relationship(back_populates="user", foreign_keys="UserRole.user_id")


class Membership(Base):
    """A user's place in a unit: focal point (reports) or leader (sees the unit)."""

    __tablename__ = "memberships"
    __table_args__ = (
        UniqueConstraint("user_id", "unit_id", "role"),
        CheckConstraint("role IN ('focal', 'leader')", name="role"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    user: Mapped[User] = relationship(back_populates="memberships")
    unit: Mapped[Unit] = relationship()


class UserRole(Base):
    """A programme-wide role: admin or manager."""

    __tablename__ = "user_roles"
    __table_args__ = (
        UniqueConstraint("user_id", "role"),
        CheckConstraint("role IN ('admin', 'manager')", name="role"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))
    granted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    user: Mapped[User] = relationship(back_populates="roles", foreign_keys=[user_id])


class Programme(Base):
    """An action programme (chương trình hành động), known by the decision that issued it.

    Groups and tasks belong to one programme and their codes are unique within it: next
    year's programme numbers its tasks 1.1, 2.1 … again. A closed programme's tasks leave
    every open list (their closed_at is the programme's) and its reports stay readable.
    """

    __tablename__ = "programmes"
    __table_args__ = (
        CheckConstraint("state = 'active' OR state = 'closed'", name="state"),
        CheckConstraint(
            "period IS NULL OR period = 'weekly' OR period = 'monthly' OR period = 'quarterly'",
            name="period",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(48), unique=True)
    # What task codes are prefixed with when several programmes are active ("2025:1.1").
    short_code: Mapped[str] = mapped_column(String(16), unique=True)
    title: Mapped[str] = mapped_column(Text, default="")
    # "59/QĐ-BKHCN", its date, and who issued it ("Bộ Khoa học và Công nghệ").
    decision: Mapped[str] = mapped_column(String(64), default="")
    decision_date: Mapped[date | None] = mapped_column(Date)
    issuer: Mapped[str] = mapped_column(String(300), default="")
    starts_on: Mapped[date | None] = mapped_column(Date)
    ends_on: Mapped[date | None] = mapped_column(Date)
    # The reporting period; None: config.toml's [reporting]. The cut-off as in config.toml:
    # "thursday 17:00" for weeks, "25 17:00" (day and time) for months and quarters.
    period: Mapped[str | None] = mapped_column(String(16))
    cutoff: Mapped[str | None] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), default="active")
    closed_at: Mapped[datetime | None]
    # The completion figures at closing (the final report's headline numbers).
    closing: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class TaskGroup(Base):
    __tablename__ = "task_groups"
    __table_args__ = (UniqueConstraint("programme_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    programme_id: Mapped[int] = mapped_column(ForeignKey("programmes.id"))
    code: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(Text)
    position: Mapped[int] = mapped_column(Integer, default=0)


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (
        # Nudge planning reads every open task on each run (every few minutes): on SQLite this
        # index holds all it needs, in programme order, so it reads neither the table's rows
        # (titles, descriptions) nor sorts them again; the next one gives the open tasks'
        # distinct deadlines (each gets its offset worked out) without a sort. Over open tasks
        # only on SQLite: PostgreSQL, before it has statistics (right after a bulk import, or
        # with autovacuum off), took a partial index over open tasks for a selective one and
        # scanned all of it once per unit (bench/nudges.py over 100,000 tasks: 9 s, not 1 s).
        Index(
            "ix_tasks_open_plan",
            "position",
            "id",
            "deadline",
            "lead_unit_id",
            "deadline_version",
            "closed_at",
            sqlite_where=text("closed_at IS NULL"),
        ),
        Index("ix_tasks_open_deadline", "deadline", sqlite_where=text("closed_at IS NULL")),
        # Codes are unique within a programme (next year's programme starts at 1.1 again).
        UniqueConstraint("programme_id", "code"),
        Index("ix_tasks_code", "code"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    programme_id: Mapped[int] = mapped_column(ForeignKey("programmes.id"))
    code: Mapped[str] = mapped_column(String(32))
    group_id: Mapped[int] = mapped_column(ForeignKey("task_groups.id"), index=True)
    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    legal_source: Mapped[str] = mapped_column(Text, default="")
    lead_unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    # None: ongoing (thường xuyên).
    deadline: Mapped[date | None] = mapped_column(Date)
    # Bumped on every deadline change, so that reminders planned for an old deadline are told
    # apart from new ones.
    deadline_version: Mapped[int] = mapped_column(Integer, default=1)
    expected_output: Mapped[str] = mapped_column(Text, default="")
    target_value: Mapped[float | None] = mapped_column(Float)
    target_unit: Mapped[str | None] = mapped_column(String(32))
    target_label: Mapped[str | None] = mapped_column(Text)
    position: Mapped[int] = mapped_column(Integer, default=0)
    # Withdrawn tasks (/task_close) keep their history but leave every list.
    closed_at: Mapped[datetime | None]
    close_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    programme: Mapped[Programme] = relationship()
    group: Mapped[TaskGroup] = relationship()
    lead_unit: Mapped[Unit] = relationship()
    coordinating: Mapped[list[TaskUnit]] = relationship(
        back_populates="task", cascade="all, delete-orphan", order_by="TaskUnit.position"
    )


class TaskUnit(Base):
    """A coordinating unit (đơn vị phối hợp) of a task."""

    __tablename__ = "task_units"
    __table_args__ = (UniqueConstraint("task_id", "unit_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)

    task: Mapped[Task] = relationship(back_populates="coordinating")
    unit: Mapped[Unit] = relationship()


class ProgressReport(Base):
    """One unit's report on one task for one period (#N in the receipt).

    The fields of the latest revision are kept here too, so that reports over a period are
    aggregated without reading every revision; ReportRevision keeps each one in full.
    """

    __tablename__ = "progress_reports"
    __table_args__ = (
        # One report per unit, task and period; a second submission is a new revision.
        UniqueConstraint("task_id", "unit_id", "period"),
        Index("ix_progress_reports_period_task", "period", "task_id"),
        Index("ix_progress_reports_task_submitted", "task_id", "submitted_at"),
        # The consolidated report: a task's latest lead-unit report of each status, one seek.
        Index("ix_progress_reports_task_unit_status", "task_id", "unit_id", "status", "submitted_at"),
        CheckConstraint("status IN ('not_started', 'in_progress', 'done', 'stuck')", name="status"),
        CheckConstraint("percent >= 0 AND percent <= 100", name="percent"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    reporter_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # The reporting period's key, e.g. "2024-W05" or "2024-01".
    period: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    percent: Mapped[int] = mapped_column(Integer)
    results: Mapped[str] = mapped_column(Text, default="")
    difficulties: Mapped[str] = mapped_column(Text, default="")
    proposals: Mapped[str] = mapped_column(Text, default="")
    indicator_value: Mapped[float | None] = mapped_column(Float)
    evidence_ref: Mapped[str] = mapped_column(Text, default="")
    # Filed with one tap as a copy of the unit's previous report ("Không thay đổi").
    unchanged: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    revision: Mapped[int] = mapped_column(Integer, default=1)
    # When the latest revision was sent (what /tasks and /history show as the report's time).
    submitted_at: Mapped[datetime] = mapped_column(default=utcnow)
    # When the unit's current run of this status on the task began: the time of the first of
    # its consecutive submissions (revisions, across periods) saying this status. A correction
    # that keeps the status keeps it; one that changes the status sets it to the correction's
    # time. A "done" report's value is when the task was completed (bot/services/status.py).
    status_since: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    revisions: Mapped[list[ReportRevision]] = relationship(
        back_populates="report", cascade="all, delete-orphan", order_by="ReportRevision.revision"
    )
    attachments: Mapped[list[Attachment]] = relationship(
        back_populates="report", cascade="all, delete-orphan"
    )


class ReportRevision(Base):
    """Every submitted version of a report; a correction adds one and keeps the old."""

    __tablename__ = "report_revisions"
    __table_args__ = (UniqueConstraint("report_id", "revision"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("progress_reports.id", ondelete="CASCADE"))
    revision: Mapped[int] = mapped_column(Integer)
    reporter_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(16))
    percent: Mapped[int] = mapped_column(Integer)
    results: Mapped[str] = mapped_column(Text, default="")
    difficulties: Mapped[str] = mapped_column(Text, default="")
    proposals: Mapped[str] = mapped_column(Text, default="")
    indicator_value: Mapped[float | None] = mapped_column(Float)
    evidence_ref: Mapped[str] = mapped_column(Text, default="")
    unchanged: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    submitted_at: Mapped[datetime] = mapped_column(default=utcnow)

    report: Mapped[ProgressReport] = relationship(back_populates="revisions")


class Attachment(Base):
    """Evidence: the Telegram file id plus a local copy and its sha256."""

    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("progress_reports.id", ondelete="CASCADE"), index=True)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    telegram_file_id: Mapped[str] = mapped_column(String(255))
    telegram_file_unique_id: Mapped[str] = mapped_column(String(64), default="")
    file_name: Mapped[str] = mapped_column(String(255), default="")
    mime_type: Mapped[str] = mapped_column(String(127), default="")
    size: Mapped[int] = mapped_column(Integer, default=0)
    sha256: Mapped[str | None] = mapped_column(String(64))
    local_path: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    report: Mapped[ProgressReport] = relationship(back_populates="attachments")


class Invite(Base):
    """A single-use invite; only the sha256 of its code is stored."""

    __tablename__ = "invites"
    __table_args__ = (CheckConstraint("role IN ('focal', 'leader', 'manager')", name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    used_at: Mapped[datetime | None]


class AuditEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_entity", "entity", "entity_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    # Telegram id of who acted; None for the command line and the scheduler.
    actor_telegram_id: Mapped[int | None] = mapped_column(BigInteger)
    actor: Mapped[str] = mapped_column(String(64), default="")
    action: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(32), default="")
    entity_id: Mapped[str] = mapped_column(String(64), default="")
    before: Mapped[dict[str, Any] | None]
    after: Mapped[dict[str, Any] | None]
    detail: Mapped[str] = mapped_column(Text, default="")


class OutboxMessage(Base):
    """A message the bot owes someone. The unique dedup key makes planning idempotent; the
    dispatcher claims due rows, sends them, and marks them sent."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_state_due", "state", "due_at"),
        # Nudge planning asks of every open task and recipient whether the nudge of the
        # current offset is planned already: one probe of this index each, by integers and a
        # short string (no key to build); task_id first, for the task's rows (cascade, cancel).
        Index("ix_outbox_task_nudge", "task_id", "user_id", "nudge_offset", "deadline_version"),
        # Written as ORs, not IN (...): SQLite checks an IN list of more than two values
        # through a temporary table built again for every row written, which cost more than
        # the row itself when planning writes 100,000 nudges (bench/nudges.py).
        CheckConstraint(
            "state = 'pending' OR state = 'claimed' OR state = 'sent' OR state = 'failed'"
            " OR state = 'cancelled'",
            name="state",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    dedup_key: Mapped[str] = mapped_column(String(255), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    chat_id: Mapped[int] = mapped_column(BigInteger)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    # Nudges and their snoozed repeats: the task's deadline version and the offset (b7, d0,
    # o4, ...) they are for. Their text is rendered when they are sent (bot/jobs/dispatch.py).
    deadline_version: Mapped[int | None] = mapped_column(Integer)
    nudge_offset: Mapped[str | None] = mapped_column(String(16))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    due_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    telegram_message_id: Mapped[int | None] = mapped_column(BigInteger)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReportRun(Base):
    """One consolidated report per period and scope (all units, or one unit's leaders)."""

    __tablename__ = "report_runs"
    __table_args__ = (UniqueConstraint("period", "scope"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    period: Mapped[str] = mapped_column(String(16))
    # "all" or "unit:<code>".
    scope: Mapped[str] = mapped_column(String(48), default="all")
    state: Mapped[str] = mapped_column(String(16), default="started")
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    detail: Mapped[dict[str, Any] | None]


class Subscription(Base):
    """Someone who asked for the digest with /subscribe."""

    __tablename__ = "subscriptions"
    __table_args__ = (UniqueConstraint("user_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32), default="digest")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DeadlineExtension(Base):
    """A focal point's request to move a deadline, and the admin's decision."""

    __tablename__ = "deadline_extensions"
    __table_args__ = (CheckConstraint("state IN ('pending', 'approved', 'rejected')", name="state"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    old_deadline: Mapped[date | None] = mapped_column(Date)
    new_deadline: Mapped[date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(16), default="pending")
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ConversationState(Base):
    """Where each user is in each guided flow, written at every step (survives kill -9)."""

    __tablename__ = "conversation_states"
    __table_args__ = (UniqueConstraint("name", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(128))
    state: Mapped[dict[str, Any] | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Draft(Base):
    """The answers of an unfinished guided flow (one per user and flow)."""

    __tablename__ = "drafts"
    __table_args__ = (UniqueConstraint("user_id", "flow"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    flow: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Bumped at every step: a button on an older message carries an older version.
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class InboxUpdate(Base):
    """An update from Telegram, stored as received before Telegram is told it arrived (the
    getUpdates offset moves past it, or the webhook answers 200), and handled from here in
    order per chat (bot/updates.py). `done` is written in the handler's first write
    transaction (storage/handled.py), so after a crash an update is handled again only if
    nothing it changed was committed. Rows that failed keep their raw JSON for inspection.

    chat_id is the chat the update belongs to (its user's for updates without a chat; none
    for the rare kinds with neither): the key that keeps one chat's updates in order. The
    claim columns are for several instances on one database, each claiming chats."""

    __tablename__ = "inbox"
    __table_args__ = (
        # What is still to be handled, oldest first (start-up, several instances).
        Index("ix_inbox_state_update", "state", "update_id"),
        CheckConstraint("state = 'pending' OR state = 'done' OR state = 'failed'", name="state"),
    )

    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    chat_id: Mapped[int | None] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    # Start-ups that found the update still pending: one that crashes the process every
    # time it is handled is given up after a few.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    handled_at: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)


class KeyValue(Base):
    """Small persistent bits of bot state (PTB's bot_data, user_data, chat_data)."""

    __tablename__ = "kv"
    __table_args__ = (UniqueConstraint("namespace", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    namespace: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(128))
    value: Mapped[dict[str, Any] | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


def table_of(model: Any) -> Table:
    """The model's Table, typed as one (for Core statements over the tables)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table
