"""secrets at rest

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03

* ``reviewers.totp_secret`` now holds a Fernet token (sealed with
  ``VERIFY_DATA_KEYS``), longer than the clear base32 secret it held: the column
  widens from 64 to 255 characters. A migration cannot know the keys, so the
  clear secrets already stored stay as they are: the code seals each one the
  first time it reads it, and ``verify-service keys rotate`` seals all that are
  left at once.
* ``staff_sign_in_throttles``: counters are now keyed with HMAC-SHA256 under a
  key derived from ``VERIFY_SECRET_KEY``, no longer with plain SHA-256 (which
  let anyone holding the table recover the email or address behind a key by
  hashing guesses). The old counters could never match again and would only
  keep those recoverable hashes for another day, so they are deleted now; they
  live 15 minutes to an hour anyway.

Downgrade: the old code reads ``totp_secret`` as a clear secret and cannot
open a sealed one, and a token does not fit the narrower column, so every
staff member whose secret is sealed has two-step verification reset (as a
lead's reset does: they set it up again at their next sign-in).
"""

from alembic import op
import sqlalchemy as sa


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

# Any Fernet token is at least 100 characters; a clear base32 secret fits in the old 64.
SEALED = "totp_secret IS NOT NULL AND length(totp_secret) > 64"


def _resize(old: int, new: int) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("reviewers", "totp_secret", existing_type=sa.String(old), type_=sa.String(new),
                        existing_nullable=True)
        return
    # SQLite: a batch rebuild of ``reviewers`` would drop a table that many others reference, which
    # the connection's foreign_keys=ON refuses once staff exist. Its native column operations need
    # no rebuild: the column is swapped for a new one of the new width (the order of columns moves).
    op.execute("ALTER TABLE reviewers RENAME COLUMN totp_secret TO totp_secret_old")
    op.execute(f"ALTER TABLE reviewers ADD COLUMN totp_secret VARCHAR({new})")
    op.execute("UPDATE reviewers SET totp_secret = totp_secret_old")
    op.execute("ALTER TABLE reviewers DROP COLUMN totp_secret_old")


def upgrade() -> None:
    _resize(64, 255)
    op.execute("DELETE FROM staff_sign_in_throttles")


def downgrade() -> None:
    op.execute("DELETE FROM staff_recovery_codes WHERE reviewer_id IN (SELECT id FROM reviewers WHERE "
               f"{SEALED})")
    op.execute(f"UPDATE reviewers SET totp_secret = NULL, totp_confirmed_at = NULL, totp_last_step = NULL "
               f"WHERE {SEALED}")
    _resize(255, 64)
    op.execute("DELETE FROM staff_sign_in_throttles")
