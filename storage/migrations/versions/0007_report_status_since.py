"""record on each progress report when its current status began

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 19:10:00

A correction moves a report's submitted_at to the correction's time; a task's completion moment
must not move when a correction keeps "done". progress_reports.status_since holds when the unit's
current run of this status on the task began, so the completion moment is read from the lead
unit's latest report with one index seek (bot/services/status.py). Existing reports are filled
in from their revisions (a report without revisions counts as one submission).
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_reports = sa.table(
    'progress_reports', sa.column('id', sa.Integer), sa.column('task_id', sa.Integer),
    sa.column('unit_id', sa.Integer), sa.column('status', sa.String),
    sa.column('submitted_at', sa.DateTime(timezone=True)),
    sa.column('status_since', sa.DateTime(timezone=True)),
)
_revisions = sa.table(
    'report_revisions', sa.column('id', sa.Integer), sa.column('report_id', sa.Integer),
    sa.column('revision', sa.Integer), sa.column('status', sa.String),
    sa.column('submitted_at', sa.DateTime(timezone=True)),
)


def _backfill() -> None:
    """Walk every unit's submissions on every task in time order; a report's status_since is
    the start of the run of equal statuses its latest submission ends."""
    r, v = _reports.c, _revisions.c
    at = sa.func.coalesce(v.submitted_at, r.submitted_at)
    rows = op.get_bind().execute(
        sa.select(r.id, r.task_id, r.unit_id, sa.func.coalesce(v.status, r.status), at)
        .select_from(_reports.outerjoin(_revisions, v.report_id == r.id))
        .order_by(r.task_id, r.unit_id, at, r.id, v.revision)
    )
    since: dict[int, object] = {}
    key: tuple[int, int] | None = None
    status: str | None = None
    began: object = None
    for report_id, task_id, unit_id, row_status, row_at in rows:
        if (task_id, unit_id) != key or row_status != status:
            key, status, began = (task_id, unit_id), row_status, row_at
        since[report_id] = began
    updates = [{'report_id': report_id, 'since': value} for report_id, value in since.items()]
    if updates:
        op.get_bind().execute(
            sa.update(_reports).where(r.id == sa.bindparam('report_id'))
            .values(status_since=sa.bindparam('since')),
            updates,
        )


def upgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        # SQLite makes a column NOT NULL only by copying the table, and the copy drops the old
        # table first, which under foreign_keys=ON deletes every revision and attachment
        # (ON DELETE CASCADE). So the column is added NOT NULL with a placeholder default,
        # overwritten at once by the backfill.
        op.add_column('progress_reports', sa.Column(
            'status_since', sa.DateTime(timezone=True), nullable=False,
            server_default=sa.text("'1970-01-01 00:00:00.000000'")))
        _backfill()
    else:
        op.add_column('progress_reports',
                      sa.Column('status_since', sa.DateTime(timezone=True), nullable=True))
        _backfill()
        op.alter_column('progress_reports', 'status_since',
                        existing_type=sa.DateTime(timezone=True), nullable=False)


def downgrade() -> None:
    # ALTER TABLE DROP COLUMN (SQLite 3.35+), not a copy of the table: see upgrade().
    op.drop_column('progress_reports', 'status_since')
