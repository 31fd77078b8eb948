"""identity documents and reasons

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23

The ID document a reviewer notes on a call (keyed fingerprint and last 4
characters of the number, never the number), the reason codes and checklist
answers of an outcome, one outcome per session, and on each call session the
claimer's last activity (idle claims go back to the queue) and the
freelancer's system check.
"""

from alembic import op
import sqlalchemy as sa
import verify_service.db


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('identity_documents',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('call_session_id', sa.String(length=36), nullable=False),
    sa.Column('doc_type', sa.Enum('passport', 'national_id', 'driving_licence', 'residence_permit', 'other', name='document_type', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('issuing_country', sa.String(length=2), nullable=False),
    sa.Column('expires_on', sa.Date(), nullable=True),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('last4', sa.String(length=4), nullable=False),
    sa.Column('recorded_by_id', sa.Integer(), nullable=False),
    sa.Column('recorded_at', verify_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_identity_documents_account_id_accounts')),
    sa.ForeignKeyConstraint(['call_session_id'], ['call_sessions.id'], name=op.f('fk_identity_documents_call_session_id_call_sessions')),
    sa.ForeignKeyConstraint(['recorded_by_id'], ['reviewers.id'], name=op.f('fk_identity_documents_recorded_by_id_reviewers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_identity_documents')),
    sa.UniqueConstraint('call_session_id', name=op.f('uq_identity_documents_call_session_id'))
    )
    with op.batch_alter_table('identity_documents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_identity_documents_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_identity_documents_fingerprint'), ['fingerprint'], unique=False)

    # Plain ADD COLUMNs (constant defaults) and index swaps: no table rebuild on SQLite.
    with op.batch_alter_table('outcomes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reason_codes', sa.JSON(), server_default=sa.text("'[]'"), nullable=False))
        batch_op.add_column(sa.Column('checklist', sa.JSON(), nullable=True))
        batch_op.drop_index(batch_op.f('ix_outcomes_call_session_id'))
        batch_op.create_index(batch_op.f('ix_outcomes_call_session_id'), ['call_session_id'], unique=True)

    with op.batch_alter_table('call_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claim_active_at', verify_service.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('system_check', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('call_sessions', schema=None) as batch_op:
        batch_op.drop_column('system_check')
        batch_op.drop_column('claim_active_at')

    with op.batch_alter_table('outcomes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outcomes_call_session_id'))
        batch_op.create_index(batch_op.f('ix_outcomes_call_session_id'), ['call_session_id'], unique=False)
        batch_op.drop_column('checklist')
        batch_op.drop_column('reason_codes')

    with op.batch_alter_table('identity_documents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_identity_documents_fingerprint'))
        batch_op.drop_index(batch_op.f('ix_identity_documents_account_id'))

    op.drop_table('identity_documents')
