"""staff invitations

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04

* ``staff_invitations``: the single-use links that let a staff member set
  their own password (and two-step verification) — a new account's
  invitation, or a lead's reset of the password or of two-step. Only the
  SHA-256 of each token is kept; ``used_at`` and ``superseded_at`` end a link.
* ``sandbox_mail``: where the sandbox mailbox keeps the mail it did not send
  (development and testing, when ``VERIFY_SMTP_URL`` is empty); production
  never writes to it.

Staff accounts keep their ``password_hash`` column: an account waiting for
its owner to set a password stores a value no password can match ("!" and
random text, never an argon2 hash), so the column needs no change.
"""

from alembic import op
import sqlalchemy as sa
import verify_service.db


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('staff_invitations',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('reviewer_id', sa.Integer(), nullable=False),
    sa.Column('purpose', sa.Enum('invitation', 'password_reset', 'two_step_reset', name='staff_invitation_purpose', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.Column('created_at', verify_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', verify_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('used_at', verify_service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('superseded_at', verify_service.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['reviewer_id'], ['reviewers.id'], name=op.f('fk_staff_invitations_reviewer_id_reviewers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_invitations')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_staff_invitations_token_hash'))
    )
    with op.batch_alter_table('staff_invitations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_invitations_reviewer_id'), ['reviewer_id'], unique=False)

    op.create_table('sandbox_mail',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('recipient', sa.String(length=320), nullable=False),
    sa.Column('subject', sa.String(length=300), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('purpose', sa.String(length=50), nullable=False),
    sa.Column('sent_at', verify_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sandbox_mail'))
    )


def downgrade() -> None:
    op.drop_table('sandbox_mail')
    with op.batch_alter_table('staff_invitations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staff_invitations_reviewer_id'))

    op.drop_table('staff_invitations')
