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

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    last_seq: Mapped[int] = mapped_column(sa.BigInteger)
    last_hash: Mapped[str] = mapped_column(sa.String(64))


HEAD_ROW_SQL = f"INSERT INTO audit_head (id, last_seq, last_hash) VALUES (1, 0, '{GENESIS_HASH}')"

SQLITE_APPEND_ONLY = [
    """CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries
       BEGIN SELECT RAISE(ABORT, 'audit_entries is append-only'); END""",
    """CREATE TRIGGER audit_entries_no_delete BEFORE DELETE ON audit_entries
       BEGIN SELECT RAISE(ABORT, 'audit_entries is append-only'); END""",
]
POSTGRES_APPEND_ONLY = [
    """CREATE FUNCTION audit_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION 'audit_entries is append-only'; END $$""",
    """CREATE TRIGGER audit_entries_no_change BEFORE UPDATE OR DELETE ON audit_entries
       FOR EACH ROW EXECUTE FUNCTION audit_entries_append_only()""",
]


def append_only_ddl(dialect_name: str) -> list[str]:
    """The statements that make ``audit_entries`` append-only on this backend."""
    return {"sqlite": SQLITE_APPEND_ONLY, "postgresql": POSTGRES_APPEND_ONLY}.get(dialect_name, [])


# The same set-up for create_all (tests); the migration runs the same statements.
@event.listens_for(AuditHead.__table__, "after_create")
def _seed_head(target: sa.Table, connection: sa.Connection, **_: Any) -> None:
    connection.exec_driver_sql(HEAD_ROW_SQL)


@event.listens_for(AuditEntry.__table__, "after_create")
def _append_only(target: sa.Table, connection: sa.Connection, **_: Any) -> None:
    for statement in append_only_ddl(connection.dialect.name):
        connection.exec_driver_sql(statement)


@event.listens_for(AuditEntry.__table__, "before_drop")
def _drop_function(target: sa.Table, connection: sa.Connection, **_: Any) -> None:
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("DROP TRIGGER IF EXISTS audit_entries_no_change ON audit_entries")
        connection.exec_driver_sql("DROP FUNCTION IF EXISTS audit_entries_append_only()")
