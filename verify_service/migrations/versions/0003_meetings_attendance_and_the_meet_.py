"""meetings, attendance and the Meet creation budget

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22

Meeting state and attendance on call sessions, our copy of Meet participants,
the host users and their space-creation log (the per-minute budget), and the
reviewers' Google identity.
"""

from alembic import op
import sqlalchemy as sa
import verify_service.db


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('meet_hosts',
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('saturated_until', verify_service.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('email', name=op.f('pk_meet_hosts'))
    )
    op.create_table('meet_space_creations',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('host', sa.String(length=320), nullable=False),
    sa.Column('created_at', verify_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['host'], ['meet_hosts.email'], name=op.f('fk_meet_space_creations_host_meet_hosts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_meet_space_creations'))
    )
    with op.batch_alter_table('meet_space_creations', schema=None) as batch_op:
        batch_op.create_index('ix_meet_space_creations_host_at', ['host', 'created_at'], unique=False)

    op.create_table('call_participants',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('call_session_id', sa.String(length=36), nullable=False),
    sa.Column('participant', sa.String(length=300), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('google_user', sa.String(length=100), nullable=True),
    sa.Column('display_name', sa.String(length=200), nullable=True),
    sa.Column('first_joined_at', verify_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_left_at', verify_service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('connected_seconds', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['call_session_id'], ['call_sessions.id'], name=op.f('fk_call_participants_call_session_id_call_sessions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_call_participants')),
    sa.UniqueConstraint('call_session_id', 'participant', name='uq_call_participants_session')
    )
    with op.batch_alter_table('call_participants', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_call_participants_call_session_id'), ['call_session_id'], unique=False)

    with op.batch_alter_table('call_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('meet_status', sa.String(length=32), server_default='none', nullable=False))
        batch_op.add_column(sa.Column('meet_queued_at', verify_service.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('meet_ready_at', verify_service.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('invite_sent_at', verify_service.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('meet_error', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('calendar_event_id', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('freelancer_joined_at', verify_service.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('freelancer_left_at', verify_service.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('freelancer_connected_seconds', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('reviewer_joined_at', verify_service.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('reviewer_left_at', verify_service.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('reviewer_connected_seconds', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('attendance_synced_at', verify_service.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('no_show_suggested_at', verify_service.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_call_sessions_meet_queued', ['meet_queued_at'], unique=False, sqlite_where=sa.text("meet_status = 'queued'"), postgresql_where=sa.text("meet_status = 'queued'"))

    with op.batch_alter_table('reviewers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('google_user', sa.String(length=100), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        # SQLite cannot add a CHECK constraint without rebuilding the table; there the
        # application's enum is the guard.
        op.create_check_constraint(op.f("ck_call_sessions_meeting_status"), "call_sessions",
                                   "meet_status IN ('none', 'queued', 'ready')")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(op.f("ck_call_sessions_meeting_status"), "call_sessions", type_="check")
    with op.batch_alter_table('reviewers', schema=None) as batch_op:
        batch_op.drop_column('google_user')

    with op.batch_alter_table('call_sessions', schema=None) as batch_op:
        batch_op.drop_index('ix_call_sessions_meet_queued', sqlite_where=sa.text("meet_status = 'queued'"), postgresql_where=sa.text("meet_status = 'queued'"))
        batch_op.drop_column('no_show_suggested_at')
        batch_op.drop_column('attendance_synced_at')
        batch_op.drop_column('reviewer_connected_seconds')
        batch_op.drop_column('reviewer_left_at')
        batch_op.drop_column('reviewer_joined_at')
        batch_op.drop_column('freelancer_connected_seconds')
        batch_op.drop_column('freelancer_left_at')
        batch_op.drop_column('freelancer_joined_at')
        batch_op.drop_column('calendar_event_id')
        batch_op.drop_column('meet_error')
        batch_op.drop_column('invite_sent_at')
        batch_op.drop_column('meet_ready_at')
        batch_op.drop_column('meet_queued_at')
        batch_op.drop_column('meet_status')

    with op.batch_alter_table('call_participants', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_call_participants_call_session_id'))

    op.drop_table('call_participants')
    with op.batch_alter_table('meet_space_creations', schema=None) as batch_op:
        batch_op.drop_index('ix_meet_space_creations_host_at')

    op.drop_table('meet_space_creations')
    op.drop_table('meet_hosts')
