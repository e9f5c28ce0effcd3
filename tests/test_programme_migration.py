"""Migration 0011: a database made before programmes moves into one programme, every row kept.

The database is built at revision 0010 (the head before programmes), filled with a row or
more in every table (reports, revisions, attachments, audit, outbox, extensions, drafts ...),
migrated to the head, and compared table by table. On SQLite the migration copies `tasks` and
`task_groups`; with foreign keys on, dropping the old `tasks` would have deleted every report
through ON DELETE CASCADE.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from storage.db import Database
from storage.migrate import upgrade
from storage.models import (
    Attachment,
    AuditEntry,
    ConversationState,
    DeadlineExtension,
    Draft,
    InboxUpdate,
    Invite,
    KeyValue,
    Membership,
    OutboxMessage,
    ProgressReport,
    ReportRevision,
    ReportRun,
    Subscription,
    TaskUnit,
    Unit,
    User,
    UserRole,
    table_of,
)

AT = datetime(2024, 1, 31, 2, 0, tzinfo=UTC)

# tasks and task_groups as they were at 0010 (no programme_id).
_GROUPS = sa.table(
    "task_groups", sa.column("id"), sa.column("code"), sa.column("title"), sa.column("position")
)
_TASKS = sa.table(
    "tasks",
    *(
        sa.column(name)
        for name in [
            "id",
            "code",
            "group_id",
            "title",
            "description",
            "legal_source",
            "lead_unit_id",
            "deadline",
            "deadline_version",
            "expected_output",
            "position",
            "closed_at",
            "close_reason",
            "created_at",
            "updated_at",
        ]
    ),
)

UNCHANGED = [
    Unit,
    User,
    Membership,
    UserRole,
    TaskUnit,
    ProgressReport,
    ReportRevision,
    Attachment,
    Invite,
    AuditEntry,
    OutboxMessage,
    ReportRun,
    Subscription,
    DeadlineExtension,
    ConversationState,
    Draft,
    KeyValue,
    InboxUpdate,
]


def _rows() -> list[tuple[Any, list[dict[str, Any]]]]:
    """Rows for every table, in an order foreign keys accept."""
    task = {"description": "", "legal_source": "", "expected_output": "", "deadline_version": 2}
    report = {
        "period": "2024-W05",
        "results": "Đã xong",
        "difficulties": "",
        "proposals": "",
        "evidence_ref": "",
    }
    return [
        (
            Unit,
            [{"id": 1, "code": "VP", "name": "Văn phòng Bộ"}, {"id": 2, "code": "PC", "name": "Vụ Pháp chế"}],
        ),
        (
            User,
            [
                {"id": 1, "telegram_id": 901, "first_name": "Lan"},
                {"id": 2, "telegram_id": 902, "first_name": "Minh"},
            ],
        ),
        (
            Membership,
            [{"user_id": 1, "unit_id": 1, "role": "focal"}, {"user_id": 2, "unit_id": 2, "role": "leader"}],
        ),
        (UserRole, [{"user_id": 2, "role": "manager", "granted_by_id": 1}]),
        (
            _GROUPS,
            [
                {"id": 1, "code": "1", "title": "Nhóm một", "position": 1},
                {"id": 2, "code": "2", "title": "Nhóm hai", "position": 2},
            ],
        ),
        (
            _TASKS,
            [
                {
                    **task,
                    "id": 1,
                    "code": "1.1",
                    "group_id": 1,
                    "title": "Việc một",
                    "lead_unit_id": 1,
                    "deadline": date(2024, 1, 30),
                    "position": 1,
                    "created_at": AT,
                    "updated_at": AT,
                },
                {
                    **task,
                    "id": 2,
                    "code": "2.1",
                    "group_id": 2,
                    "title": "Việc hai",
                    "lead_unit_id": 2,
                    "deadline": None,
                    "position": 2,
                    "created_at": AT,
                    "updated_at": AT,
                    "closed_at": AT,
                    "close_reason": "rút",
                },
            ],
        ),
        (TaskUnit, [{"task_id": 1, "unit_id": 2, "position": 0}]),
        (
            ProgressReport,
            [
                {
                    **report,
                    "id": 1,
                    "task_id": 1,
                    "unit_id": 1,
                    "reporter_id": 1,
                    "status": "done",
                    "percent": 100,
                    "revision": 2,
                    "submitted_at": AT,
                    "status_since": AT,
                },
                {
                    **report,
                    "id": 2,
                    "task_id": 2,
                    "unit_id": 2,
                    "reporter_id": 2,
                    "status": "stuck",
                    "percent": 40,
                    "revision": 1,
                    "submitted_at": AT,
                    "status_since": AT,
                },
            ],
        ),
        (
            ReportRevision,
            [
                {
                    "report_id": 1,
                    "revision": 1,
                    "reporter_id": 1,
                    "status": "in_progress",
                    "percent": 50,
                    "submitted_at": AT,
                },
                {
                    "report_id": 1,
                    "revision": 2,
                    "reporter_id": 1,
                    "status": "done",
                    "percent": 100,
                    "submitted_at": AT,
                },
                {
                    "report_id": 2,
                    "revision": 1,
                    "reporter_id": 2,
                    "status": "stuck",
                    "percent": 40,
                    "submitted_at": AT,
                },
            ],
        ),
        (
            Attachment,
            [{"report_id": 1, "telegram_file_id": "F1", "file_name": "bc.pdf", "sha256": "ab" * 32}],
        ),
        (Invite, [{"code_hash": "cd" * 32, "role": "focal", "unit_id": 1, "expires_at": AT}]),
        (
            AuditEntry,
            [
                {
                    "action": "task.import.new",
                    "entity": "task",
                    "entity_id": "1.1",
                    "after": {"title": "Việc một"},
                }
            ],
        ),
        (
            OutboxMessage,
            [
                {
                    "dedup_key": "nudge:1:v2:d0:1",
                    "kind": "nudge",
                    "chat_id": 901,
                    "user_id": 1,
                    "task_id": 1,
                    "deadline_version": 2,
                    "nudge_offset": "d0",
                    "due_at": AT,
                    "state": "sent",
                    "sent_at": AT,
                },
                {
                    "dedup_key": "notice:1",
                    "kind": "notice",
                    "chat_id": 902,
                    "user_id": 2,
                    "task_id": 2,
                    "payload": {"text": "x"},
                    "due_at": AT,
                },
            ],
        ),
        (ReportRun, [{"period": "2024-W05", "scope": "all", "state": "done"}]),
        (Subscription, [{"user_id": 2}]),
        (
            DeadlineExtension,
            [
                {
                    "task_id": 1,
                    "unit_id": 1,
                    "requested_by_id": 1,
                    "new_deadline": date(2024, 3, 1),
                    "old_deadline": date(2024, 1, 30),
                    "reason": "chờ ý kiến",
                }
            ],
        ),
        (ConversationState, [{"name": "report", "key": "901", "state": {"step": 2}}]),
        (Draft, [{"user_id": 1, "flow": "report", "data": {"task_id": 1}}]),
        (KeyValue, [{"namespace": "bot", "key": "k", "value": {"v": 1}}]),
        (
            InboxUpdate,
            [{"update_id": 5001, "chat_id": 901, "kind": "message", "payload": {"update_id": 5001}}],
        ),
    ]


def _table(model: Any) -> sa.TableClause:
    return model if isinstance(model, sa.TableClause) else table_of(model)


async def _snapshot(db: Database, tables: list[Any]) -> dict[str, list[tuple[Any, ...]]]:
    found = {}
    async with db.engine.connect() as conn:
        for model in tables:
            table = _table(model)
            columns = [c for c in table.c if c.name != "programme_id"]
            rows = await conn.execute(sa.select(*columns).order_by(columns[0]))
            found[table.name] = [tuple(r) for r in rows]
    return found


@pytest.fixture
async def old_db(database_url: str) -> AsyncIterator[Database]:
    if database_url.startswith("postgresql"):
        from tests.conftest import _reset_postgres

        await _reset_postgres(database_url)
    database = Database(database_url)
    await upgrade(database, "0010")
    yield database
    await database.dispose()


async def test_a_database_before_programmes_moves_into_one_with_every_row_kept(old_db: Database) -> None:
    async with old_db.engine.begin() as conn:
        for model, rows in _rows():
            for row in rows:
                await conn.execute(sa.insert(_table(model)), row)
        if old_db.engine.dialect.name == "postgresql":
            for name in ("units", "users", "task_groups", "tasks", "progress_reports"):
                await conn.execute(sa.text(f"SELECT setval('{name}_id_seq', (SELECT max(id) FROM {name}))"))
    tables = [*UNCHANGED, _GROUPS, _TASKS]
    before = await _snapshot(old_db, tables)
    assert all(before.values()), [name for name, rows in before.items() if not rows]

    await upgrade(old_db)

    assert await _snapshot(old_db, tables) == before
    async with old_db.engine.connect() as conn:
        programmes = (await conn.execute(sa.text("SELECT id, code, short_code, state FROM programmes"))).all()
        assert [tuple(p)[1:] for p in programmes] == [("PROGRAMME-1", "P1", "active")]
        for table in ("tasks", "task_groups"):
            ids = (await conn.execute(sa.text(f"SELECT DISTINCT programme_id FROM {table}"))).scalars().all()
            assert ids == [programmes[0].id]


async def test_an_empty_database_gets_no_programme(db: Database) -> None:
    async with db.engine.connect() as conn:
        assert (await conn.execute(sa.text("SELECT count(*) FROM programmes"))).scalar() == 0
