"""reports marked "unchanged": filed with one tap as a copy of the unit's previous report

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 03:00:00

"Không thay đổi" (issue 16) files this period's report as a copy of the unit's last one
(status, percent, text); progress_reports.unchanged and report_revisions.unchanged say so, for
the Word report and the digest ("không thay đổi so với kỳ trước"). A later correction through
/report clears it. Existing rows are not unchanged copies.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("progress_reports", "report_revisions")


def upgrade() -> None:
    # ALTER TABLE ADD COLUMN in place: on SQLite a copy of progress_reports would delete every
    # revision and attachment under foreign_keys=ON (ON DELETE CASCADE; see 0007).
    for table in _TABLES:
        op.add_column(table, sa.Column("unchanged", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    # ALTER TABLE DROP COLUMN (SQLite 3.35+), not a copy of the table.
    for table in _TABLES:
        op.drop_column(table, "unchanged")
