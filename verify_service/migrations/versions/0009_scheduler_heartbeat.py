"""scheduler heartbeat

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24

Which scheduler process leads (one row per process, beaten every few
seconds) and the latest run of each job (jobs/leader.py, jobs/runner.py).
New tables only, so no batch mode is needed on SQLite.
"""

from alembic import op
import sqlalchemy as sa
import verify_service.db


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('scheduler_heartbeats',
    sa.Column('instance_id', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('started_at', verify_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_beat_at', verify_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("role IN ('leader', 'standby')", name=op.f('ck_scheduler_heartbeats_role')),
    sa.PrimaryKeyConstraint('instance_id', name=op.f('pk_scheduler_heartbeats'))
    )
    with op.batch_alter_table('scheduler_heartbeats', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_scheduler_heartbeats_last_beat_at'), ['last_beat_at'], unique=False)

    op.create_table('scheduler_job_runs',
    sa.Column('job_id', sa.String(length=100), nullable=False),
    sa.Column('instance_id', sa.String(length=200), nullable=False),
    sa.Column('last_started_at', verify_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_finished_at', verify_service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_ok', sa.Boolean(), nullable=True),
    sa.Column('last_success_at', verify_service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.PrimaryKeyConstraint('job_id', name=op.f('pk_scheduler_job_runs'))
    )


def downgrade() -> None:
    op.drop_table('scheduler_job_runs')
    with op.batch_alter_table('scheduler_heartbeats', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_scheduler_heartbeats_last_beat_at'))
    op.drop_table('scheduler_heartbeats')
