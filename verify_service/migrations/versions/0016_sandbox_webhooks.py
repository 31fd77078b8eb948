"""sandbox webhooks

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03

* ``sandbox_webhooks``: what the sandbox account service
  (``/sandbox/account-service``, development and testing only) received from
  the outbox, with its signature verdict; production never writes to it.
"""

from alembic import op
import sqlalchemy as sa
import verify_service.db


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sandbox_webhooks',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('webhook_id', sa.String(length=200), nullable=False),
    sa.Column('event_type', sa.String(length=200), nullable=False),
    sa.Column('attempt', sa.String(length=20), nullable=False),
    sa.Column('signature_valid', sa.Boolean(), nullable=False),
    sa.Column('problem', sa.String(length=300), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('received_at', verify_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sandbox_webhooks'))
    )


def downgrade() -> None:
    op.drop_table('sandbox_webhooks')
