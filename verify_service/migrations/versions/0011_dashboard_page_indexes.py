"""dashboard page indexes

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-26

Indexes for the reviewer and lead pages, so they stay fast with a long
history (tests/bench/bench_pages.py: 10k to 1M call sessions): a
reviewer's recent decisions ("my sessions"), the fails waiting for a second
review, every hold of an account (the account page), and the leads' account
list (changed last first; search by id prefix, which on PostgreSQL needs the
pattern operator class under a non-C collation).
"""

from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outcomes', schema=None) as batch_op:
        batch_op.create_index('ix_outcomes_decided_by_decided_at', ['decided_by_id', 'decided_at'], unique=False)
        batch_op.create_index('ix_outcomes_awaiting_second_review', ['decided_at'], unique=False,
                              sqlite_where=sa.text('final IS 0'), postgresql_where=sa.text('final IS false'))
    with op.batch_alter_table('holds', schema=None) as batch_op:
        batch_op.create_index('ix_holds_account_id', ['account_id'], unique=False)
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.create_index('ix_accounts_updated_at', ['updated_at', 'id'], unique=False)
        batch_op.create_index('ix_accounts_id_pattern', ['id'], unique=False,
                              postgresql_ops={'id': 'varchar_pattern_ops'})


def downgrade() -> None:
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_index('ix_accounts_id_pattern')
        batch_op.drop_index('ix_accounts_updated_at')
    with op.batch_alter_table('holds', schema=None) as batch_op:
        batch_op.drop_index('ix_holds_account_id')
    with op.batch_alter_table('outcomes', schema=None) as batch_op:
        batch_op.drop_index('ix_outcomes_awaiting_second_review')
        batch_op.drop_index('ix_outcomes_decided_by_decided_at')
