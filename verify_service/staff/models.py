"""Staff: accounts and roles, their shifts (one-off and weekly), and their sign-in state.

Staff sessions are server-side and revocable; only hashes of their tokens are stored.
"""

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
    # A built-in identity of the service itself (the simulations' ``simulator`` and simulated lead): it has no
    # password, no two-step and no Google sign-in, is left out of the staff list, the metrics, the QA list and
    # shift counts, and no lead may edit it (README, "Testing your integration end to end").
    builtin: Mapped[bool] = mapped_column(default=False, server_default=sa.false())


# The people behind the desk, as opposed to the service's built-in identities.
HUMAN = Reviewer.builtin.is_(False)


def not_builtin(reviewer_id: sa.ColumnElement[int | None]) -> sa.ColumnElement[bool]:
    """``reviewer_id`` (a claimer, a decider) is nobody or a person: what counts in metrics and lists."""
    return sa.or_(reviewer_id.is_(None), reviewer_id.not_in(sa.select(Reviewer.id).where(Reviewer.builtin.is_(True))))


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



class RecurringShift(Base):
    """Every week on ``weekday`` from ``start_time`` to ``end_time``, wall-clock time in ``time_zone``.

    An ``end_time`` at or before ``start_time`` ends on the next day (a night
    shift). Times are local on purpose: a 09:00 shift in Europe/Berlin stays
    at 09:00 local across the DST changes, so its UTC instants move.
    """

    __tablename__ = "recurring_shifts"
    __table_args__ = (
        sa.CheckConstraint("weekday >= 0 AND weekday <= 6", name="weekday_range"),
        sa.CheckConstraint("end_time <> start_time", name="not_empty"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    reviewer_id: Mapped[int] = mapped_column(sa.ForeignKey("reviewers.id"), index=True)
    weekday: Mapped[int]  # 0 = Monday … 6 = Sunday (datetime.date.weekday)
    start_time: Mapped[dt.time] = mapped_column(sa.Time())
    end_time: Mapped[dt.time] = mapped_column(sa.Time())
    time_zone: Mapped[str] = mapped_column(sa.String(64))  # IANA name, e.g. Europe/Berlin
    created_by: Mapped[str] = mapped_column(sa.String(100))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


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
