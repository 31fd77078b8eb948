"""meet creation and conference ending leases

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25

``call_sessions.meet_creating_until``: the lease a process takes on a session
while it creates the session's Meet space outside any transaction, so two
schedulers (or a scheduler and a web request) never create two spaces for
one session; and ``call_sessions.conference_ending_until``, the same kind
of lease for the job that ends a canceled session's conference.
"""

from alembic import op
import sqlalchemy as sa
import verify_service.db


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('call_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('meet_creating_until', verify_service.db.UTCDateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('conference_ending_until', verify_service.db.UTCDateTime(timezone=True),
                                      nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('call_sessions', schema=None) as batch_op:
        batch_op.drop_column('conference_ending_until')
        batch_op.drop_column('meet_creating_until')
