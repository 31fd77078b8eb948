"""Sign-in throttling per account and per client IP, with lockouts that grow.

Passwords and second factors are counted apart: a wrong TOTP or recovery
code counts on the account's *second-factor* key, which only a right code
clears. (Sharing the password's counter let anyone who knew a password guess
codes for ever: each right password cleared the count.)

The counters live in the database (``staff_sign_in_throttles``), so every web
process sees the same count. A key that reaches its limit of failures within
the window is locked for :data:`FIRST_LOCK`, doubling with each further
failure up to :data:`MAX_LOCK`. A locked key refuses every attempt, a correct
password included; attempts refused while locked do not count (they would
let anyone extend a colleague's lock for ever). The count is forgotten after
:data:`WINDOW` without failures (counted from the end of the last lock).

A counter's key is an HMAC-SHA256 of what it counts (the email, the address, the
reviewer id) under a key derived from ``VERIFY_SECRET_KEY``
(``crypto.Keyring.throttle_key``). A plain hash would let anyone holding the
table recover every failed sign-in's email and IP by hashing guesses: emails
and IPv4 addresses are few enough to try them all.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac

import sqlalchemy as sa
from sqlalchemy.orm import Session

from verify_service.db import for_update, upsert_insert
from verify_service.staff.passwords import normalize_email
from verify_service.staff.models import SignInThrottle, ThrottleKind

WINDOW = dt.timedelta(minutes=15)
FIRST_LOCK = dt.timedelta(minutes=1)
MAX_LOCK = dt.timedelta(hours=1)
LIMITS = {ThrottleKind.ACCOUNT: 5, ThrottleKind.IP: 50, ThrottleKind.SECOND_FACTOR: 5}
# Rows quiet for this long are deleted by the purge job.
KEEP = dt.timedelta(days=1)


@dataclasses.dataclass(frozen=True)
class Key:
    kind: ThrottleKind
    hash: str


@dataclasses.dataclass(frozen=True)
class Lock:
    kind: ThrottleKind
    until: dt.datetime
    failures: int


def account_key(email: str, *, secret: bytes) -> Key:
    """The key counting failed passwords for ``email``; ``secret`` is the keyring's throttle key."""
    return Key(ThrottleKind.ACCOUNT, _digest(f"account:{normalize_email(email)}", secret))


def second_factor_key(reviewer_id: int, *, secret: bytes) -> Key:
    """The key counting wrong two-step codes of a staff account; ``secret`` is the keyring's throttle key."""
    return Key(ThrottleKind.SECOND_FACTOR, _digest(f"second_factor:{reviewer_id}", secret))


def ip_key(ip: str | None, *, secret: bytes) -> Key:
    """The key counting failures from a client address; ``secret`` is the keyring's throttle key."""
    return Key(ThrottleKind.IP, _digest(f"ip:{(ip or 'unknown').strip().lower()}", secret))


def _digest(value: str, secret: bytes) -> str:
    return hmac.new(secret, value.encode("utf-8"), hashlib.sha256).hexdigest()


def active_lock(db: Session, keys: list[Key], *, now: dt.datetime) -> Lock | None:
    """The lock (the longest one) that holds any of ``keys`` at ``now``, or None."""
    rows = db.scalars(sa.select(SignInThrottle).where(
        SignInThrottle.key_hash.in_([key.hash for key in keys]), SignInThrottle.locked_until > now)).all()
    if not rows:
        return None
    row = max(rows, key=lambda r: r.locked_until or now)
    return Lock(row.kind, row.locked_until or now, row.failures)


def begin_attempt(db: Session, keys: list[Key], *, now: dt.datetime) -> Lock | None:
    """Start a sign-in attempt on ``keys`` (the account's key first); returns the lock that refuses it, if any.

    The account's counter row is locked until the transaction ends (PostgreSQL: FOR UPDATE, the row
    created if missing), so attempts on one account are checked one after another: each sees the
    failures of those before it. Without this, a burst of parallel guesses would all pass the lock
    check before any failure was counted, and get as many password checks as the burst is wide.
    """
    _locked_row(db, keys[0], now=now)
    return active_lock(db, keys, now=now)


def note_failure(db: Session, key: Key, *, now: dt.datetime) -> Lock | None:
    """Count one failure against ``key``; returns the lock when this failure starts one, else None."""
    row = _locked_row(db, key, now=now)
    quiet_since = max(row.last_failure_at, row.locked_until or row.last_failure_at)
    if now - quiet_since >= WINDOW:
        row.failures = 0
        row.locked_until = None
    row.failures += 1
    row.last_failure_at = now
    duration = lock_duration(row.failures, LIMITS[key.kind])
    lock = None
    if duration is not None:
        row.locked_until = now + duration
        lock = Lock(key.kind, row.locked_until, row.failures)
    db.flush()
    return lock


def failures(db: Session, key: Key, *, now: dt.datetime) -> int:
    """The failures ``key`` has counted since it was last quiet for :data:`WINDOW` (0 when it has none)."""
    row = db.scalar(sa.select(SignInThrottle).where(SignInThrottle.key_hash == key.hash))
    if row is None or now - max(row.last_failure_at, row.locked_until or row.last_failure_at) >= WINDOW:
        return 0
    return row.failures


def lock_duration(failures: int, limit: int) -> dt.timedelta | None:
    """How long ``failures`` recent failures lock a key: none below ``limit``, then 1, 2, 4 ... minutes, at most 1 h."""
    over = failures - limit
    if over < 0:
        return None
    return min(FIRST_LOCK * (2 ** min(over, 16)), MAX_LOCK)  # the exponent is capped: a long attack never overflows


def clear(db: Session, key: Key) -> None:
    """Forget the failures of ``key`` (after a successful sign-in)."""
    db.execute(sa.delete(SignInThrottle).where(SignInThrottle.key_hash == key.hash))


def purge(db: Session, *, now: dt.datetime) -> int:
    """Delete counters with no failure and no lock for a day."""
    cutoff = now - KEEP
    return db.execute(sa.delete(SignInThrottle).where(
        SignInThrottle.last_failure_at < cutoff,
        sa.or_(SignInThrottle.locked_until.is_(None), SignInThrottle.locked_until < cutoff))).rowcount or 0


def _locked_row(db: Session, key: Key, *, now: dt.datetime) -> SignInThrottle:
    """The counter row of ``key``, created if missing, locked for this transaction (PostgreSQL: FOR UPDATE).

    ON CONFLICT DO NOTHING lets two processes create the same key at once without an error; the
    second then waits on the row lock, so no failure is lost.
    """
    db.execute(upsert_insert(db, SignInThrottle).values(key_hash=key.hash, kind=key.kind, failures=0,
                                                  last_failure_at=now).on_conflict_do_nothing(
        index_elements=["key_hash"]))
    stmt = for_update(db, sa.select(SignInThrottle).where(SignInThrottle.key_hash == key.hash))
    return db.execute(stmt.execution_options(populate_existing=True)).scalar_one()
