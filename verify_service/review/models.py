"""What a reviewer records about the identity document a freelancer showed on a call."""

from __future__ import annotations

import datetime as dt
import enum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from verify_service.accounts.models import new_id
from verify_service.db import Base, UTCDateTime, text_enum


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
