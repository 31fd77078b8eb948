"""launch links and freelancer sessions

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22

Single-use launch links and server-side freelancer sessions (hashes only).
"""

from alembic import op
import sqlalchemy as sa
import verify_service.db


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('freelancer_sessions',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('created_at', verify_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', verify_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', verify_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', verify_service.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_freelancer_sessions_account_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_freelancer_sessions')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_freelancer_sessions_token_hash'))
    )
    with op.batch_alter_table('freelancer_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_freelancer_sessions_account_id'), ['account_id'], unique=False)

    op.create_table('launch_links',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('created_at', verify_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', verify_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('used_at', verify_service.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_launch_links_account_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_launch_links')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_launch_links_token_hash'))
    )
    with op.batch_alter_table('launch_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_launch_links_account_id'), ['account_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('launch_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_launch_links_account_id'))

    op.drop_table('launch_links')
    with op.batch_alter_table('freelancer_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_freelancer_sessions_account_id'))

    op.drop_table('freelancer_sessions')
