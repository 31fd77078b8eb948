"""Staff accounts with roles (DESIGN §3.5)."""

from __future__ import annotations

import datetime as dt
import enum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from verify_service.accounts.models import new_id
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
    # Sealed (a Fernet token under VERIFY_DATA_KEYS: verify_service/crypto.py), never the clear secret; a clear one
    # stored before secrets were sealed is sealed when first read (staff/two_step.py) or by `keys rotate`.
    totp_secret: Mapped[str | None] = mapped_column(sa.String(255))
    totp_confirmed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())  # two-step set up (staff sign-in)
    totp_last_step: Mapped[int | None] = mapped_column()  # last accepted TOTP time step: each code works once
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
    # The weekly shift this row was materialised from (leads/shifts.py); None for a one-off shift.
    recurring_shift_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("recurring_shifts.id", ondelete="SET NULL"), index=True)


class DocumentType(str, enum.Enum):
    PASSPORT = "passport"
    NATIONAL_ID = "national_id"
    DRIVING_LICENCE = "driving_licence"
    RESIDENCE_PERMIT = "residence_permit"
    OTHER = "other"


class IdentityDocument(Base):
    """The government ID a freelancer showed on a call (one per session; personal data).

    The document number is never stored: only its keyed fingerprint
    (HMAC-SHA256 with ``VERIFY_IDENTITY_PEPPER``, see review/identity.py),
    which finds the same document on another account, and its last 4 characters.
    """

    __tablename__ = "identity_documents"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(sa.ForeignKey("accounts.id"), index=True)
    call_session_id: Mapped[str] = mapped_column(sa.ForeignKey("call_sessions.id"), unique=True)
    doc_type: Mapped[DocumentType] = mapped_column(text_enum(DocumentType, "document_type"))
    issuing_country: Mapped[str] = mapped_column(sa.String(2))
    expires_on: Mapped[dt.date | None] = mapped_column(sa.Date)
    fingerprint: Mapped[str] = mapped_column(sa.String(64), index=True)
    last4: Mapped[str] = mapped_column(sa.String(4))
    recorded_by_id: Mapped[int] = mapped_column(sa.ForeignKey("reviewers.id"))
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
