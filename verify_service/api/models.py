"""Remembered responses for ``Idempotency-Key``."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from verify_service.db import Base, UTCDateTime


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"
    __table_args__ = (sa.UniqueConstraint("scope", "key", name="uq_idempotency_keys_scope_key"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    # "METHOD path": a key is only ever replayed for the same operation.
    scope: Mapped[str] = mapped_column(sa.String(300))
    key: Mapped[str] = mapped_column(sa.String(255))
    request_hash: Mapped[str] = mapped_column(sa.String(64))
    status_code: Mapped[int]
    response_body: Mapped[Any] = mapped_column(sa.JSON)
    response_headers: Mapped[dict[str, str]] = mapped_column(sa.JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
