"""Closing an account (the account service's ``account.closed``): complete and final.

Closing, in one transaction with the account locked:

* cancels every call that is not over — booked, waiting, in progress, and a
  fail still waiting for its second review (``verification.session.canceled``
  by ``account_closed`` for each); their live Meet conferences are ended and
  their future calendar invites deleted by jobs (no outbound call here);
* closes the open verification request as ``canceled``;
* revokes the freelancer's signed-in pages and every unused launch link;
* erases the personal data retention allows us to erase.

What it changes in the restrictions document (the request) is published as
one change, one ``restrictions_version`` bump, carried by the cancel events.
Holds, audit entries and outbox events stay: they never contain personal
data, and they are the record of what the service did. Once closed, nothing
writes the account's personal data again: the profile and decision services
refuse a closed account, attendance is no longer read for it, and inbound
events for it are acknowledged and ignored.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from verify_service.accounts.domain import PROFILE_FIELDS, RequestStatus
from verify_service.accounts.models import Account
from verify_service.accounts.services import lock_account, publish_change
from verify_service.accounts.errors import AccountNotFound
from verify_service.accounts.restrictions import open_request
from verify_service.audit.services import record
from verify_service.calls import lifecycle
from verify_service.calls.models import CallParticipant, CallSession, OutcomeRecord
from verify_service.calls.state import OPEN, EndReason, SessionStatus
from verify_service.db import for_update
from verify_service.freelancer.models import FreelancerSession, LaunchLink
from verify_service.review.models import IdentityDocument

# Every call that is not over: the open ones and a fail waiting for its second review.
NOT_OVER = OPEN | {SessionStatus.AWAITING_SECOND_REVIEW}


@dataclasses.dataclass(frozen=True)
class Closure:
    """What closing did; ``closed`` is False when there was nothing to do."""

    closed: bool
    sessions_canceled: int = 0
    conferences_to_end: int = 0
    invites_to_delete: int = 0
    request_canceled: bool = False


def close_account(db: Session, account_id: str, *, actor: str, now: dt.datetime) -> Closure:
    """Close the account: cancel its calls and its open request, revoke its access, erase its personal data.

    Idempotent: an unknown or already-closed account is left alone and
    ``Closure(closed=False)`` is returned, so a redelivered ``account.closed``
    (or one for an account we never saw) is simply acknowledged.

    Raises nothing of its own.
    """
    try:
        # Lock order is always account first (then sessions, then the audit head).
        account = lock_account(db, account_id)
    except AccountNotFound:
        return Closure(closed=False)
    if account.closed_at is not None:
        return Closure(closed=False)
    calls = db.scalars(for_update(db, sa.select(CallSession).where(
        CallSession.account_id == account_id, CallSession.status.in_(NOT_OVER))
        .order_by(CallSession.created_at, CallSession.id))).all()
    events: list[tuple[str, dict[str, Any]]] = [
        lifecycle.cancel(db, account, call, by=EndReason.ACCOUNT_CLOSED, now=now, announce=False)
        for call in calls]
    request = open_request(db, account_id)
    if request is not None:
        request.status, request.closed_at = RequestStatus.CANCELED, now
    revoked = revoke_access(db, account_id, now=now)
    erase_personal_data(db, account_id)
    account.closed_at = now
    account.updated_at = now
    db.flush()
    if events or request is not None:
        publish_change(db, account, events, now=now)
    closure = Closure(closed=True, sessions_canceled=len(calls),
                      conferences_to_end=sum(1 for c in calls if c.conference_end_requested_at is not None),
                      invites_to_delete=sum(1 for c in calls if c.invite_pending == lifecycle.INVITE_CANCEL),
                      request_canceled=request is not None)
    record(db, actor=actor, action="account.closed", account_id=account_id, subject_type="account",
           subject_id=account_id, details={"sessions_canceled": closure.sessions_canceled,
                                           "conferences_to_end": closure.conferences_to_end,
                                           "invites_to_delete": closure.invites_to_delete,
                                           "request_canceled": closure.request_canceled,
                                           "freelancer_sessions_revoked": revoked}, now=now)
    return closure


def revoke_access(db: Session, account_id: str, *, now: dt.datetime) -> int:
    """End the account's signed-in freelancer pages and spend its unused launch links; returns pages ended."""
    db.execute(sa.update(LaunchLink).where(LaunchLink.account_id == account_id, LaunchLink.used_at.is_(None),
                                                LaunchLink.expires_at > now)
                    .values(expires_at=now).execution_options(synchronize_session=False))
    return db.execute(sa.update(FreelancerSession).where(
        FreelancerSession.account_id == account_id, FreelancerSession.revoked_at.is_(None))
        .values(revoked_at=now).execution_options(synchronize_session=False)).rowcount or 0


def erase_personal_data(db: Session, account_id: str) -> None:
    """Erase every piece of the account's personal data that retention allows us to erase.

    This is the one place that knows where personal data lives: every new
    column holding it must be erased here too. The ID evidence a reviewer
    recorded goes entirely, fingerprint included: a closed account is not
    "another account" a new registration should be matched against.
    """
    account = db.get(Account, account_id)
    if account is not None:
        for name in PROFILE_FIELDS:
            setattr(account, name, None)
    db.execute(sa.update(OutcomeRecord).where(OutcomeRecord.account_id == account_id).values(notes=None))
    db.execute(sa.delete(IdentityDocument).where(IdentityDocument.account_id == account_id))
    # Display names seen in the account's Meet conferences.
    db.execute(sa.update(CallParticipant).where(CallParticipant.call_session_id.in_(
        sa.select(CallSession.id).where(CallSession.account_id == account_id))).values(display_name=None))
    db.flush()
