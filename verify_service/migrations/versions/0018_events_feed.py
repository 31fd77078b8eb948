"""the events feed's visibility order

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04

* ``outbox_events.txid``: the id of the transaction that wrote the event. On
  PostgreSQL the column's default is ``pg_current_xact_id()``, and the events
  feed (``GET /api/v1/events``) shows an event only once every transaction with
  a smaller id has ended, so one that commits late never lands behind a reader's
  cursor. Rows written before this revision get 0: they committed long ago, and
  among themselves they keep their id order. On SQLite the column stays 0: one
  writer at a time makes the id order the commit order.
* ``ix_outbox_events_feed`` (txid, id) and ``ix_outbox_events_feed_type``
  (type, txid, id): the feed's order, unfiltered and by type.
"""

from alembic import op
import sqlalchemy as sa


revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A constant default first: existing rows get 0 without a table rewrite on PostgreSQL.
    with op.batch_alter_table('outbox_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('txid', sa.BigInteger(), server_default=sa.text('0'), nullable=False))
        batch_op.create_index('ix_outbox_events_feed', ['txid', 'id'], unique=False)
        batch_op.create_index('ix_outbox_events_feed_type', ['type', 'txid', 'id'], unique=False)
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("ALTER TABLE outbox_events ALTER COLUMN txid SET DEFAULT (pg_current_xact_id()::text::bigint)")


def downgrade() -> None:
    with op.batch_alter_table('outbox_events', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_events_feed_type')
        batch_op.drop_index('ix_outbox_events_feed')
        batch_op.drop_column('txid')
