"""reviewer shifts and appointment reminders

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22

Reviewer shifts (how many calls a booking slot takes once leads set them),
and how many appointment reminders each call session has had.
"""

from alembic import op
import sqlalchemy as sa
import verify_service.db


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('reviewer_shifts',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('reviewer_id', sa.Integer(), nullable=False),
    sa.Column('starts_at', verify_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ends_at', verify_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.Column('created_at', verify_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('ends_at > starts_at', name=op.f('ck_reviewer_shifts_ends_after_start')),
    sa.ForeignKeyConstraint(['reviewer_id'], ['reviewers.id'], name=op.f('fk_reviewer_shifts_reviewer_id_reviewers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reviewer_shifts'))
    )
    with op.batch_alter_table('reviewer_shifts', schema=None) as batch_op:
        batch_op.create_index('ix_reviewer_shifts_starts_ends', ['starts_at', 'ends_at'], unique=False)

    # A plain ADD COLUMN on both backends (no table rebuild on SQLite).
    with op.batch_alter_table('call_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reminders_sent', sa.Integer(), server_default='0', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('call_sessions', schema=None) as batch_op:
        batch_op.drop_column('reminders_sent')

    with op.batch_alter_table('reviewer_shifts', schema=None) as batch_op:
        batch_op.drop_index('ix_reviewer_shifts_starts_ends')

    op.drop_table('reviewer_shifts')
