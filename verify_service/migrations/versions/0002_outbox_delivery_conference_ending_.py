"""outbox delivery, conference ending, profile ordering

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22

Delivery bookkeeping and leases on outbox events, the webhook endpoint state
(410 Gone), the conference-ending columns of call sessions, and the time of
the profile snapshot applied last.
"""

from alembic import op
import sqlalchemy as sa
import verify_service.db


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('webhook_endpoints',
    sa.Column('url', sa.String(length=500), nullable=False),
    sa.Column('disabled_at', verify_service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('disabled_reason', sa.String(length=500), nullable=True),
    sa.Column('updated_at', verify_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('url', name=op.f('pk_webhook_endpoints'))
    )
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('profile_source_at', verify_service.db.UTCDateTime(timezone=True), nullable=True))

    with op.batch_alter_table('call_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('conference_end_requested_at', verify_service.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('conference_ended_at', verify_service.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_call_sessions_conference_end_pending', ['conference_end_requested_at'], unique=False, sqlite_where=sa.text('conference_end_requested_at IS NOT NULL AND conference_ended_at IS NULL'), postgresql_where=sa.text('conference_end_requested_at IS NOT NULL AND conference_ended_at IS NULL'))

    with op.batch_alter_table('outbox_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_attempt_at', verify_service.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('last_status_code', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('claimed_by', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('claimed_until', verify_service.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_outbox_events_undelivered', ['account_id', 'seq'], unique=False, sqlite_where=sa.text("status <> 'delivered'"), postgresql_where=sa.text("status <> 'delivered'"))



def downgrade() -> None:
    with op.batch_alter_table('outbox_events', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_events_undelivered', sqlite_where=sa.text("status <> 'delivered'"), postgresql_where=sa.text("status <> 'delivered'"))
        batch_op.drop_column('claimed_until')
        batch_op.drop_column('claimed_by')
        batch_op.drop_column('last_status_code')
        batch_op.drop_column('last_attempt_at')

    with op.batch_alter_table('call_sessions', schema=None) as batch_op:
        batch_op.drop_index('ix_call_sessions_conference_end_pending', sqlite_where=sa.text('conference_end_requested_at IS NOT NULL AND conference_ended_at IS NULL'), postgresql_where=sa.text('conference_end_requested_at IS NOT NULL AND conference_ended_at IS NULL'))
        batch_op.drop_column('conference_ended_at')
        batch_op.drop_column('conference_end_requested_at')

    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_column('profile_source_at')

    op.drop_table('webhook_endpoints')
