"""Launch links and freelancer sessions.

The account service asks for a launch link for a signed-in freelancer and
redirects them to it. The link's token is random, stored only as a SHA-256
hash, expires after 10 minutes and works once: it is consumed by a
conditional UPDATE, so two tabs racing on one link open one session. The
session that follows is server-side (the cookie holds a random token, the
database its hash): idle for 30 minutes or older than 8 hours, it is over.
Closing the account revokes both (``accounts/closure.py``); a revoked link or
page of a closed account then says so (:class:`AccountClosed`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import secrets

import sqlalchemy as sa
from sqlalchemy.orm import Session

from verify_service.accounts.domain import ensure_open
from verify_service.accounts.models import Account
from verify_service.accounts.services import lock_account
from verify_service.accounts.errors import AccountClosed
from verify_service.audit.services import record
from verify_service.freelancer.models import FreelancerSession, LaunchLink

LINK_LIFETIME = dt.timedelta(minutes=10)
IDLE_TIMEOUT = dt.timedelta(minutes=30)
ABSOLUTE_TIMEOUT = dt.timedelta(hours=8)
# Only refresh last_seen_at this often: a busy page does not write on every request.
TOUCH_EVERY = dt.timedelta(minutes=1)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclasses.dataclass(frozen=True)
class IssuedLink:
    token: str
    expires_at: dt.datetime


def issue_launch_link(db: Session, account_id: str, *, actor: str, now: dt.datetime,
                      return_url: str | None = None) -> IssuedLink:
    """A link for ``account_id``; ``return_url`` (checked by the caller: ``return_url.check_return_url``) is
    the way back its pages show.

    Raises: AccountNotFound, AccountClosed.
    """
    account = lock_account(db, account_id)
    ensure_open(account)
    token = secrets.token_urlsafe(32)
    link = LaunchLink(token_hash=_hash(token), account_id=account_id, created_at=now, expires_at=now + LINK_LIFETIME,
                      return_url=return_url)
    db.add(link)
    db.flush()
    record(db, actor=actor, action="launch_link.issued", account_id=account_id, subject_type="launch_link",
           subject_id=str(link.id), details={}, now=now)
    return IssuedLink(token, link.expires_at)


@dataclasses.dataclass(frozen=True)
class OpenedSession:
    token: str
    account_id: str
    expires_at: dt.datetime


def _closed(db: Session, account_id: str | None) -> bool:
    return account_id is not None and db.scalar(
        sa.select(Account.closed_at).where(Account.id == account_id)) is not None


def open_session(db: Session, token: str, *, now: dt.datetime) -> OpenedSession | None:
    """Use a launch link once and open a freelancer session; None when it is unknown, used or expired.

    Raises: AccountClosed (the link belongs to an account closed since: closure revoked it).
    """
    if not token or len(token) > 200:
        return None
    consumed = db.execute(
        sa.update(LaunchLink)
        .where(LaunchLink.token_hash == _hash(token), LaunchLink.used_at.is_(None), LaunchLink.expires_at > now)
        .values(used_at=now)
        .returning(LaunchLink.id, LaunchLink.account_id, LaunchLink.return_url)
    ).first()
    if consumed is None:
        if _closed(db, db.scalar(sa.select(LaunchLink.account_id)
                                           .where(LaunchLink.token_hash == _hash(token)))):
            raise AccountClosed("the account this link was for is closed")
        return None
    link_id, account_id, return_url = consumed
    session_token = secrets.token_urlsafe(32)
    opened = FreelancerSession(token_hash=_hash(session_token), account_id=account_id, created_at=now,
                               last_seen_at=now, expires_at=now + ABSOLUTE_TIMEOUT, return_url=return_url)
    db.add(opened)
    db.flush()
    record(db, actor="freelancer", action="freelancer_session.opened", account_id=account_id,
           subject_type="launch_link", subject_id=str(link_id), details={}, now=now)
    return OpenedSession(session_token, account_id, opened.expires_at)


def current_session(db: Session, token: str | None, *, now: dt.datetime) -> FreelancerSession | None:
    """The live freelancer session of ``token``, or None. A read: its idle clock is refreshed by :func:`touch`.

    Raises: AccountClosed (the session was revoked when its account closed).
    """
    if not token or len(token) > 200:
        return None
    row = db.scalar(sa.select(FreelancerSession).where(FreelancerSession.token_hash == _hash(token)))
    if row is not None and row.revoked_at is not None and _closed(db, row.account_id):
        raise AccountClosed("your account is closed")
    if row is None or row.revoked_at is not None or now >= row.expires_at or now - row.last_seen_at >= IDLE_TIMEOUT:
        return None
    return row


def return_url_of(db: Session, token: str | None, *, link: bool = False) -> str | None:
    """The way back kept on the session (or, with ``link``, the launch link) of ``token``, whatever its state:
    the pages that refuse it (a closed account, a used link) still show it."""
    if not token or len(token) > 200:
        return None
    model = LaunchLink if link else FreelancerSession
    return db.scalar(sa.select(model.return_url).where(model.token_hash == _hash(token)))


def touch_due(row: FreelancerSession, now: dt.datetime) -> bool:
    """Whether the idle clock of ``row`` is due a refresh (at most every :data:`TOUCH_EVERY`)."""
    return now - row.last_seen_at >= TOUCH_EVERY


def touch(db: Session, session_id: int, *, now: dt.datetime) -> None:
    """Refresh the idle clock of a freelancer session (one UPDATE; a later refresh is never moved back)."""
    db.execute(sa.update(FreelancerSession)
                    .where(FreelancerSession.id == session_id, FreelancerSession.last_seen_at < now)
                    .values(last_seen_at=now).execution_options(synchronize_session=False))


def purge_expired(db: Session, *, now: dt.datetime) -> int:
    """Delete launch links and sessions that can no longer be used (kept a day for support questions)."""
    cutoff = now - dt.timedelta(days=1)
    links = db.execute(sa.delete(LaunchLink).where(LaunchLink.expires_at < cutoff)).rowcount or 0
    sessions = db.execute(sa.delete(FreelancerSession).where(
        sa.or_(FreelancerSession.expires_at < cutoff, FreelancerSession.last_seen_at < cutoff - IDLE_TIMEOUT))
    ).rowcount or 0
    return links + sessions
