"""Receipts of the account service's webhooks: what makes a redelivered webhook change nothing."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from verify_service.db import Base, UTCDateTime


class InboundWebhookReceipt(Base):
    """One row per accepted inbound ``webhook-id``, written with the webhook's effect."""

    __tablename__ = "inbound_webhook_receipts"

    webhook_id: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    type: Mapped[str] = mapped_column(sa.String(100))
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
