"""inbox: every update from Telegram stored before it is confirmed, handled from there

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 03:00:00

python-telegram-bot's Updater confirms a batch of updates (the next getUpdates offset) before
their handlers run, so a kill -9 in between lost them. Updates are now stored in `inbox` first
(one row per Telegram update_id, with its raw JSON, the chat that orders it and its state) and
handled from there in order per chat (bot/updates.py); claimed_by/claimed_at are for several
instances sharing one PostgreSQL database.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'inbox',
        sa.Column('update_id', sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column('chat_id', sa.BigInteger(), nullable=True),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('payload', sa.JSON(), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('handled_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('claimed_by', sa.String(length=64), nullable=True),
        sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.CheckConstraint("state = 'pending' OR state = 'done' OR state = 'failed'",
                           name=op.f('ck_inbox_state')),
        sa.PrimaryKeyConstraint('update_id', name=op.f('pk_inbox')),
    )
    op.create_index('ix_inbox_state_update', 'inbox', ['state', 'update_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_inbox_state_update', table_name='inbox')
    op.drop_table('inbox')
