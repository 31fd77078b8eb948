"""The rows of Meet's real-time attendance: one Workspace Events subscription per host user, and the
events already applied (docs/architecture.md, 'Meet events')."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from verify_service.db import Base, UTCDateTime


class MeetSubscription(Base):
    """The Workspace Events subscription that delivers a host user's Meet events to the service.

    ``state`` is Google's (``ACTIVE``, ``SUSPENDED``, ``DELETED``) as last seen, or ``MISSING`` before
    the first one exists or after Google lost it; ``problem`` is why the last attempt to create,
    renew or reactivate it failed (shown by /readyz).
    """

    __tablename__ = "meet_subscriptions"

    host: Mapped[str] = mapped_column(sa.String(320), primary_key=True)
    user: Mapped[str | None] = mapped_column(sa.String(100))          # users/{id}: the subscription's target
    name: Mapped[str | None] = mapped_column(sa.String(200))          # subscriptions/{id}
    state: Mapped[str] = mapped_column(sa.String(20), default="MISSING", server_default="MISSING")
    suspension_reason: Mapped[str | None] = mapped_column(sa.String(60))
    expire_time: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    problem: Mapped[str | None] = mapped_column(sa.String(500))
    checked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class MeetEventReceipt(Base):
    """A Meet event received (its CloudEvent ``id``): the push's transaction writes it, so a redelivered
    event finds it and changes nothing; until it is applied it keeps the event (``event``) and
    ``applied_at`` is empty — the transaction that applies it sets ``applied_at`` with the effect, so
    it is applied exactly once. Purged after Pub/Sub's longest redelivery window."""

    __tablename__ = "meet_event_receipts"
    __table_args__ = (
        sa.Index("ix_meet_event_receipts_received_at", "received_at"),
        sa.Index("ix_meet_event_receipts_pending", "received_at",
                 sqlite_where=sa.text("applied_at IS NULL"), postgresql_where=sa.text("applied_at IS NULL")),
    )

    id: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    type: Mapped[str] = mapped_column(sa.String(100))
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    event: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)     # the CloudEvent, until applied
    applied_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # Not before then: the drain holding the lease (``leased_by``) is on it, or a Meet read failed.
    retry_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    leased_by: Mapped[str | None] = mapped_column(sa.String(32))
