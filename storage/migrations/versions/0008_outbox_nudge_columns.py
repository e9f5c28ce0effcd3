"""nudges planned without their text: what a nudge is for in outbox columns, and cheaper writes

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 21:00:00

Nudges are rendered when they are sent, not when planned: planning writes only the key, the
recipient, the due time and what the nudge is for (task, deadline version, offset), over every
open task on each run, so that (bench/nudges.py):

- outbox.deadline_version and outbox.nudge_offset hold the version and offset, and the index
  (task_id, user_id, nudge_offset, deadline_version) answers "is this nudge planned already"
  with one probe; it replaces the index on task_id alone. Existing nudges and snoozed repeats
  are filled in from their dedup keys (nudge:<task>:v<version>:<offset>:<user>,
  snooze:<task>:v<version>:<offset>:<outbox id>); rows planned before keep their rendered text
  and are sent as they are.
- ix_outbox_chat_id goes: no query uses it, and every row written paid for it.
- the outbox's state CHECK is written with ORs: SQLite evaluates an IN list of more than two
  values in a CHECK through a temporary table built again for every row, which cost more than
  writing the row. On SQLite the table is copied to change it (nothing refers to the outbox,
  so no ON DELETE CASCADE fires).
- ix_tasks_open_plan holds what planning reads of an open task in programme order, and
  ix_tasks_open_deadline gives the open tasks' distinct deadlines without a sort (over open
  tasks only on SQLite: see storage/models.py).
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STATE_OR = ("state = 'pending' OR state = 'claimed' OR state = 'sent' OR state = 'failed'"
             " OR state = 'cancelled'")
_STATE_IN = "state IN ('pending', 'claimed', 'sent', 'failed', 'cancelled')"
_PLAN_COLUMNS = ['position', 'id', 'deadline', 'lead_unit_id', 'deadline_version', 'closed_at']
_OPEN = sa.text('closed_at IS NULL')

_outbox = sa.table(
    'outbox', sa.column('id', sa.Integer), sa.column('kind', sa.String),
    sa.column('dedup_key', sa.String), sa.column('deadline_version', sa.Integer),
    sa.column('nudge_offset', sa.String),
)


def _backfill() -> None:
    o = _outbox.c
    rows = op.get_bind().execute(
        sa.select(o.id, o.dedup_key).where(o.kind.in_(['nudge', 'nudge_snooze'])))
    updates = []
    for row_id, key in rows:
        parts = key.split(':')
        if len(parts) == 5 and parts[2].startswith('v') and parts[2][1:].isdigit():
            updates.append({'row_id': row_id, 'version': int(parts[2][1:]),
                            'offset': parts[3]})
    if updates:
        op.get_bind().execute(
            sa.update(_outbox).where(o.id == sa.bindparam('row_id'))
            .values(deadline_version=sa.bindparam('version'), nudge_offset=sa.bindparam('offset')),
            updates,
        )


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None, recreate='auto') as batch_op:
        batch_op.add_column(sa.Column('deadline_version', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('nudge_offset', sa.String(length=16), nullable=True))
        batch_op.drop_constraint(op.f('ck_outbox_state'), type_='check')
        batch_op.create_check_constraint(op.f('ck_outbox_state'), sa.text(_STATE_OR))
        batch_op.drop_index('ix_outbox_chat_id')
        batch_op.drop_index('ix_outbox_task_id')
        batch_op.create_index('ix_outbox_task_nudge',
                              ['task_id', 'user_id', 'nudge_offset', 'deadline_version'])
    _backfill()
    # Over open tasks only on SQLite (see storage/models.py, Task).
    op.create_index('ix_tasks_open_plan', 'tasks', _PLAN_COLUMNS, unique=False,
                    sqlite_where=_OPEN)
    op.create_index('ix_tasks_open_deadline', 'tasks', ['deadline'], unique=False,
                    sqlite_where=_OPEN)


def downgrade() -> None:
    op.drop_index('ix_tasks_open_deadline', table_name='tasks')
    op.drop_index('ix_tasks_open_plan', table_name='tasks')
    with op.batch_alter_table('outbox', schema=None, recreate='auto') as batch_op:
        batch_op.drop_index('ix_outbox_task_nudge')
        batch_op.create_index('ix_outbox_task_id', ['task_id'])
        batch_op.create_index('ix_outbox_chat_id', ['chat_id'])
        batch_op.drop_constraint(op.f('ck_outbox_state'), type_='check')
        batch_op.create_check_constraint(op.f('ck_outbox_state'), sa.text(_STATE_IN))
        batch_op.drop_column('nudge_offset')
        batch_op.drop_column('deadline_version')
