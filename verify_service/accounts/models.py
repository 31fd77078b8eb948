"""Accounts (profile snapshot + restriction state), verification requests and holds."""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from verify_service.accounts.domain import (
    Capability,
    HoldKind,
    RequestReason,
    RequestStatus,
    VerificationStatus,
)
from verify_service.db import Base, UTCDateTime, text_enum


def new_id() -> str:
    return str(uuid.uuid4())


class Account(Base):
    """A marketplace account as far as verification is concerned.

    ``id`` is the account service's own identifier. The profile fields are a
    snapshot the reviewer confirms during the call; they are personal data
    and are erased when the account closes. ``restrictions_version`` and
    ``last_event_seq`` only ever grow, and change only while the row is locked.
    """

    __tablename__ = "accounts"
    __table_args__ = (
        # The leads' account list without a search: held accounts, then the rest, changed last first.
        sa.Index("ix_accounts_updated_at", "updated_at", "id"),
        # The leads' search by id prefix (LIKE 'q%'): PostgreSQL needs the pattern operator class for LIKE
        # to use an index under a non-C collation. (SQLite gets a plain index.)
        sa.Index("ix_accounts_id_pattern", "id", postgresql_ops={"id": "varchar_pattern_ops"}),
    )

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    display_name: Mapped[str | None] = mapped_column(sa.String(200))
    email: Mapped[str | None] = mapped_column(sa.String(320))
    country: Mapped[str | None] = mapped_column(sa.String(2))
    photo_url: Mapped[str | None] = mapped_column(sa.String(2048))
    timezone: Mapped[str | None] = mapped_column(sa.String(64))
    locale: Mapped[str | None] = mapped_column(sa.String(35))
    # When the sender took the snapshot applied last (webhook timestamps): older ones are ignored.
    profile_source_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    verification_status: Mapped[VerificationStatus] = mapped_column(
        text_enum(VerificationStatus, "verification_status"), default=VerificationStatus.NOT_REQUIRED)
    verification_changed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    restrictions_version: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    last_event_seq: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class VerificationRequest(Base):
    __tablename__ = "verification_requests"
    __table_args__ = (
        # At most one open request per account.
        sa.Index("uq_verification_requests_open", "account_id", unique=True,
                 sqlite_where=sa.text("status = 'open'"), postgresql_where=sa.text("status = 'open'")),
        sa.Index("ix_verification_requests_deadline_open", "deadline",
                 sqlite_where=sa.text("status = 'open'"), postgresql_where=sa.text("status = 'open'")),
    )

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(sa.ForeignKey("accounts.id"), index=True)
    reason: Mapped[RequestReason] = mapped_column(text_enum(RequestReason, "request_reason"))
    deadline: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    place_hold: Mapped[bool] = mapped_column(default=False)
    status: Mapped[RequestStatus] = mapped_column(text_enum(RequestStatus, "request_status"),
                                                  default=RequestStatus.OPEN)
    requested_by: Mapped[str] = mapped_column(sa.String(100))
    requested_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


def active_blocking(capability: Capability) -> str:
    """SQL: the hold is active and blocks ``capability`` (the predicate of its partial index, and the bulk query's).

    ``blocks`` is a JSON array of capability names as the services wrote it. The names hold no
    character JSON escapes or LIKE treats specially, so the quoted name occurs in the text exactly
    when the array holds it: one test for SQLite and PostgreSQL, which both prove a query's
    identical condition implies the index's (no JSON functions; a bound value would defeat that).
    """
    return f"lifted_at IS NULL AND CAST(blocks AS TEXT) LIKE '%\"{capability.value}\"%'"


class Hold(Base):
    """A hold blocks a set of capabilities until it is lifted; rows are kept after lifting."""

    __tablename__ = "holds"
    __table_args__ = (
        # The hot path reads an account's active holds.
        sa.Index("ix_holds_account_active", "account_id",
                 sqlite_where=sa.text("lifted_at IS NULL"), postgresql_where=sa.text("lifted_at IS NULL")),
        # The lead's account page lists every hold, lifted ones too.
        sa.Index("ix_holds_account_id", "account_id"),
        # At most one active hold of each automatic kind per account.
        sa.Index("uq_holds_active_automatic_kind", "account_id", "kind", unique=True,
                 sqlite_where=sa.text("lifted_at IS NULL AND kind <> 'manual'"),
                 postgresql_where=sa.text("lifted_at IS NULL AND kind <> 'manual'")),
        # The bulk list filtered by a capability (accounts/bulk.py) reads the accounts holding it in id order.
        *(sa.Index(f"ix_holds_active_{capability.value}", "account_id",
                   sqlite_where=sa.text(active_blocking(capability)),
                   postgresql_where=sa.text(active_blocking(capability))) for capability in Capability),
    )

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(sa.ForeignKey("accounts.id"))
    kind: Mapped[HoldKind] = mapped_column(text_enum(HoldKind, "hold_kind"))
    # Capability values, canonical order.
    blocks: Mapped[list[str]] = mapped_column(sa.JSON)
    reason: Mapped[str] = mapped_column(sa.String(500))
    placed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    placed_by: Mapped[str] = mapped_column(sa.String(100))
    verification_request_id: Mapped[str | None] = mapped_column(sa.ForeignKey("verification_requests.id"))
    lifted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    lifted_by: Mapped[str | None] = mapped_column(sa.String(100))
    lift_reason: Mapped[str | None] = mapped_column(sa.String(500))

    @property
    def capabilities(self) -> frozenset[Capability]:
        return frozenset(Capability(c) for c in self.blocks)

    @property
    def active(self) -> bool:
        return self.lifted_at is None
