"""Launch links and freelancer sessions. Only hashes of their secrets are stored."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from verify_service.db import Base, UTCDateTime

RETURN_URL_MAX = 2000


class LaunchLink(Base):
    """A single-use link the account service hands the signed-in freelancer (10 minutes)."""

    __tablename__ = "launch_links"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    account_id: Mapped[str] = mapped_column(sa.ForeignKey("accounts.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # Where the pages' "Back to <marketplace>" link points (checked against VERIFY_RETURN_URL_ORIGINS).
    return_url: Mapped[str | None] = mapped_column(sa.String(RETURN_URL_MAX))


class FreelancerSession(Base):
    """A signed-in freelancer in the browser: idle timeout 30 minutes, absolute 8 hours."""

    __tablename__ = "freelancer_sessions"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    account_id: Mapped[str] = mapped_column(sa.ForeignKey("accounts.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    return_url: Mapped[str | None] = mapped_column(sa.String(RETURN_URL_MAX))  # the launch link's
