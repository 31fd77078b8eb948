"""bulk restrictions: an index of the active holds blocking each capability

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-04

* ``ix_holds_active_<capability>``, one partial index per capability on
  ``holds.account_id``, over the active holds that block it. ``GET
  /api/v1/restrictions?blocked=<capability>`` reads the accounts holding a
  capability in account id order from it, a page at a time, instead of
  filtering (and sorting) every active hold after the cursor. The unfiltered
  list reads ``ix_holds_account_active``, which exists already.

The predicate is ``accounts.models.active_blocking``, written out here as it
is today (a migration must not change when the models do).
"""

from alembic import op
import sqlalchemy as sa


revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None

CAPABILITIES = ('submit_proposals', 'withdraw_earnings', 'accept_direct_hires', 'appear_in_search',
                'change_profile_photo')


def _predicate(capability: str) -> sa.TextClause:
    return sa.text(f"lifted_at IS NULL AND CAST(blocks AS TEXT) LIKE '%\"{capability}\"%'")


def upgrade() -> None:
    for capability in CAPABILITIES:
        op.create_index(f'ix_holds_active_{capability}', 'holds', ['account_id'], unique=False,
                        sqlite_where=_predicate(capability), postgresql_where=_predicate(capability))


def downgrade() -> None:
    for capability in reversed(CAPABILITIES):
        op.drop_index(f'ix_holds_active_{capability}', table_name='holds',
                      sqlite_where=_predicate(capability), postgresql_where=_predicate(capability))
