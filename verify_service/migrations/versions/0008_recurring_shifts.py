"""recurring shifts

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23

Weekly recurring reviewer shifts (local wall-clock times in an IANA zone),
and the link from each materialised reviewer shift to the recurring shift it
came from (so editing or removing one replaces its future rows).
"""

from alembic import op
import sqlalchemy as sa
import verify_service.db


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('recurring_shifts',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('reviewer_id', sa.Integer(), nullable=False),
    sa.Column('weekday', sa.Integer(), nullable=False),
    sa.Column('start_time', sa.Time(), nullable=False),
    sa.Column('end_time', sa.Time(), nullable=False),
    sa.Column('time_zone', sa.String(length=64), nullable=False),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.Column('created_at', verify_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('end_time <> start_time', name=op.f('ck_recurring_shifts_not_empty')),
    sa.CheckConstraint('weekday >= 0 AND weekday <= 6', name=op.f('ck_recurring_shifts_weekday_range')),
    sa.ForeignKeyConstraint(['reviewer_id'], ['reviewers.id'], name=op.f('fk_recurring_shifts_reviewer_id_reviewers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recurring_shifts'))
    )
    with op.batch_alter_table('recurring_shifts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recurring_shifts_reviewer_id'), ['reviewer_id'], unique=False)

    # SQLite rebuilds the table for the foreign key (batch mode); its CHECK constraint and index are carried over.
    with op.batch_alter_table('reviewer_shifts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('recurring_shift_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_reviewer_shifts_recurring_shift_id'), ['recurring_shift_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_reviewer_shifts_recurring_shift_id_recurring_shifts'),
                                    'recurring_shifts', ['recurring_shift_id'], ['id'], ondelete='SET NULL')


def downgrade() -> None:
    with op.batch_alter_table('reviewer_shifts', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_reviewer_shifts_recurring_shift_id_recurring_shifts'),
                                 type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_reviewer_shifts_recurring_shift_id'))
        batch_op.drop_column('recurring_shift_id')

    with op.batch_alter_table('recurring_shifts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recurring_shifts_reviewer_id'))

    op.drop_table('recurring_shifts')
