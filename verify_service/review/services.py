"""Staff account services."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Session

from verify_service.audit.services import record
from verify_service.errors import Conflict, InvalidInput
from verify_service.review.models import Reviewer, Role

# argon2-cffi's defaults follow RFC 9106's second recommended profile (argon2id).
_hasher = PasswordHasher()
MIN_PASSWORD_LENGTH = 12


class ReviewerExists(Conflict):
    code = "reviewer_exists"
    title = "A staff account with that email already exists"


def normalize_email(email: str) -> str:
    return email.strip().lower()


def create_reviewer(session: Session, *, email: str, display_name: str, role: Role, password: str,
                    actor: str, now: dt.datetime) -> Reviewer:
    """Create a staff account.

    Raises:
        InvalidInput: the password is too short or the email is empty.
        ReviewerExists: the email is taken.
    """
    email = normalize_email(email)
    if "@" not in email:
        raise InvalidInput.for_field("email", "must be an email address")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput.for_field("password", f"must be at least {MIN_PASSWORD_LENGTH} characters")
    if session.scalar(sa.select(Reviewer.id).where(Reviewer.email == email)) is not None:
        raise ReviewerExists(f"{email} already has a staff account")
    reviewer = Reviewer(email=email, display_name=display_name.strip() or email, role=role,
                        password_hash=_hasher.hash(password), created_at=now)
    session.add(reviewer)
    session.flush()
    record(session, actor=actor, action="reviewer.created", subject_type="reviewer",
           subject_id=str(reviewer.id), details={"role": role.value}, now=now)
    return reviewer


def find_reviewer(session: Session, email: str) -> Reviewer | None:
    return session.scalar(sa.select(Reviewer).where(Reviewer.email == normalize_email(email)))


def check_password(reviewer: Reviewer, password: str) -> bool:
    """Constant-time verification of ``password`` against the stored argon2 hash."""
    try:
        return _hasher.verify(reviewer.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
