"""Two-step verification of staff: TOTP (set up with a QR code) and single-use recovery codes.

The server must compute codes from a TOTP secret, so it cannot keep only a hash: the secret is stored
sealed (``crypto.Sealer``, under ``VERIFY_DATA_KEYS``), so a copy of the database alone gives nobody a
second factor. The sealer comes from the keyring the app attaches to its sessions (``crypto.keyring_of``).
A secret stored in clear before secrets were sealed is still accepted, and sealed the first time it is read
(``verify-service keys rotate`` seals all that are left at once). Recovery codes are stored as SHA-256
hashes only (they carry about 60 random bits, so no slow hash is needed).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets

import pyotp
import sqlalchemy as sa
from sqlalchemy.orm import Session, object_session

from verify_service.audit.services import record
from verify_service.crypto import keyring_of, looks_sealed
from verify_service.db import for_update
from verify_service.errors import Conflict, InvalidInput
from verify_service.staff.errors import ReviewerNotFound
from verify_service.staff.models import RecoveryCode, Reviewer
from verify_service.staff import sessions

RECOVERY_CODES = 10
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: codes get typed from paper
RECOVERY_LENGTH = 12
ISSUER = "verify-service"


class AlreadyEnrolled(Conflict):
    code = "two_step_already_enrolled"
    title = "Two-step verification is already set up"


class WrongCode(InvalidInput):
    code = "wrong_code"
    title = "That code is not right"


class EnrolmentRestarted(Conflict):
    code = "enrolment_restarted"
    title = "Two-step set-up started again elsewhere"


def lock_reviewer(db: Session, reviewer_id: int) -> Reviewer | None:
    """The reviewer row, locked (PostgreSQL) so two requests cannot both accept one TOTP code."""
    stmt = for_update(db, sa.select(Reviewer).where(Reviewer.id == reviewer_id))
    return db.execute(stmt.execution_options(populate_existing=True)).scalar_one_or_none()


def matching_step(secret: str, code: str, *, now: dt.datetime, after: int | None) -> int | None:
    """The time step (now ± 1, later than ``after``) whose code is ``code``; None if none matches."""
    code = re.sub(r"\s", "", code)
    if not re.fullmatch(r"[0-9]{6}", code):  # ASCII digits only (\d also matches other scripts)
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for step in (current - 1, current, current + 1):  # valid_window=1: clocks drift, people type slowly
        if after is not None and step <= after:
            continue  # replay protection (RFC 6238 §5.2): a step's code is accepted once, never an older one
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def _read_secret(db: Session | None, reviewer: Reviewer) -> str | None:
    """The reviewer's TOTP secret in clear (None when there is none); a legacy clear one is sealed now.

    Raises:
        KeysUnavailable: no data key is configured, or ``session`` carries no keyring.
        Unreadable: no configured data key opens the stored secret.
    """
    stored = reviewer.totp_secret
    if not stored:
        return None
    sealer = keyring_of(db).sealer
    if looks_sealed(stored):
        return sealer.open_(stored)
    # Stored before secrets were sealed: seal it in the caller's transaction, so the clear copy goes at once.
    reviewer.totp_secret = sealer.seal(stored)
    return stored


def _store_secret(db: Session, reviewer: Reviewer, secret: str) -> None:
    """Keep ``secret`` sealed. Raises: KeysUnavailable (never stored in clear instead)."""
    reviewer.totp_secret = keyring_of(db).sealer.seal(secret)


def accept_totp(reviewer: Reviewer, code: str, *, now: dt.datetime) -> bool:
    """Whether ``code`` is the reviewer's current TOTP code (and not one already used); records its step.

    Raises:
        KeysUnavailable: no data key is configured, or ``reviewer`` belongs to no session of the app.
        Unreadable: no configured data key opens the stored secret.
    """
    secret = _read_secret(object_session(reviewer), reviewer)
    if secret is None:
        return False
    step = matching_step(secret, code, now=now, after=reviewer.totp_last_step)
    if step is None:
        return False
    reviewer.totp_last_step = step
    return True


def _normalize_recovery_code(code: str) -> str:
    return re.sub(r"[\s-]", "", code).lower()


def _recovery_hash(code: str) -> str:
    return hashlib.sha256(_normalize_recovery_code(code).encode("utf-8")).hexdigest()


def use_recovery_code(db: Session, reviewer: Reviewer, code: str, *, now: dt.datetime) -> bool:
    normalized = _normalize_recovery_code(code)
    if len(normalized) != RECOVERY_LENGTH or set(normalized) - set(RECOVERY_ALPHABET):
        return False
    # One UPDATE ... WHERE used_at IS NULL: of two concurrent uses, only one changes the row.
    used = db.execute(sa.update(RecoveryCode).where(
        RecoveryCode.reviewer_id == reviewer.id, RecoveryCode.code_hash == _recovery_hash(normalized),
        RecoveryCode.used_at.is_(None)).values(used_at=now)).rowcount
    if not used:
        return False
    record(db, actor=f"reviewer:{reviewer.id}", action="staff.recovery_code_used", now=now,
           subject_type="reviewer", subject_id=str(reviewer.id),
           details={"remaining": remaining_recovery_codes(db, reviewer.id)})
    return True


def remaining_recovery_codes(db: Session, reviewer_id: int) -> int:
    return db.scalar(sa.select(sa.func.count()).select_from(RecoveryCode).where(
        RecoveryCode.reviewer_id == reviewer_id, RecoveryCode.used_at.is_(None))) or 0


# ---------------------------------------------------------------- enrolment

def start_enrolment(db: Session, reviewer: Reviewer, *, now: dt.datetime) -> str:
    """The TOTP secret being set up (a new one unless this sign-in already made one).

    Raises:
        AlreadyEnrolled: two-step verification is already confirmed (a lead must reset it first).
        KeysUnavailable: no data key is configured (the secret is never stored in clear instead).
        Unreadable: no configured data key opens the secret of a set-up already under way.
    """
    if reviewer.totp_confirmed_at is not None:
        raise AlreadyEnrolled("Two-step verification is already set up for this account.")
    secret = _read_secret(db, reviewer)
    if secret is None:
        secret = pyotp.random_base32()  # 32 base32 characters: 160 bits (RFC 4226)
        _store_secret(db, reviewer, secret)
    db.flush()
    return secret


def provisioning_uri(reviewer: Reviewer, secret: str) -> str:
    """The otpauth:// URI the authenticator app reads from the QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=reviewer.email, issuer_name=ISSUER)


def confirm_enrolment(db: Session, reviewer: Reviewer, secret: str, code: str, *,
                      now: dt.datetime) -> list[str]:
    """Confirm the secret being set up with a code from the app; returns 10 recovery codes (shown once).

    Raises:
        AlreadyEnrolled: two-step verification is already confirmed.
        EnrolmentRestarted: ``secret`` is no longer the one being set up (set-up restarted meanwhile).
        WrongCode: ``code`` is not the app's current code for ``secret``.
        KeysUnavailable, Unreadable: the pending secret cannot be opened (see :func:`start_enrolment`).
    """
    reviewer = lock_reviewer(db, reviewer.id) or reviewer
    if reviewer.totp_confirmed_at is not None:
        raise AlreadyEnrolled("Two-step verification is already set up for this account.")
    pending = _read_secret(db, reviewer) or ""
    if not pending or not hmac.compare_digest(pending.encode(), re.sub(r"\s", "", secret).upper().encode()):
        raise EnrolmentRestarted("Set-up was started again; scan the new QR code and enter its code.")
    step = matching_step(pending, code, now=now, after=None)
    if step is None:
        raise WrongCode.for_field("code", "enter the 6-digit code your app shows now")
    reviewer.totp_last_step = step
    reviewer.totp_confirmed_at = now
    codes = new_recovery_codes(db, reviewer.id, now=now)
    record(db, actor=f"reviewer:{reviewer.id}", action="staff.two_step_enrolled", now=now,
           subject_type="reviewer", subject_id=str(reviewer.id), details={"recovery_codes": len(codes)})
    return codes


def new_recovery_codes(db: Session, reviewer_id: int, *, now: dt.datetime) -> list[str]:
    db.execute(sa.delete(RecoveryCode).where(RecoveryCode.reviewer_id == reviewer_id))
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_LENGTH))
        codes.append("-".join(raw[i:i + 4] for i in range(0, RECOVERY_LENGTH, 4)))
        db.add(RecoveryCode(reviewer_id=reviewer_id, code_hash=_recovery_hash(raw), created_at=now))
    db.flush()
    return codes


def reset_two_step(db: Session, reviewer_id: int, *, actor: str, now: dt.datetime) -> None:
    """Clear a reviewer's TOTP and recovery codes and end all their sessions (they enrol again at sign-in).

    Raises:
        ReviewerNotFound: no reviewer has this id.
    """
    reviewer = lock_reviewer(db, reviewer_id)
    if reviewer is None:
        raise ReviewerNotFound(f"No staff account with id {reviewer_id}.")
    reviewer.totp_secret = None
    reviewer.totp_confirmed_at = None
    reviewer.totp_last_step = None
    db.execute(sa.delete(RecoveryCode).where(RecoveryCode.reviewer_id == reviewer_id))
    revoked = sessions.revoke_all(db, reviewer_id, now=now)
    record(db, actor=actor, action="staff.two_step_reset", now=now, subject_type="reviewer",
           subject_id=str(reviewer_id), details={"sessions_revoked": revoked})
