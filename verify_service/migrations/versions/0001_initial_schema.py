"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-22

Also seeds the audit chain head and makes audit_entries append-only with
triggers (SQL inlined, so later model changes never alter this migration).
"""

from alembic import op
import sqlalchemy as sa
import verify_service.db


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('accounts',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('display_name', sa.String(length=200), nullable=True),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('country', sa.String(length=2), nullable=True),
    sa.Column('photo_url', sa.String(length=2048), nullable=True),
    sa.Column('timezone', sa.String(length=64), nullable=True),
    sa.Column('locale', sa.String(length=35), nullable=True),
    sa.Column('verification_status', sa.Enum('not_required', 'required', 'verified', 'failed', name='verification_status', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('verification_changed_at', verify_service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('restrictions_version', sa.BigInteger(), nullable=False),
    sa.Column('last_event_seq', sa.BigInteger(), nullable=False),
    sa.Column('created_at', verify_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', verify_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('closed_at', verify_service.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_accounts'))
    )
    op.create_table('audit_entries',
    sa.Column('seq', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('occurred_at', verify_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('action', sa.String(length=100), nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=True),
    sa.Column('subject_type', sa.String(length=50), nullable=True),
    sa.Column('subject_id', sa.String(length=64), nullable=True),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_audit_entries'))
    )
    with op.batch_alter_table('audit_entries', schema=None) as batch_op:
        batch_op.create_index('ix_audit_entries_account_seq', ['account_id', 'seq'], unique=False)

    op.create_table('audit_head',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('last_seq', sa.BigInteger(), nullable=False),
    sa.Column('last_hash', sa.String(length=64), nullable=False),
    sa.CheckConstraint('id = 1', name=op.f('ck_audit_head_single_row')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_head'))
    )
    op.create_table('idempotency_keys',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('scope', sa.String(length=300), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=False),
    sa.Column('response_body', sa.JSON(), nullable=False),
    sa.Column('response_headers', sa.JSON(), nullable=False),
    sa.Column('created_at', verify_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', verify_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_idempotency_keys')),
    sa.UniqueConstraint('scope', 'key', name='uq_idempotency_keys_scope_key')
    )
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_idempotency_keys_expires_at'), ['expires_at'], unique=False)

    op.create_table('inbound_webhook_receipts',
    sa.Column('webhook_id', sa.String(length=255), nullable=False),
    sa.Column('type', sa.String(length=100), nullable=False),
    sa.Column('received_at', verify_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('webhook_id', name=op.f('pk_inbound_webhook_receipts'))
    )
    with op.batch_alter_table('inbound_webhook_receipts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_inbound_webhook_receipts_received_at'), ['received_at'], unique=False)

    op.create_table('reviewers',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('display_name', sa.String(length=200), nullable=False),
    sa.Column('role', sa.Enum('reviewer', 'lead', 'admin', name='reviewer_role', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('totp_secret', sa.String(length=64), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', verify_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reviewers')),
    sa.UniqueConstraint('email', name=op.f('uq_reviewers_email'))
    )
    op.create_table('outbox_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('event_id', sa.String(length=40), nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('type', sa.String(length=100), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('created_at', verify_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('status', sa.Enum('pending', 'delivered', 'dead', name='delivery_status', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', verify_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_error', sa.String(length=1000), nullable=True),
    sa.Column('delivered_at', verify_service.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_outbox_events_account_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_events')),
    sa.UniqueConstraint('account_id', 'seq', name='uq_outbox_events_account_seq'),
    sa.UniqueConstraint('event_id', name=op.f('uq_outbox_events_event_id'))
    )
    with op.batch_alter_table('outbox_events', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_events_due', ['next_attempt_at'], unique=False, sqlite_where=sa.text("status = 'pending'"), postgresql_where=sa.text("status = 'pending'"))

    op.create_table('verification_requests',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.Enum('new_account', 'risk_signal', 'profile_change', 'manual', name='request_reason', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('deadline', verify_service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('place_hold', sa.Boolean(), nullable=False),
    sa.Column('status', sa.Enum('open', 'passed', 'failed', 'canceled', name='request_status', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('requested_by', sa.String(length=100), nullable=False),
    sa.Column('requested_at', verify_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('closed_at', verify_service.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_verification_requests_account_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_verification_requests'))
    )
    with op.batch_alter_table('verification_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_verification_requests_account_id'), ['account_id'], unique=False)
        batch_op.create_index('ix_verification_requests_deadline_open', ['deadline'], unique=False, sqlite_where=sa.text("status = 'open'"), postgresql_where=sa.text("status = 'open'"))
        batch_op.create_index('uq_verification_requests_open', ['account_id'], unique=True, sqlite_where=sa.text("status = 'open'"), postgresql_where=sa.text("status = 'open'"))

    op.create_table('call_sessions',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('verification_request_id', sa.String(length=36), nullable=True),
    sa.Column('status', sa.Enum('scheduled', 'waiting', 'in_progress', 'awaiting_second_review', 'completed', 'expired', 'canceled', name='session_status', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('scheduled_for', verify_service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('meet_space', sa.String(length=200), nullable=True),
    sa.Column('meet_uri', sa.String(length=500), nullable=True),
    sa.Column('meet_code', sa.String(length=50), nullable=True),
    sa.Column('meet_host', sa.String(length=320), nullable=True),
    sa.Column('claimed_by_id', sa.Integer(), nullable=True),
    sa.Column('claimed_at', verify_service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('outcome', sa.Enum('passed', 'failed', 'inconclusive', 'no_show', name='outcome_result', native_enum=False, create_constraint=True, length=32), nullable=True),
    sa.Column('created_at', verify_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', verify_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('started_at', verify_service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('ended_at', verify_service.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_call_sessions_account_id_accounts')),
    sa.ForeignKeyConstraint(['claimed_by_id'], ['reviewers.id'], name=op.f('fk_call_sessions_claimed_by_id_reviewers')),
    sa.ForeignKeyConstraint(['verification_request_id'], ['verification_requests.id'], name=op.f('fk_call_sessions_verification_request_id_verification_requests')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_call_sessions'))
    )
    with op.batch_alter_table('call_sessions', schema=None) as batch_op:
        batch_op.create_index('ix_call_sessions_account_created', ['account_id', 'created_at'], unique=False)
        batch_op.create_index('ix_call_sessions_status_created', ['status', 'created_at'], unique=False)

    op.create_table('holds',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.Enum('verification_pending', 'verification_failed', 'manual', name='hold_kind', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('blocks', sa.JSON(), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('placed_at', verify_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('placed_by', sa.String(length=100), nullable=False),
    sa.Column('verification_request_id', sa.String(length=36), nullable=True),
    sa.Column('lifted_at', verify_service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('lifted_by', sa.String(length=100), nullable=True),
    sa.Column('lift_reason', sa.String(length=500), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_holds_account_id_accounts')),
    sa.ForeignKeyConstraint(['verification_request_id'], ['verification_requests.id'], name=op.f('fk_holds_verification_request_id_verification_requests')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_holds'))
    )
    with op.batch_alter_table('holds', schema=None) as batch_op:
        batch_op.create_index('ix_holds_account_active', ['account_id'], unique=False, sqlite_where=sa.text('lifted_at IS NULL'), postgresql_where=sa.text('lifted_at IS NULL'))
        batch_op.create_index('uq_holds_active_automatic_kind', ['account_id', 'kind'], unique=True, sqlite_where=sa.text("lifted_at IS NULL AND kind <> 'manual'"), postgresql_where=sa.text("lifted_at IS NULL AND kind <> 'manual'"))

    op.create_table('outcomes',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('call_session_id', sa.String(length=36), nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('result', sa.Enum('passed', 'failed', 'inconclusive', 'no_show', name='outcome_result', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('decided_by_id', sa.Integer(), nullable=False),
    sa.Column('decided_at', verify_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('final', sa.Boolean(), nullable=False),
    sa.Column('second_reviewer_id', sa.Integer(), nullable=True),
    sa.Column('second_decision', sa.String(length=20), nullable=True),
    sa.Column('second_decided_at', verify_service.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_outcomes_account_id_accounts')),
    sa.ForeignKeyConstraint(['call_session_id'], ['call_sessions.id'], name=op.f('fk_outcomes_call_session_id_call_sessions')),
    sa.ForeignKeyConstraint(['decided_by_id'], ['reviewers.id'], name=op.f('fk_outcomes_decided_by_id_reviewers')),
    sa.ForeignKeyConstraint(['second_reviewer_id'], ['reviewers.id'], name=op.f('fk_outcomes_second_reviewer_id_reviewers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outcomes'))
    )
    with op.batch_alter_table('outcomes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outcomes_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_outcomes_call_session_id'), ['call_session_id'], unique=False)
    op.execute("INSERT INTO audit_head (id, last_seq, last_hash) VALUES (1, 0, '" + "0" * 64 + "')")
    for statement in POSTGRES_GUARDS if op.get_bind().dialect.name == "postgresql" else SQLITE_GUARDS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS audit_entries_append_only() CASCADE")
        op.execute("DROP FUNCTION IF EXISTS audit_head_guard() CASCADE")
    else:
        for name in ("audit_entries_no_update", "audit_entries_no_delete", "audit_entries_no_replace",
                     "audit_head_single", "audit_head_no_delete", "audit_head_forward_only"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    with op.batch_alter_table('outcomes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outcomes_call_session_id'))
        batch_op.drop_index(batch_op.f('ix_outcomes_account_id'))

    op.drop_table('outcomes')
    with op.batch_alter_table('holds', schema=None) as batch_op:
        batch_op.drop_index('uq_holds_active_automatic_kind', sqlite_where=sa.text("lifted_at IS NULL AND kind <> 'manual'"), postgresql_where=sa.text("lifted_at IS NULL AND kind <> 'manual'"))
        batch_op.drop_index('ix_holds_account_active', sqlite_where=sa.text('lifted_at IS NULL'), postgresql_where=sa.text('lifted_at IS NULL'))

    op.drop_table('holds')
    with op.batch_alter_table('call_sessions', schema=None) as batch_op:
        batch_op.drop_index('ix_call_sessions_status_created')
        batch_op.drop_index('ix_call_sessions_account_created')

    op.drop_table('call_sessions')
    with op.batch_alter_table('verification_requests', schema=None) as batch_op:
        batch_op.drop_index('uq_verification_requests_open', sqlite_where=sa.text("status = 'open'"), postgresql_where=sa.text("status = 'open'"))
        batch_op.drop_index('ix_verification_requests_deadline_open', sqlite_where=sa.text("status = 'open'"), postgresql_where=sa.text("status = 'open'"))
        batch_op.drop_index(batch_op.f('ix_verification_requests_account_id'))

    op.drop_table('verification_requests')
    with op.batch_alter_table('outbox_events', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_events_due', sqlite_where=sa.text("status = 'pending'"), postgresql_where=sa.text("status = 'pending'"))

    op.drop_table('outbox_events')
    op.drop_table('reviewers')
    with op.batch_alter_table('inbound_webhook_receipts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inbound_webhook_receipts_received_at'))

    op.drop_table('inbound_webhook_receipts')
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_idempotency_keys_expires_at'))

    op.drop_table('idempotency_keys')
    op.drop_table('audit_head')
    with op.batch_alter_table('audit_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_entries_account_seq')

    op.drop_table('audit_entries')
    op.drop_table('accounts')


# Inlined (not imported from the models), so later model changes never alter this migration.
SQLITE_GUARDS = [
    """CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries
       BEGIN SELECT RAISE(ABORT, 'audit_entries is append-only'); END""",
    """CREATE TRIGGER audit_entries_no_delete BEFORE DELETE ON audit_entries
       BEGIN SELECT RAISE(ABORT, 'audit_entries is append-only'); END""",
    """CREATE TRIGGER audit_entries_no_replace BEFORE INSERT ON audit_entries
       WHEN EXISTS (SELECT 1 FROM audit_entries WHERE seq = NEW.seq)
       BEGIN SELECT RAISE(ABORT, 'audit_entries is append-only'); END""",
    """CREATE TRIGGER audit_head_single BEFORE INSERT ON audit_head
       WHEN EXISTS (SELECT 1 FROM audit_head)
       BEGIN SELECT RAISE(ABORT, 'audit_head has exactly one row'); END""",
    """CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head
       BEGIN SELECT RAISE(ABORT, 'audit_head has exactly one row'); END""",
    """CREATE TRIGGER audit_head_forward_only BEFORE UPDATE ON audit_head
       WHEN NEW.id <> OLD.id OR NEW.last_seq <> OLD.last_seq + 1
       BEGIN SELECT RAISE(ABORT, 'audit_head only moves forward one entry at a time'); END""",
]
POSTGRES_GUARDS = [
    """CREATE FUNCTION audit_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION 'audit_entries is append-only'; END $$""",
    """CREATE TRIGGER audit_entries_no_change BEFORE UPDATE OR DELETE ON audit_entries
       FOR EACH ROW EXECUTE FUNCTION audit_entries_append_only()""",
    """CREATE TRIGGER audit_entries_no_truncate BEFORE TRUNCATE ON audit_entries
       FOR EACH STATEMENT EXECUTE FUNCTION audit_entries_append_only()""",
    """CREATE FUNCTION audit_head_guard() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF TG_OP <> 'UPDATE' OR NEW.id <> OLD.id OR NEW.last_seq <> OLD.last_seq + 1 THEN
           RAISE EXCEPTION 'audit_head only moves forward one entry at a time';
         END IF;
         RETURN NEW;
       END $$""",
    """CREATE TRIGGER audit_head_forward_only BEFORE UPDATE OR DELETE ON audit_head
       FOR EACH ROW EXECUTE FUNCTION audit_head_guard()""",
    """CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON audit_head
       FOR EACH STATEMENT EXECUTE FUNCTION audit_head_guard()""",
]
