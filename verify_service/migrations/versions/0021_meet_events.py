"""meet events: subscriptions per host user, applied events, conferences and participant sessions

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-04

* ``meet_subscriptions``: the Workspace Events subscription of each host user
  (its name, Google's state, when it expires, why it could not be kept).
* ``meet_event_receipts``: the CloudEvents received (by id: a redelivery
  changes nothing), each kept until the transaction that applies it marks it
  ``applied_at``.
* ``call_conferences`` and ``call_participant_sessions``: the service's copy of
  Meet's conference records and participant sessions, written by full reads
  and by join/leave events alike; attendance is computed from them.
* indexes on ``call_sessions.meet_space`` and ``call_participants.participant``:
  an event's conference and participant are looked up by them;
* ``call_sessions.meet_event_at``: the last event applied to the session;
  ``attendance_checked_at``: when its attendance was last applied (read, event
  or time passing), the attendance job's order.
"""

from alembic import op
import sqlalchemy as sa

from verify_service.db import UTCDateTime


revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'meet_subscriptions',
        sa.Column('host', sa.String(length=320), nullable=False),
        sa.Column('user', sa.String(length=100), nullable=True),
        sa.Column('name', sa.String(length=200), nullable=True),
        sa.Column('state', sa.String(length=20), server_default='MISSING', nullable=False),
        sa.Column('suspension_reason', sa.String(length=60), nullable=True),
        sa.Column('expire_time', UTCDateTime(timezone=True), nullable=True),
        sa.Column('problem', sa.String(length=500), nullable=True),
        sa.Column('checked_at', UTCDateTime(timezone=True), nullable=True),
        sa.Column('updated_at', UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('host'),
    )
    op.create_table(
        'meet_event_receipts',
        sa.Column('id', sa.String(length=200), nullable=False),
        sa.Column('type', sa.String(length=100), nullable=False),
        sa.Column('received_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('event', sa.JSON(), nullable=True),
        sa.Column('applied_at', UTCDateTime(timezone=True), nullable=True),
        sa.Column('retry_at', UTCDateTime(timezone=True), nullable=True),
        sa.Column('leased_by', sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_meet_event_receipts_received_at', 'meet_event_receipts', ['received_at'], unique=False)
    op.create_index('ix_meet_event_receipts_pending', 'meet_event_receipts', ['received_at'], unique=False,
                    sqlite_where=sa.text('applied_at IS NULL'), postgresql_where=sa.text('applied_at IS NULL'))
    op.create_table(
        'call_conferences',
        sa.Column('record', sa.String(length=200), nullable=False),
        sa.Column('call_session_id', sa.String(length=36), nullable=False),
        sa.Column('started_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('ended_at', UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['call_session_id'], ['call_sessions.id']),
        sa.PrimaryKeyConstraint('record'),
    )
    op.create_index('ix_call_conferences_call_session_id', 'call_conferences', ['call_session_id'], unique=False)
    op.create_table(
        'call_participant_sessions',
        sa.Column('name', sa.String(length=400), nullable=False),
        sa.Column('call_session_id', sa.String(length=36), nullable=False),
        sa.Column('record', sa.String(length=200), nullable=False),
        sa.Column('participant', sa.String(length=300), nullable=False),
        sa.Column('started_at', UTCDateTime(timezone=True), nullable=True),
        sa.Column('ended_at', UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['call_session_id'], ['call_sessions.id']),
        sa.PrimaryKeyConstraint('name'),
    )
    op.create_index('ix_call_participant_sessions_call_session_id', 'call_participant_sessions',
                    ['call_session_id'], unique=False)
    with op.batch_alter_table('call_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('meet_event_at', UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('attendance_checked_at', UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_call_sessions_meet_space', ['meet_space'], unique=False)
    op.create_index('ix_call_participants_participant', 'call_participants', ['participant'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_call_participants_participant', table_name='call_participants')
    with op.batch_alter_table('call_sessions', schema=None) as batch_op:
        batch_op.drop_index('ix_call_sessions_meet_space')
        batch_op.drop_column('attendance_checked_at')
        batch_op.drop_column('meet_event_at')
    op.drop_index('ix_call_participant_sessions_call_session_id', table_name='call_participant_sessions')
    op.drop_table('call_participant_sessions')
    op.drop_index('ix_call_conferences_call_session_id', table_name='call_conferences')
    op.drop_table('call_conferences')
    op.drop_index('ix_meet_event_receipts_pending', table_name='meet_event_receipts')
    op.drop_index('ix_meet_event_receipts_received_at', table_name='meet_event_receipts')
    op.drop_table('meet_event_receipts')
    op.drop_table('meet_subscriptions')
