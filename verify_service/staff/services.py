"""Staff sign-in: password, then a mandatory second step (TOTP or a recovery code), or Google Workspace.

Each step that succeeds revokes the session of the step before and opens a
new one (a new token: the id is rotated at every step). Failures count
against the account's and the client IP's throttles (:mod:`.throttle`), and
every success, failure, lockout and sign-out is written to the audit log —
with reviewer ids and reason codes, never emails, IPs, passwords or codes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import logging
from collections.abc import Mapping
from typing import Any

from prometheus_client import Counter
from sqlalchemy.orm import Session

from verify_service.audit.services import record
from verify_service.crypto import keyring_of
from verify_service.staff.models import Reviewer, StaffSession, Stage, ThrottleKind
from verify_service.staff.passwords import (
    MAX_PASSWORD_LENGTH,
    burn_password_check,
    check_password,
    find_reviewer,
    normalize_email,
)
from verify_service.staff import mail as staff_mail
from verify_service.staff import sessions, throttle, two_step
from verify_service.staff.mail import StaffMail
# Enrolment and resets live in two_step; callers use them from here.
from verify_service.staff.two_step import (  # noqa: F401
    AlreadyEnrolled, EnrolmentRestarted, WrongCode, confirm_enrolment, provisioning_uri,
    remaining_recovery_codes, reset_two_step, start_enrolment,
)

ANONYMOUS = "anonymous"
# Wrong second-factor codes in a row (since the last right one) from which each one is logged at WARNING.
SECOND_FACTOR_ALERT_AFTER = 3
SECOND_FACTOR_FAILURES = Counter("verify_staff_second_factor_failures_total",
                                 "Wrong two-step codes (TOTP or recovery) given after a right password.")
log = logging.getLogger(__name__)


class Refusal(str, enum.Enum):
    INVALID_CREDENTIALS = "invalid_credentials"  # wrong email or password (never says which)
    LOCKED = "locked"                            # too many failures: wait until ``retry_at``
    INVALID_CODE = "invalid_code"                # wrong, reused or malformed TOTP / recovery code
    STEP_EXPIRED = "step_expired"                # the half-done sign-in is over: start again
    NOT_ALLOWED = "not_allowed"                  # single sign-on identity refused


@dataclasses.dataclass(frozen=True)
class SignInStep:
    """The result of one sign-in step: the next stage and its session token, or a refusal."""

    stage: Stage | None = None
    token: str | None = None
    reviewer_id: int | None = None
    refusal: Refusal | None = None
    retry_at: dt.datetime | None = None
    method: str | None = None

    @property
    def ok(self) -> bool:
        return self.refusal is None


@dataclasses.dataclass(frozen=True)
class Enrolled:
    step: SignInStep
    recovery_codes: list[str]
    notice: StaffMail | None = None  # to the owner's address, sent once committed


# ---------------------------------------------------------------- password step

def sign_in_with_password(db: Session, email: str, password: str, *, ip: str | None,
                          now: dt.datetime) -> SignInStep:
    """Check an email and password; on success a PASSWORD_OK (or ENROLLING) session and its token.

    Refusals never tell whether the email exists. Raises nothing for bad input.

    Raises:
        KeysUnavailable: no VERIFY_SECRET_KEY to key the throttle with (possible only outside production).
    """
    email = normalize_email(email)[:320]
    secret = keyring_of(db).throttle_key()
    keys = [throttle.account_key(email, secret=secret), throttle.ip_key(ip, secret=secret)]
    reviewer = find_reviewer(db, email) if email else None
    lock = throttle.begin_attempt(db, keys, now=now)
    if lock is not None:
        _audit_failure(db, reviewer, "locked", "password", now)
        return SignInStep(refusal=Refusal.LOCKED, retry_at=lock.until)
    if reviewer is None or len(password) > MAX_PASSWORD_LENGTH:
        burn_password_check(password)
        return _refuse(db, reviewer, keys, "unknown_account" if reviewer is None else "wrong_password",
                       Refusal.INVALID_CREDENTIALS, "password", now)
    if not check_password(reviewer, password):
        return _refuse(db, reviewer, keys, "wrong_password", Refusal.INVALID_CREDENTIALS, "password", now)
    if not reviewer.active:
        return _refuse(db, reviewer, keys, "inactive", Refusal.INVALID_CREDENTIALS, "password", now)
    throttle.clear(db, keys[0])  # the IP count stays: one good account must not reset an IP's failures
    stage = Stage.PASSWORD_OK if reviewer.totp_confirmed_at is not None else Stage.ENROLLING
    if stage is Stage.ENROLLING:
        reviewer.totp_secret = None  # a half-done set-up from an earlier sign-in is discarded
    token = sessions.open_session(db, reviewer.id, stage=stage, ip=ip, now=now)
    return SignInStep(stage=stage, token=token, reviewer_id=reviewer.id, method="password")


def _refuse(db: Session, reviewer: Reviewer | None, keys: list[throttle.Key], reason: str,
            refusal: Refusal, method: str, now: dt.datetime) -> SignInStep:
    """Count a failure on every key, audit it (and any lockout it starts), and refuse."""
    _audit_failure(db, reviewer, reason, method, now)
    locks = [lock for lock in (throttle.note_failure(db, key, now=now) for key in keys) if lock]
    for lock in locks:
        known = reviewer is not None and lock.kind in (ThrottleKind.ACCOUNT, ThrottleKind.SECOND_FACTOR)
        record(db, actor=ANONYMOUS, action="staff.locked_out", now=now,
               subject_type="reviewer" if known else "sign_in_throttle",
               subject_id=str(reviewer.id) if known and reviewer is not None else None,
               details={"key": lock.kind.value, "failures": lock.failures,
                        "minutes": int((lock.until - now).total_seconds() // 60)})
    if locks:
        return SignInStep(refusal=Refusal.LOCKED, retry_at=max(lock.until for lock in locks))
    return SignInStep(refusal=refusal)


def _audit_failure(db: Session, reviewer: Reviewer | None, reason: str, method: str,
                   now: dt.datetime) -> None:
    record(db, actor=ANONYMOUS, action="staff.sign_in_failed", now=now,
           subject_type="reviewer" if reviewer is not None else None,
           subject_id=str(reviewer.id) if reviewer is not None else None,
           details={"reason": reason, "method": method})


# ---------------------------------------------------------------- second step

def verify_second_step(db: Session, staff_session: StaffSession, code: str, *,
                       now: dt.datetime) -> SignInStep:
    """Check a TOTP code (one step either side; each step's code works once) or a single-use recovery code.

    On success the PASSWORD_OK session is revoked and an ACTIVE one opened. Raises nothing for bad input.

    Raises:
        KeysUnavailable: no VERIFY_SECRET_KEY or VERIFY_DATA_KEYS (possible only outside production).
        Unreadable: no data key opens the stored TOTP secret (its key was removed too early).
    """
    reviewer = two_step.lock_reviewer(db, staff_session.reviewer_id)
    if (staff_session.stage is not Stage.PASSWORD_OK or staff_session.revoked_at is not None
            or reviewer is None or not reviewer.active or reviewer.totp_confirmed_at is None):
        return SignInStep(refusal=Refusal.STEP_EXPIRED)
    # Codes count on their own per-account key (which a right password never clears) and on the IP's.
    secret = keyring_of(db).throttle_key()
    keys = [throttle.second_factor_key(reviewer.id, secret=secret), throttle.ip_key(staff_session.ip, secret=secret)]
    lock = throttle.begin_attempt(db, keys, now=now)
    if lock is not None:
        _audit_failure(db, reviewer, "locked", "second_step", now)
        return SignInStep(refusal=Refusal.LOCKED, retry_at=lock.until)
    method = None
    if two_step.accept_totp(reviewer, code, now=now):
        method = "totp"
    elif two_step.use_recovery_code(db, reviewer, code, now=now):
        method = "recovery_code"
    if method is None:
        refused = _refuse(db, reviewer, keys, "wrong_code", Refusal.INVALID_CODE, "second_step", now)
        _alert_second_factor(db, reviewer, keys[0], now)
        return refused
    throttle.clear(db, keys[0])
    return _activate(db, staff_session, reviewer, method, now)


def _alert_second_factor(db: Session, reviewer: Reviewer, key: throttle.Key, now: dt.datetime) -> None:
    """Count every wrong code (a metric) and warn once they repeat: someone may hold this password."""
    SECOND_FACTOR_FAILURES.inc()
    failures = throttle.failures(db, key, now=now)
    if failures >= SECOND_FACTOR_ALERT_AFTER:
        log.warning("repeated second-factor failures for staff account %s: %d wrong codes in a row", reviewer.id,
                    failures, extra={"reviewer_id": reviewer.id, "failures": failures})


def _activate(db: Session, previous: StaffSession, reviewer: Reviewer, method: str,
              now: dt.datetime) -> SignInStep:
    previous.revoked_at = now
    token = sessions.open_session(db, reviewer.id, stage=Stage.ACTIVE, ip=previous.ip, now=now)
    record(db, actor=f"reviewer:{reviewer.id}", action="staff.sign_in", now=now, subject_type="reviewer",
           subject_id=str(reviewer.id), details={"method": method})
    return SignInStep(stage=Stage.ACTIVE, token=token, reviewer_id=reviewer.id, method=method)


# ---------------------------------------------------------------- enrolment

def enrol_and_sign_in(db: Session, staff_session: StaffSession, secret: str, code: str, *,
                      now: dt.datetime) -> Enrolled:
    """Confirm enrolment during an ENROLLING sign-in, then sign in (ACTIVE session) at once.

    Raises:
        AlreadyEnrolled, EnrolmentRestarted, WrongCode: see :func:`confirm_enrolment`.
        EnrolmentRestarted: also when ``staff_session`` is not a live ENROLLING session.
    """
    reviewer = db.get(Reviewer, staff_session.reviewer_id)
    if staff_session.stage is not Stage.ENROLLING or staff_session.revoked_at is not None or reviewer is None:
        raise EnrolmentRestarted("This sign-in is over; sign in again.")
    codes = confirm_enrolment(db, reviewer, secret, code, now=now)
    notice = staff_mail.notice(reviewer, staff_mail.Change.TWO_STEP_ENROLLED, by=staff_mail.YOU, now=now)
    return Enrolled(_activate(db, staff_session, reviewer, "totp_enrolment", now), codes, notice)


# ---------------------------------------------------------------- single sign-on, sign-out, purge

def sign_in_with_google(db: Session, claims: Mapping[str, Any] | None, *, allowed_domain: str,
                        ip: str | None, now: dt.datetime) -> SignInStep:
    """An ACTIVE session for the verified Workspace identity in ``claims`` (an ID token's, already validated).

    Only a verified email of ``allowed_domain`` (the ``hd`` claim) that belongs to an existing, active
    reviewer is accepted; nobody is created. Google Workspace enforces its own 2-step verification
    (an organisation policy), so no TOTP is asked here. ``claims`` is None when the provider exchange
    failed. Raises nothing.
    """
    claims = claims or {}
    email = claims.get("email")
    reviewer = find_reviewer(db, email) if isinstance(email, str) and email else None
    if not claims:
        reason = "provider_error"
    elif claims.get("email_verified") is not True:
        reason = "unverified_email"
    elif not allowed_domain or claims.get("hd") != allowed_domain:
        reason = "wrong_domain"
    elif reviewer is None:
        reason = "unknown_account"
    elif not reviewer.active:
        reason = "inactive"
    else:
        token = sessions.open_session(db, reviewer.id, stage=Stage.ACTIVE, ip=ip, now=now)
        record(db, actor=f"reviewer:{reviewer.id}", action="staff.sign_in", now=now,
               subject_type="reviewer", subject_id=str(reviewer.id), details={"method": "google"})
        return SignInStep(stage=Stage.ACTIVE, token=token, reviewer_id=reviewer.id, method="google")
    _audit_failure(db, reviewer if reason == "inactive" else None, reason, "google", now)
    return SignInStep(refusal=Refusal.NOT_ALLOWED)


def sign_out(db: Session, token: str | None, *, now: dt.datetime) -> None:
    """Revoke the session of ``token`` (if live) and audit it. Raises nothing."""
    found = sessions.current(db, token, now=now)
    sessions.revoke(db, token, now=now)
    if found is not None:
        record(db, actor=f"reviewer:{found.reviewer.id}", action="staff.signed_out", now=now,
               subject_type="reviewer", subject_id=str(found.reviewer.id),
               details={"stage": found.staff_session.stage.value})


def purge_expired(db: Session, *, now: dt.datetime) -> int:
    """Delete staff sessions over for a day and throttle counters quiet for a day."""
    return sessions.purge_expired(db, now=now) + throttle.purge(db, now=now)
