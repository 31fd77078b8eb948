"""Staff account services."""

from __future__ import annotations

import datetime as dt
import functools
import secrets

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Session

from verify_service.audit.services import record
from verify_service.errors import Conflict, InvalidInput
from verify_service.staff.models import HUMAN, Reviewer, Role

# argon2-cffi's defaults follow RFC 9106's second recommended profile (argon2id).
_hasher = PasswordHasher()
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024  # longer input is refused without hashing it
# Stored instead of a hash while an account has no password (an invitation or a reset is pending).
# It is never an argon2 hash ("$argon2id$…"), so no password can match it.
UNUSABLE_PREFIX = "!"


class ReviewerExists(Conflict):
    code = "reviewer_exists"
    title = "A staff account with that email already exists"


def normalize_email(email: str) -> str:
    return email.strip().lower()


def create_reviewer(db: Session, *, email: str, display_name: str, role: Role, password: str | None,
                    actor: str, now: dt.datetime) -> Reviewer:
    """Create a staff account; with ``password=None`` it has no usable password (it is invited to set one).

    Raises:
        InvalidInput: the password is too short or the email is empty.
        ReviewerExists: the email is taken.
    """
    email = normalize_email(email)
    if "@" not in email:
        raise InvalidInput.for_field("email", "must be an email address")
    if password is not None:
        check_new_password(password)
    if db.scalar(sa.select(Reviewer.id).where(Reviewer.email == email)) is not None:
        raise ReviewerExists(f"{email} already has a staff account")
    reviewer = Reviewer(email=email, display_name=display_name.strip() or email, role=role,
                        password_hash=unusable_password_hash() if password is None else _hasher.hash(password),
                        created_at=now)
    db.add(reviewer)
    db.flush()
    record(db, actor=actor, action="reviewer.created", subject_type="reviewer",
           subject_id=str(reviewer.id), details={"role": role.value}, now=now)
    return reviewer


def find_reviewer(db: Session, email: str) -> Reviewer | None:
    """The staff account with this email; never a built-in identity, so no sign-in or reset ever finds one."""
    return db.scalar(sa.select(Reviewer).where(Reviewer.email == normalize_email(email), HUMAN))


def check_password(reviewer: Reviewer, password: str) -> bool:
    """Constant-time verification of ``password`` against the stored argon2 hash (never true without one)."""
    if not has_usable_password(reviewer):
        burn_password_check(password)  # as slow as a real check: the timing must not tell a pending invitation apart
        return False
    try:
        return _hasher.verify(reviewer.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def check_new_password(password: str, *, field: str = "password") -> None:
    """Raises: InvalidInput — shorter than :data:`MIN_PASSWORD_LENGTH` or longer than :data:`MAX_PASSWORD_LENGTH`."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput.for_field(field, f"must be at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput.for_field(field, f"must be at most {MAX_PASSWORD_LENGTH} characters")


def set_password(reviewer: Reviewer, password: str) -> None:
    """Store the argon2 hash of a new ``password``. Raises: InvalidInput (see :func:`check_new_password`)."""
    check_new_password(password)
    reviewer.password_hash = _hasher.hash(password)


def clear_password(reviewer: Reviewer) -> None:
    """Make the password stop working at once (a reset): no password matches what is stored now."""
    reviewer.password_hash = unusable_password_hash()


def has_usable_password(reviewer: Reviewer) -> bool:
    return not reviewer.password_hash.startswith(UNUSABLE_PREFIX)


def unusable_password_hash() -> str:
    return UNUSABLE_PREFIX + secrets.token_urlsafe(24)  # random, so no two accounts store the same value


@functools.cache
def _dummy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(16))


def burn_password_check(password: str) -> None:
    """Spend an argon2 verification on a dummy hash, so a refusal (an unknown email, a pending invitation)
    takes as long as a real check: the timing must not tell them apart."""
    try:
        _hasher.verify(_dummy_hash(), password[:MAX_PASSWORD_LENGTH])
    except VerificationError:
        pass
