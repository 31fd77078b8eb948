"""simulations: built-in staff identities

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04

* ``reviewers.builtin``: the staff rows the service itself acts as when the
  account service asks for a simulated call (``simulator``, and the simulated
  lead that confirms a simulated fail). They can never sign in, are hidden
  from the leads' staff list, and are left out of metrics and the QA list.
  The rows themselves are created on first use (``simulations/identities.py``),
  not here.
"""

from alembic import op
import sqlalchemy as sa


revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('reviewers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('builtin', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('reviewers', schema=None) as batch_op:
        batch_op.drop_column('builtin')
