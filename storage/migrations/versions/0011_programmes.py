"""programmes: groups and tasks belong to one programme, codes unique within it

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 03:00:00

A ministry follows several programmes and issues a new one every January, numbered 1.1, 2.1 …
again, so group and task codes can no longer be unique across the database. The new table
`programmes` holds each programme's code, decision, dates, period rule and state; task_groups
and tasks get programme_id and are unique on (programme_id, code).

An existing database moves into one programme, code PROGRAMME-1 (rename it with
`tiendo programme rename PROGRAMME-1 CODE`): every group and task is attached to it, and no
other row is touched. On SQLite the two tables are copied to change their constraints;
storage/migrate.py runs migrations with foreign keys off there, so that dropping the old
`tasks` cascades into no report, revision, outbox row or extension, and checks the keys after.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FIRST_CODE = 'PROGRAMME-1'
_PLAN_COLUMNS = ['position', 'id', 'deadline', 'lead_unit_id', 'deadline_version', 'closed_at']
_OPEN = sa.text('closed_at IS NULL')

_programmes = sa.table(
    'programmes', sa.column('id', sa.Integer), sa.column('code', sa.String),
    sa.column('short_code', sa.String), sa.column('title', sa.Text),
    sa.column('decision', sa.String), sa.column('issuer', sa.String),
    sa.column('state', sa.String), sa.column('created_at', sa.DateTime(timezone=True)),
    sa.column('updated_at', sa.DateTime(timezone=True)),
)


def _create_programmes() -> None:
    op.create_table(
        'programmes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('code', sa.String(length=48), nullable=False),
        sa.Column('short_code', sa.String(length=16), nullable=False),
        sa.Column('title', sa.Text(), nullable=False),
        sa.Column('decision', sa.String(length=64), nullable=False),
        sa.Column('decision_date', sa.Date(), nullable=True),
        sa.Column('issuer', sa.String(length=300), nullable=False),
        sa.Column('starts_on', sa.Date(), nullable=True),
        sa.Column('ends_on', sa.Date(), nullable=True),
        sa.Column('period', sa.String(length=16), nullable=True),
        sa.Column('cutoff', sa.String(length=32), nullable=True),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('closing', sa.JSON(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("state = 'active' OR state = 'closed'", name=op.f('ck_programmes_state')),
        sa.CheckConstraint(
            "period IS NULL OR period = 'weekly' OR period = 'monthly' OR period = 'quarterly'",
            name=op.f('ck_programmes_period')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_programmes')),
        sa.UniqueConstraint('code', name=op.f('uq_programmes_code')),
        sa.UniqueConstraint('short_code', name=op.f('uq_programmes_short_code')),
    )


def _first_programme() -> int | None:
    """The programme every existing group and task moves into; None for an empty database."""
    bind = op.get_bind()
    groups = bind.execute(sa.text('SELECT count(*) FROM task_groups')).scalar()
    tasks = bind.execute(sa.text('SELECT count(*) FROM tasks')).scalar()
    if not groups and not tasks:
        return None
    now = bind.execute(sa.select(sa.func.current_timestamp())).scalar()
    bind.execute(sa.insert(_programmes).values(
        code=FIRST_CODE, short_code='P1', title='', decision='', issuer='', state='active',
        created_at=now, updated_at=now))
    return bind.execute(sa.select(_programmes.c.id).where(_programmes.c.code == FIRST_CODE)).scalar()


def upgrade() -> None:
    _create_programmes()
    programme_id = _first_programme()
    for table in ('task_groups', 'tasks'):
        op.add_column(table, sa.Column('programme_id', sa.Integer(), nullable=True))
        if programme_id is not None:
            op.execute(sa.text(f'UPDATE {table} SET programme_id = :p').bindparams(p=programme_id))
    # The partial indexes are made again after the copy (reflection may lose their WHERE).
    op.drop_index('ix_tasks_open_deadline', table_name='tasks')
    op.drop_index('ix_tasks_open_plan', table_name='tasks')
    with op.batch_alter_table('task_groups', schema=None, recreate='auto') as batch_op:
        batch_op.alter_column('programme_id', existing_type=sa.Integer(), nullable=False)
        batch_op.drop_constraint(op.f('uq_task_groups_code'), type_='unique')
        batch_op.create_unique_constraint(op.f('uq_task_groups_programme_id_code'),
                                          ['programme_id', 'code'])
        batch_op.create_foreign_key(op.f('fk_task_groups_programme_id_programmes'),
                                    'programmes', ['programme_id'], ['id'])
    with op.batch_alter_table('tasks', schema=None, recreate='auto') as batch_op:
        batch_op.alter_column('programme_id', existing_type=sa.Integer(), nullable=False)
        batch_op.drop_constraint(op.f('uq_tasks_code'), type_='unique')
        batch_op.create_unique_constraint(op.f('uq_tasks_programme_id_code'),
                                          ['programme_id', 'code'])
        batch_op.create_foreign_key(op.f('fk_tasks_programme_id_programmes'),
                                    'programmes', ['programme_id'], ['id'])
        batch_op.create_index('ix_tasks_code', ['code'], unique=False)
    op.create_index('ix_tasks_open_plan', 'tasks', _PLAN_COLUMNS, unique=False,
                    sqlite_where=_OPEN)
    op.create_index('ix_tasks_open_deadline', 'tasks', ['deadline'], unique=False,
                    sqlite_where=_OPEN)


def downgrade() -> None:
    bind = op.get_bind()
    if (bind.execute(sa.text('SELECT count(*) FROM programmes')).scalar() or 0) > 1:
        raise RuntimeError('several programmes: their codes overlap, cannot go back to 0010')
    op.drop_index('ix_tasks_open_deadline', table_name='tasks')
    op.drop_index('ix_tasks_open_plan', table_name='tasks')
    with op.batch_alter_table('tasks', schema=None, recreate='auto') as batch_op:
        batch_op.drop_index('ix_tasks_code')
        batch_op.drop_constraint(op.f('fk_tasks_programme_id_programmes'), type_='foreignkey')
        batch_op.drop_constraint(op.f('uq_tasks_programme_id_code'), type_='unique')
        batch_op.create_unique_constraint(op.f('uq_tasks_code'), ['code'])
        batch_op.drop_column('programme_id')
    with op.batch_alter_table('task_groups', schema=None, recreate='auto') as batch_op:
        batch_op.drop_constraint(op.f('fk_task_groups_programme_id_programmes'), type_='foreignkey')
        batch_op.drop_constraint(op.f('uq_task_groups_programme_id_code'), type_='unique')
        batch_op.create_unique_constraint(op.f('uq_task_groups_code'), ['code'])
        batch_op.drop_column('programme_id')
    op.create_index('ix_tasks_open_plan', 'tasks', _PLAN_COLUMNS, unique=False,
                    sqlite_where=_OPEN)
    op.create_index('ix_tasks_open_deadline', 'tasks', ['deadline'], unique=False,
                    sqlite_where=_OPEN)
    op.drop_table('programmes')
