"""The outbox: events to the account service, and the endpoint they are delivered to."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.compiler import SQLCompiler

from verify_service.db import Base, UTCDateTime, text_enum


class DeliveryStatus(str, enum.Enum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"  # retries exhausted; visible to leads, can be redelivered


class writing_txid(sa.sql.expression.FunctionElement[int]):  # noqa: N801 (an SQL function, named like one)
    """The id of the transaction that writes the row: PostgreSQL's ``pg_current_xact_id()``; 0 on SQLite.

    The events feed reads a row only once every transaction with a smaller id has ended, so a
    transaction that commits late can never land behind a reader's cursor (docs/architecture.md,
    'The events feed'). SQLite has one writer at a time, so there the id order alone is commit order.
    """

    type = sa.BigInteger()
    inherit_cache = True


@compiles(writing_txid)
def _writing_txid_elsewhere(element: writing_txid, compiler: SQLCompiler, **kw: object) -> str:
    return "0"


@compiles(writing_txid, "postgresql")
def _writing_txid_postgresql(element: writing_txid, compiler: SQLCompiler, **kw: object) -> str:
    # xid8 has no cast to bigint; its text form is the 64-bit number (epoch and xid), which never wraps.
    return "(pg_current_xact_id()::text::bigint)"


class OutboxEvent(Base):
    """An event written in the transaction that caused it (docs/architecture.md, 'The outbox').

    ``seq`` is per account, gapless, and assigned while the account row is
    locked; the relay delivers an account's events strictly in ``seq`` order.
    """

    __tablename__ = "outbox_events"
    __table_args__ = (
        sa.UniqueConstraint("account_id", "seq", name="uq_outbox_events_account_seq"),
        # The relay's scan: pending events that are due.
        sa.Index("ix_outbox_events_due", "next_attempt_at",
                 sqlite_where=sa.text("status = 'pending'"), postgresql_where=sa.text("status = 'pending'")),
        # "Is an earlier event of this account still undelivered?" — asked for every candidate.
        sa.Index("ix_outbox_events_undelivered", "account_id", "seq",
                 sqlite_where=sa.text("status <> 'delivered'"), postgresql_where=sa.text("status <> 'delivered'")),
        # The events feed's order, unfiltered and by type (verify_service/events/feed.py).
        sa.Index("ix_outbox_events_feed", "txid", "id"),
        sa.Index("ix_outbox_events_feed_type", "type", "txid", "id"),
    )

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    # Sent as the webhook-id header: the consumer's deduplication key.
    event_id: Mapped[str] = mapped_column(sa.String(40), unique=True)
    account_id: Mapped[str] = mapped_column(sa.ForeignKey("accounts.id"))
    seq: Mapped[int] = mapped_column(sa.BigInteger)
    type: Mapped[str] = mapped_column(sa.String(100))
    data: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    status: Mapped[DeliveryStatus] = mapped_column(text_enum(DeliveryStatus, "delivery_status"),
                                                   default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    last_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(sa.String(1000))
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # A relay's lease on the event while it delivers it (no transaction stays open during HTTP).
    claimed_by: Mapped[str | None] = mapped_column(sa.String(64))
    claimed_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # The writing transaction's id (see writing_txid); the database fills it in.
    txid: Mapped[int] = mapped_column(sa.BigInteger, server_default=writing_txid(), nullable=False)


class WebhookEndpoint(Base):
    """Delivery state of the account service's webhook URL.

    A ``410 Gone`` disables delivery to that URL until an operator enables it
    again (``verify-service outbox enable``); events wait, none is dropped.
    Configuring a different URL starts afresh.
    """

    __tablename__ = "webhook_endpoints"

    url: Mapped[str] = mapped_column(sa.String(500), primary_key=True)
    disabled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    disabled_reason: Mapped[str | None] = mapped_column(sa.String(500))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
