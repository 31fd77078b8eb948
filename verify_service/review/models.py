"""Staff accounts with roles (DESIGN §3.5)."""

from __future__ import annotations

import datetime as dt
import enum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from verify_service.db import Base, UTCDateTime, text_enum


class Role(str, enum.Enum):
    REVIEWER = "reviewer"  # claim sessions, record outcomes
    LEAD = "lead"          # + second review, place/lift holds, manage shifts and reviewers
    ADMIN = "admin"        # everything, configuration included

    def includes(self, other: Role) -> bool:
        """Whether this role may do what ``other`` may."""
        order = [Role.REVIEWER, Role.LEAD, Role.ADMIN]
        return order.index(self) >= order.index(other)


class Reviewer(Base):
    __tablename__ = "reviewers"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    email: Mapped[str] = mapped_column(sa.String(320), unique=True)
    display_name: Mapped[str] = mapped_column(sa.String(200))
    role: Mapped[Role] = mapped_column(text_enum(Role, "reviewer_role"))
    # argon2id hash (argon2-cffi); never the password.
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    totp_secret: Mapped[str | None] = mapped_column(sa.String(64))
    # The reviewer's Google identity ("users/{id}") once seen in a Meet conference,
    # so attendance can tell them from the freelancer.
    google_user: Mapped[str | None] = mapped_column(sa.String(100))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class ReviewerShift(Base):
    """A time a reviewer is on duty; once leads set shifts, they decide how many calls a slot takes."""

    __tablename__ = "reviewer_shifts"
    __table_args__ = (
        # The booking page's scan: shifts overlapping the next days.
        sa.Index("ix_reviewer_shifts_starts_ends", "starts_at", "ends_at"),
        sa.CheckConstraint("ends_at > starts_at", name="ends_after_start"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    reviewer_id: Mapped[int] = mapped_column(sa.ForeignKey("reviewers.id"))
    starts_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(sa.String(100))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
