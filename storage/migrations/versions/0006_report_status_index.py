"""index progress reports by task, unit, status and time for the consolidated report

Revision ID: 0006
Revises: 0001
Create Date: 2026-11-26 18:30:00

The report finds each task's latest lead-unit report of each status with one index seek, so
its cost does not grow with the number of past periods (bench/report_scale.py).
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0006'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('progress_reports', schema=None) as batch_op:
        batch_op.create_index('ix_progress_reports_task_unit_status', ['task_id', 'unit_id', 'status', 'submitted_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('progress_reports', schema=None) as batch_op:
        batch_op.drop_index('ix_progress_reports_task_unit_status')
