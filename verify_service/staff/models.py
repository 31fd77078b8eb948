"""Staff sessions (server-side, revocable). Only hashes of their tokens are stored."""

from __future__ import annotations

import datetime as dt
import enum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from verify_service.db import Base, UTCDateTime, text_enum


class Stage(str, enum.Enum):
    PASSWORD_OK = "password_ok"   # the password was right; the second step (TOTP or recovery code) is next
    ENROLLING = "enrolling"       # the password was right and two-step verification must be set up first
    ACTIVE = "active"             # fully signed in


class StaffSession(Base):
    """A signed-in reviewer: idle timeout 15 minutes, absolute 10 hours; revoked by logout or disabling."""

    __tablename__ = "staff_sessions"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    reviewer_id: Mapped[int] = mapped_column(sa.ForeignKey("reviewers.id"), index=True)
    stage: Mapped[Stage] = mapped_column(text_enum(Stage, "staff_session_stage"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    ip: Mapped[str | None] = mapped_column(sa.String(64))


class ThrottleKind(str, enum.Enum):
    ACCOUNT = "account"              # password failures against one email address (known or not)
    IP = "ip"                        # failures from one client address
    SECOND_FACTOR = "second_factor"  # wrong TOTP / recovery codes of one staff account: a password never clears it


class SignInThrottle(Base):
    """Failed sign-ins counted per key, in the database so every web process shares the count."""

    __tablename__ = "staff_sign_in_throttles"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    # SHA-256 of the kind and the normalized email or IP: the table never holds either in clear.
    key_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    kind: Mapped[ThrottleKind] = mapped_column(text_enum(ThrottleKind, "sign_in_throttle_kind"))
    failures: Mapped[int] = mapped_column(default=0)
    last_failure_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class RecoveryCode(Base):
    """A single-use two-step recovery code; only its SHA-256 is kept (the reviewer saw it once)."""

    __tablename__ = "staff_recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    reviewer_id: Mapped[int] = mapped_column(sa.ForeignKey("reviewers.id"), index=True)
    code_hash: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class InvitationPurpose(str, enum.Enum):
    INVITATION = "invitation"          # a new account: set a password, then two-step verification
    PASSWORD_RESET = "password_reset"  # a lead reset the password: set a new one (two-step stays)
    TWO_STEP_RESET = "two_step_reset"  # a lead reset two-step verification: a new password, then two-step again


class StaffInvitation(Base):
    """A single-use link that lets a staff member set their own credentials (48 hours by default).

    Only the SHA-256 of its token is kept: the token itself is in the email to the account's own
    address. Issuing a newer link for the same account supersedes every unused older one.
    """

    __tablename__ = "staff_invitations"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    reviewer_id: Mapped[int] = mapped_column(sa.ForeignKey("reviewers.id"), index=True)
    purpose: Mapped[InvitationPurpose] = mapped_column(text_enum(InvitationPurpose, "staff_invitation_purpose"))
    created_by: Mapped[str] = mapped_column(sa.String(100))  # the audit actor ("reviewer:3", "cli")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    superseded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
