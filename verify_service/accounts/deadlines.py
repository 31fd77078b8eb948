"""Verification deadlines: the ``verification_pending`` hold once a deadline passes.

A request whose deadline passed while it is still open (no pass yet) gets
the account a ``verification_pending`` hold, with the usual version bump,
audit entry and ``account.hold.placed`` event. Once per request: the hold
placed at or after the deadline is the marker, so a lead who lifts it is not
overruled by the next run. A hold placed when the request was made (``place_hold``)
and still active makes the deadline a no-op; one lifted before the deadline
does not (the deadline still applies).
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session

from verify_service.accounts.domain import HoldKind, RequestStatus
from verify_service.accounts.models import Account, Hold, VerificationRequest
from verify_service.accounts.services import (
    add_automatic_hold,
    hold_dict,
    publish_change,
)

DEADLINE_ACTOR = "system:deadlines"
DEADLINE_REASON = "Verification deadline passed"


def _overdue(now: dt.datetime) -> sa.ColumnElement[bool]:
    """The condition of a request whose deadline needs its hold (checked again under the lock)."""
    active_pending = sa.exists().where(Hold.account_id == VerificationRequest.account_id,
                                       Hold.kind == HoldKind.VERIFICATION_PENDING, Hold.lifted_at.is_(None))
    placed_for_deadline = sa.exists().where(Hold.verification_request_id == VerificationRequest.id,
                                            Hold.kind == HoldKind.VERIFICATION_PENDING,
                                            Hold.placed_at >= VerificationRequest.deadline)
    return sa.and_(VerificationRequest.status == RequestStatus.OPEN, VerificationRequest.deadline.is_not(None),
                   VerificationRequest.deadline <= now, Account.closed_at.is_(None),
                   ~active_pending, ~placed_for_deadline)


def _claim(db: Session, request_id: str, now: dt.datetime) -> VerificationRequest | None:
    """Lock the request's account (skipping it when another scheduler holds it) and re-check.

    On PostgreSQL the account row is taken with ``FOR UPDATE SKIP LOCKED``:
    a row someone else holds is left for the next run. SQLite serialises
    writers (BEGIN IMMEDIATE), so the re-check alone suffices there.
    """
    account_id = db.scalar(sa.select(VerificationRequest.account_id)
                                .where(VerificationRequest.id == request_id))
    lock = sa.select(Account).where(Account.id == account_id)
    if db.get_bind().dialect.name == "postgresql":
        lock = lock.with_for_update(skip_locked=True)
    if db.execute(lock.execution_options(populate_existing=True)).scalar_one_or_none() is None:
        return None
    return db.execute(
        sa.select(VerificationRequest).join(Account, Account.id == VerificationRequest.account_id)
        .where(VerificationRequest.id == request_id, _overdue(now))
        .execution_options(populate_existing=True)).scalar_one_or_none()


def enforce_deadlines(db: Session, *, now: dt.datetime, limit: int = 200) -> list[str]:
    """Place the ``verification_pending`` hold for open requests past their deadline; returns the hold ids.

    Skips closed accounts, accounts with an active pending hold, and requests
    whose deadline hold was placed already (even if a lead lifted it since).
    The caller's unit of work commits.

    Raises nothing of its own; database errors propagate (the caller rolls back).
    """
    due = db.scalars(
        sa.select(VerificationRequest.id).join(Account, Account.id == VerificationRequest.account_id)
        .where(_overdue(now)).order_by(VerificationRequest.deadline, VerificationRequest.id).limit(limit)).all()
    placed: list[str] = []
    for request_id in due:
        request = _claim(db, request_id, now)
        if request is None:
            continue
        account = db.get_one(Account, request.account_id)
        hold = add_automatic_hold(db, account, kind=HoldKind.VERIFICATION_PENDING, reason=DEADLINE_REASON,
                                  actor=DEADLINE_ACTOR, now=now, verification_request_id=request.id)
        if hold is None:  # cannot happen after the re-check; kept for safety
            continue
        publish_change(db, account, [("account.hold.placed", {"hold": hold_dict(hold)})], now=now)
        placed.append(hold.id)
    return placed
