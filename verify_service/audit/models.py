"""Audit entries and the chain head.

Entries never hold personal data (only ids, actions and non-personal
details), so erasing an account never has to rewrite the chain. Both
database backends refuse UPDATE and DELETE on ``audit_entries`` through
triggers; the hash chain catches what a trigger cannot (a DBA, a restore).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Mapped, mapped_column

from verify_service.db import Base, UTCDateTime

GENESIS_HASH = "0" * 64


class AuditEntry(Base):
    __tablename__ = "audit_entries"
    __table_args__ = (sa.Index("ix_audit_entries_account_seq", "account_id", "seq"),)

    # Gapless: taken from the head row while it is locked.
    seq: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(sa.String(100))
    action: Mapped[str] = mapped_column(sa.String(100))
    account_id: Mapped[str | None] = mapped_column(sa.String(64))
    subject_type: Mapped[str | None] = mapped_column(sa.String(50))
    subject_id: Mapped[str | None] = mapped_column(sa.String(64))
    details: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    prev_hash: Mapped[str] = mapped_column(sa.String(64))
    hash: Mapped[str] = mapped_column(sa.String(64))


class AuditHead(Base):
    """A single row (id 1): the last entry's seq and hash. Locking it serialises appends."""

    __tablename__ = "audit_head"
    __table_args__ = (sa.CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    last_seq: Mapped[int] = mapped_column(sa.BigInteger)
    last_hash: Mapped[str] = mapped_column(sa.String(64))


HEAD_ROW_SQL = f"INSERT INTO audit_head (id, last_seq, last_hash) VALUES (1, 0, '{GENESIS_HASH}')"

# Entries: no UPDATE, no DELETE, no INSERT OR REPLACE (SQLite), no TRUNCATE (PostgreSQL).
# Head: exactly one row, which only moves forward one entry at a time.
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
POSTGRES_DROP = ["DROP FUNCTION IF EXISTS audit_entries_append_only() CASCADE",
                 "DROP FUNCTION IF EXISTS audit_head_guard() CASCADE"]


def guard_ddl(dialect_name: str) -> list[str]:
    """The statements that protect the audit tables on this backend (run after both exist)."""
    return {"sqlite": SQLITE_GUARDS, "postgresql": POSTGRES_GUARDS}.get(dialect_name, [])


# The same set-up for create_all (tests); the migration inlines the same statements,
# and a test checks that both ways end with the same triggers.
@event.listens_for(Base.metadata, "after_create")
def _guard(target: sa.MetaData, connection: sa.Connection, **_: Any) -> None:
    if "audit_head" in target.tables and "audit_entries" in target.tables:
        connection.exec_driver_sql(HEAD_ROW_SQL)
        for statement in guard_ddl(connection.dialect.name):
            connection.exec_driver_sql(statement)


@event.listens_for(Base.metadata, "after_drop")
def _drop_functions(target: sa.MetaData, connection: sa.Connection, **_: Any) -> None:
    if connection.dialect.name == "postgresql":
        for statement in POSTGRES_DROP:
            connection.exec_driver_sql(statement)
