"""evidence, session ends, invite repair and pass sampling

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02

* ``call_sessions.end_reason``: why an expired or canceled session ended
  (``not_joined``, ``abandoned``; ``freelancer``, ``account_closed``, ``lead``).
* ``call_sessions.invite_pending`` (+ attempts, next try, last error): a change
  to a booked call's calendar event that Google has not taken yet; a job
  retries it.
* ``outcomes.qa_*``: the random share of passes a lead looks at afterwards.

Existing rows: an expired session expired because nobody joined; a canceled
one was canceled by its freelancer (a booking) or by the account's closure.
``ended_at`` becomes the time of the first decision, as the service now
records it (a second review no longer moves it).
"""

from alembic import op
import sqlalchemy as sa
import verify_service.db


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

END_REASONS = ('not_joined', 'abandoned', 'freelancer', 'account_closed', 'lead')


def upgrade() -> None:
    with op.batch_alter_table('call_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('invite_pending', sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column('invite_attempts', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('invite_retry_at', verify_service.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('invite_error', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('end_reason', sa.Enum(*END_REASONS, name='session_end_reason', native_enum=False,
                                                            create_constraint=False, length=32), nullable=True))
        batch_op.create_index('ix_call_sessions_invite_pending', ['invite_retry_at'], unique=False,
                              sqlite_where=sa.text('invite_pending IS NOT NULL'),
                              postgresql_where=sa.text('invite_pending IS NOT NULL'))

    with op.batch_alter_table('outcomes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('qa_sampled_at', verify_service.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('qa_reviewer_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('qa_decision', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('qa_decided_at', verify_service.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_outcomes_qa_pending', ['qa_sampled_at'], unique=False,
                              sqlite_where=sa.text('qa_sampled_at IS NOT NULL AND qa_decision IS NULL'),
                              postgresql_where=sa.text('qa_sampled_at IS NOT NULL AND qa_decision IS NULL'))
        batch_op.create_foreign_key(batch_op.f('fk_outcomes_qa_reviewer_id_reviewers'), 'reviewers',
                                    ['qa_reviewer_id'], ['id'])

    if op.get_bind().dialect.name == "postgresql":
        # SQLite cannot add a CHECK constraint without rebuilding the table; there the
        # application's enum is the guard.
        op.create_check_constraint(op.f("ck_call_sessions_session_end_reason"), "call_sessions",
                                   "end_reason IN (" + ", ".join(f"'{r}'" for r in END_REASONS) + ")")
    op.execute("UPDATE call_sessions SET end_reason = 'not_joined' WHERE status = 'expired'")
    op.execute("UPDATE call_sessions SET end_reason = CASE WHEN scheduled_for IS NOT NULL AND account_id IN "
               "(SELECT id FROM accounts WHERE closed_at IS NULL) THEN 'freelancer' ELSE 'account_closed' END "
               "WHERE status = 'canceled'")
    op.execute("UPDATE call_sessions SET ended_at = (SELECT decided_at FROM outcomes "
               "WHERE outcomes.call_session_id = call_sessions.id) "
               "WHERE id IN (SELECT call_session_id FROM outcomes)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(op.f("ck_call_sessions_session_end_reason"), "call_sessions", type_="check")
    with op.batch_alter_table('outcomes', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_outcomes_qa_reviewer_id_reviewers'), type_='foreignkey')
        batch_op.drop_index('ix_outcomes_qa_pending', sqlite_where=sa.text('qa_sampled_at IS NOT NULL AND qa_decision IS NULL'),
                            postgresql_where=sa.text('qa_sampled_at IS NOT NULL AND qa_decision IS NULL'))
        batch_op.drop_column('qa_decided_at')
        batch_op.drop_column('qa_decision')
        batch_op.drop_column('qa_reviewer_id')
        batch_op.drop_column('qa_sampled_at')

    with op.batch_alter_table('call_sessions', schema=None) as batch_op:
        batch_op.drop_index('ix_call_sessions_invite_pending', sqlite_where=sa.text('invite_pending IS NOT NULL'),
                            postgresql_where=sa.text('invite_pending IS NOT NULL'))
        batch_op.drop_column('end_reason')
        batch_op.drop_column('invite_error')
        batch_op.drop_column('invite_retry_at')
        batch_op.drop_column('invite_attempts')
        batch_op.drop_column('invite_pending')
