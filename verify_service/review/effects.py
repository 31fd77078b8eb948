"""What a final decision does to the account: close the request, lift or place holds, publish.

Used by :mod:`verify_service.review.decisions`; the caller holds the account's
row lock (then the session's) and has already recorded the outcome.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from verify_service.accounts.domain import HoldKind, RequestStatus, VerificationStatus
from verify_service.accounts.models import Account, Hold
from verify_service.accounts.services import (
    active_holds,
    add_automatic_hold,
    hold_dict,
    open_request,
    publish_change,
)
from verify_service.audit.services import record
from verify_service.calls.lifecycle import session_document
from verify_service.calls.models import CallSession

PASS_LIFT_REASON = "Identity verified on a video call"
FAIL_HOLD_REASON = "Identity verification failed on a video call"
FAIL_LIFT_REASON = "Replaced by the verification_failed hold"
# A pass lifts these; a manual hold stays until a lead lifts it.
LIFTED_ON_PASS = (HoldKind.VERIFICATION_PENDING, HoldKind.VERIFICATION_FAILED)


def session_data(call: CallSession, reason_codes: Sequence[str] = ()) -> dict[str, Any]:
    """The ``session`` part of a verification event; reason codes (never notes) when there are any."""
    data: dict[str, Any] = {"session": session_document(call)}
    if reason_codes:
        data["reason_codes"] = list(reason_codes)
    return data


def close_request(db: Session, account: Account, status: RequestStatus, now: dt.datetime) -> str | None:
    """Close the account's open request (if any) and set the account's verification status to match."""
    request = open_request(db, account.id)
    if request is not None:
        request.status = status
        request.closed_at = now
    account.verification_status = (VerificationStatus.VERIFIED if status is RequestStatus.PASSED
                                   else VerificationStatus.FAILED)
    account.verification_changed_at = now
    db.flush()
    return request.id if request is not None else None


def _lift(db: Session, account: Account, kinds: Sequence[HoldKind], *, actor: str, reason: str,
          now: dt.datetime) -> list[Hold]:
    """Lift the account's active holds of ``kinds`` (audited); the caller publishes them."""
    lifted: list[Hold] = []
    for hold in active_holds(db, account.id):
        if hold.kind in kinds:
            hold.lifted_at, hold.lifted_by, hold.lift_reason = now, actor, reason
            lifted.append(hold)
    db.flush()
    for hold in lifted:
        record(db, actor=actor, action="hold.lifted", account_id=account.id, subject_type="hold",
               subject_id=hold.id, details={"kind": hold.kind.value}, now=now)
    return lifted


def apply_pass(db: Session, account: Account, call: CallSession, *, actor: str, now: dt.datetime) -> None:
    """Verified: close the request, lift the verification holds, publish it all as one change."""
    request_id = close_request(db, account, RequestStatus.PASSED, now)
    record(db, actor=actor, action="verification.passed", account_id=account.id,
           subject_type="call_session", subject_id=call.id, details={"request_id": request_id}, now=now)
    lifted = _lift(db, account, LIFTED_ON_PASS, actor=actor, reason=PASS_LIFT_REASON, now=now)
    events = [("verification.passed", {**session_data(call), "request_id": request_id})]
    events += [("account.hold.lifted", {"hold": hold_dict(hold)}) for hold in lifted]
    publish_change(db, account, events, now=now)


def apply_confirmed_fail(db: Session, account: Account, call: CallSession, *, actor: str, now: dt.datetime,
                         reason_codes: Sequence[str] = ()) -> None:
    """Failed for good: close the request, place the failed hold in place of the pending one, ask for
    proposals to be canceled: one change."""
    request_id = close_request(db, account, RequestStatus.FAILED, now)
    record(db, actor=actor, action="verification.failed", account_id=account.id,
           subject_type="call_session", subject_id=call.id, details={"request_id": request_id}, now=now)
    hold = add_automatic_hold(db, account, kind=HoldKind.VERIFICATION_FAILED, reason=FAIL_HOLD_REASON,
                              actor=actor, now=now, verification_request_id=request_id)
    # The request is over, so its pending hold is too: the failed hold (a superset) replaces it.
    lifted = _lift(db, account, (HoldKind.VERIFICATION_PENDING,), actor=actor, reason=FAIL_LIFT_REASON, now=now)
    events: list[tuple[str, dict[str, Any]]] = [
        ("verification.failed", {**session_data(call, reason_codes), "request_id": request_id})]
    if hold is not None:  # None: a verification_failed hold is already active
        events.append(("account.hold.placed", {"hold": hold_dict(hold)}))
    events += [("account.hold.lifted", {"hold": hold_dict(lifted_hold)}) for lifted_hold in lifted]
    events.append(("account.proposals.cancel_requested", {"reason": "verification_failed"}))
    publish_change(db, account, events, now=now)
