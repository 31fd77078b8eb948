"""staff sign-in

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23

Server-side staff sessions (hashes of their tokens only), sign-in throttle
counters per account and per client IP (hashed keys), single-use recovery
codes (hashes only), and the reviewer's two-step state: when TOTP was
confirmed and the last time step accepted (replay protection).
"""

from alembic import op
import sqlalchemy as sa
import verify_service.db


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('staff_sessions',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('reviewer_id', sa.Integer(), nullable=False),
    sa.Column('stage', sa.Enum('password_ok', 'enrolling', 'active', name='staff_session_stage', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('created_at', verify_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', verify_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', verify_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', verify_service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('ip', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['reviewer_id'], ['reviewers.id'], name=op.f('fk_staff_sessions_reviewer_id_reviewers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_sessions')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_staff_sessions_token_hash'))
    )
    with op.batch_alter_table('staff_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_sessions_reviewer_id'), ['reviewer_id'], unique=False)

    op.create_table('staff_sign_in_throttles',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.Enum('account', 'ip', name='sign_in_throttle_kind', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('last_failure_at', verify_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('locked_until', verify_service.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_sign_in_throttles')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_staff_sign_in_throttles_key_hash'))
    )

    op.create_table('staff_recovery_codes',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('reviewer_id', sa.Integer(), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', verify_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('used_at', verify_service.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['reviewer_id'], ['reviewers.id'], name=op.f('fk_staff_recovery_codes_reviewer_id_reviewers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_recovery_codes'))
    )
    with op.batch_alter_table('staff_recovery_codes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_recovery_codes_reviewer_id'), ['reviewer_id'], unique=False)

    # Nullable columns: a plain ADD COLUMN on both backends (no table rebuild on SQLite).
    with op.batch_alter_table('reviewers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('totp_confirmed_at', verify_service.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('totp_last_step', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('reviewers', schema=None) as batch_op:
        batch_op.drop_column('totp_last_step')
        batch_op.drop_column('totp_confirmed_at')

    with op.batch_alter_table('staff_recovery_codes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staff_recovery_codes_reviewer_id'))

    op.drop_table('staff_recovery_codes')
    op.drop_table('staff_sign_in_throttles')
    with op.batch_alter_table('staff_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staff_sessions_reviewer_id'))

    op.drop_table('staff_sessions')
