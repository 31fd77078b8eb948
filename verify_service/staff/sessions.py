"""Server-side staff sessions: opening (a fresh token at every sign-in step), reading, revoking."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import secrets

import sqlalchemy as sa
from sqlalchemy.orm import Session

from verify_service.staff.models import Reviewer, StaffSession, Stage

IDLE_TIMEOUT = dt.timedelta(minutes=15)
ABSOLUTE_TIMEOUT = dt.timedelta(hours=10)
# A half-done sign-in (password right, second step pending) lasts this long.
STEP_TIMEOUT = dt.timedelta(minutes=10)
TOUCH_EVERY = dt.timedelta(seconds=30)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def open_session(db: Session, reviewer_id: int, *, stage: Stage, ip: str | None, now: dt.datetime) -> str:
    """A new session (a new token: never reuse the one from before sign-in); returns the token for the cookie."""
    token = secrets.token_urlsafe(32)
    lifetime = ABSOLUTE_TIMEOUT if stage is Stage.ACTIVE else STEP_TIMEOUT
    db.add(StaffSession(token_hash=token_hash(token), reviewer_id=reviewer_id, stage=stage, created_at=now,
                             last_seen_at=now, expires_at=now + lifetime, ip=(ip or "")[:64] or None))
    db.flush()
    return token


@dataclasses.dataclass(frozen=True)
class Current:
    staff_session: StaffSession
    reviewer: Reviewer


def current(db: Session, token: str | None, *, now: dt.datetime, touch: bool = True) -> Current | None:
    """The live session of ``token`` and its (active) reviewer, else None.

    ``touch`` refreshes the idle clock: pages do, background polling does not (an open tab that only
    refreshes itself is not someone at the desk).
    """
    if not token or len(token) > 200:
        return None
    row = db.scalar(sa.select(StaffSession).where(StaffSession.token_hash == token_hash(token)))
    if row is None or row.revoked_at is not None or now >= row.expires_at or now - row.last_seen_at >= IDLE_TIMEOUT:
        return None
    reviewer = db.get(Reviewer, row.reviewer_id)
    if reviewer is None or not reviewer.active:
        return None
    if touch and now - row.last_seen_at >= TOUCH_EVERY:
        row.last_seen_at = now
        db.flush()
    return Current(row, reviewer)


def touch_due(row: StaffSession, now: dt.datetime) -> bool:
    """Whether the idle clock of ``row`` is due a refresh (at most every :data:`TOUCH_EVERY`)."""
    return now - row.last_seen_at >= TOUCH_EVERY


def touch(db: Session, session_id: int, *, now: dt.datetime) -> None:
    """Refresh the idle clock of a session (one UPDATE; a later refresh is never moved back)."""
    db.execute(sa.update(StaffSession).where(StaffSession.id == session_id, StaffSession.last_seen_at < now)
                    .values(last_seen_at=now).execution_options(synchronize_session=False))


def revoke(db: Session, token: str | None, *, now: dt.datetime) -> None:
    if token:
        db.execute(sa.update(StaffSession).where(StaffSession.token_hash == token_hash(token),
                                                      StaffSession.revoked_at.is_(None)).values(revoked_at=now))


def revoke_all(db: Session, reviewer_id: int, *, now: dt.datetime) -> int:
    """End every session of a reviewer at once (disabling, password or two-step reset)."""
    result = db.execute(sa.update(StaffSession).where(StaffSession.reviewer_id == reviewer_id,
                                                           StaffSession.revoked_at.is_(None)).values(revoked_at=now))
    return result.rowcount or 0


def purge_expired(db: Session, *, now: dt.datetime) -> int:
    """Delete sessions over for a day or more."""
    cutoff = now - dt.timedelta(days=1)
    return db.execute(sa.delete(StaffSession).where(sa.or_(
        StaffSession.expires_at < cutoff, StaffSession.revoked_at < cutoff,
        StaffSession.last_seen_at < cutoff - IDLE_TIMEOUT))).rowcount or 0
