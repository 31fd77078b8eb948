"""launch links' return_url

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03

* ``launch_links.return_url`` and ``freelancer_sessions.return_url``: where the
  freelancer's "Back to the marketplace" link points. The account service
  names it when it asks for the link (its origin must be one of
  ``VERIFY_RETURN_URL_ORIGINS``); the session opened from the link keeps it.
  Empty (NULL) when none was given: the pages then show no link.
"""

from alembic import op
import sqlalchemy as sa


revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('launch_links', schema=None) as batch_op:
        batch_op.add_column(sa.Column('return_url', sa.String(length=2000), nullable=True))
    with op.batch_alter_table('freelancer_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('return_url', sa.String(length=2000), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('freelancer_sessions', schema=None) as batch_op:
        batch_op.drop_column('return_url')
    with op.batch_alter_table('launch_links', schema=None) as batch_op:
        batch_op.drop_column('return_url')
