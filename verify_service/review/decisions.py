"""Reviewer decisions: claiming call sessions, recording outcomes, and the four-eyes second review.

DESIGN §3.2–3.5 and §4.3. Every function here locks the account row first
(:func:`lock_account`), then the call session row, and only then writes the
audit entries (which lock the audit head): one lock order for every writer.
Everything that changes what ``GET …/restrictions`` returns is published as
one change (one ``restrictions_version`` bump, its events in ``seq`` order).

A *fail* is never final on one reviewer's word: it waits in
``awaiting_second_review`` until a lead other than its author confirms it
(the ``verification_failed`` hold is placed then) or overturns it (which
counts as a pass).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from verify_service.accounts.domain import HoldKind, RequestStatus, VerificationStatus
from verify_service.accounts.models import Account, Hold
from verify_service.accounts.services import (
    AccountClosed,
    active_holds,
    add_automatic_hold,
    hold_dict,
    isoformat,
    lock_account,
    open_request,
    publish_change,
)
from verify_service.audit.services import record
from verify_service.calls.models import CallSession, Outcome
from verify_service.calls.state import Outcome as OutcomeResult
from verify_service.calls.state import SessionStatus, transition
from verify_service.db import for_update
from verify_service.errors import Conflict, DomainError, InvalidInput, NotFound
from verify_service.review.models import Reviewer, Role

NOTES_MAX_LENGTH = 2000
PASS_LIFT_REASON = "Identity verified on a video call"
FAIL_HOLD_REASON = "Identity verification failed on a video call"
# A pass lifts these; a manual hold stays until a lead lifts it.
LIFTED_ON_PASS = (HoldKind.VERIFICATION_PENDING, HoldKind.VERIFICATION_FAILED)

SecondDecision = Literal["confirm", "overturn"]
_RECORDED_AS = {"confirm": "confirmed", "overturn": "overturned"}


# ---------------------------------------------------------------- errors

class Forbidden(DomainError):
    """The staff member may not do this (their role, their status, or the four-eyes rule)."""

    status = 403
    code = "forbidden"
    title = "Not allowed"


class ReviewerNotFound(NotFound):
    code = "reviewer_not_found"
    title = "No such staff account"


class ReviewerInactive(Forbidden):
    code = "reviewer_inactive"
    title = "The staff account is deactivated"


class LeadRequired(Forbidden):
    code = "lead_required"
    title = "Only a lead or an admin may do this"


class NotSessionClaimer(Forbidden):
    code = "not_session_claimer"
    title = "Only the reviewer who claimed the session (or a lead) may do this"


class FourEyes(Forbidden):
    code = "four_eyes"
    title = "A fail must be reviewed by someone other than the reviewer who recorded it"


class CallSessionNotFound(NotFound):
    code = "call_session_not_found"
    title = "No such call session"


class OutcomeNotFound(NotFound):
    code = "outcome_not_found"
    title = "No such outcome"


class SessionAlreadyClaimed(Conflict):
    code = "session_already_claimed"
    title = "Another reviewer has claimed this session"


class SessionNotClaimable(Conflict):
    code = "session_not_claimable"
    title = "This session cannot be claimed in its current status"


class SessionNotClaimed(Conflict):
    code = "session_not_claimed"
    title = "Nobody has claimed this session"


class SessionNotInProgress(Conflict):
    code = "session_not_in_progress"
    title = "An outcome can only be recorded for a session in progress"


class OutcomeNotPendingReview(Conflict):
    code = "outcome_not_pending_review"
    title = "Only a fail still waiting for its second review can be reviewed"


# ---------------------------------------------------------------- helpers

def _staff(session: Session, reviewer_id: int, *, lead: bool = False) -> Reviewer:
    """Raises: ReviewerNotFound, ReviewerInactive, LeadRequired (with ``lead``)."""
    reviewer = session.get(Reviewer, reviewer_id)
    if reviewer is None:
        raise ReviewerNotFound(f"no staff account with id {reviewer_id}")
    if not reviewer.active:
        raise ReviewerInactive(f"staff account {reviewer_id} is deactivated")
    if lead and not reviewer.role.includes(Role.LEAD):
        raise LeadRequired(f"staff account {reviewer_id} is a {reviewer.role.value}")
    return reviewer


def _actor(reviewer: Reviewer) -> str:
    return f"reviewer:{reviewer.id}"


def _is_lead(reviewer: Reviewer) -> bool:
    return reviewer.role.includes(Role.LEAD)


def _lock_call(session: Session, call_session_id: str) -> tuple[Account, CallSession]:
    """Lock the session's account, then the session (the one lock order). Raises: CallSessionNotFound."""
    account_id = session.scalar(sa.select(CallSession.account_id).where(CallSession.id == call_session_id))
    if account_id is None:
        raise CallSessionNotFound(f"no call session with id {call_session_id!r}")
    account = lock_account(session, account_id)
    stmt = for_update(session, sa.select(CallSession).where(CallSession.id == call_session_id))
    return account, session.execute(stmt.execution_options(populate_existing=True)).scalar_one()


def _require_open(account: Account) -> None:
    if account.closed_at is not None:
        raise AccountClosed(f"account {account.id!r} is closed")


def _clean_notes(notes: str | None) -> str | None:
    """Notes are personal data: kept as written (trimmed), never copied into audit or events."""
    notes = (notes or "").strip()
    if len(notes) > NOTES_MAX_LENGTH:
        raise InvalidInput.for_field("notes", f"at most {NOTES_MAX_LENGTH} characters (got {len(notes)})")
    return notes or None


def _session_data(call: CallSession) -> dict[str, Any]:
    return {"session": {"id": call.id, "status": call.status.value, "attempt": call.attempt,
                        "outcome": call.outcome.value if call.outcome else None,
                        "started_at": isoformat(call.started_at), "ended_at": isoformat(call.ended_at)}}


def _close_request(session: Session, account: Account, status: RequestStatus, now: dt.datetime) -> str | None:
    """Close the account's open request (if any) and set the account's verification status to match."""
    request = open_request(session, account.id)
    if request is not None:
        request.status = status
        request.closed_at = now
    account.verification_status = (VerificationStatus.VERIFIED if status is RequestStatus.PASSED
                                   else VerificationStatus.FAILED)
    account.verification_changed_at = now
    session.flush()
    return request.id if request is not None else None


# ---------------------------------------------------------------- effects of a final decision

def _apply_pass(session: Session, account: Account, call: CallSession, *, actor: str, now: dt.datetime) -> None:
    """Verified: close the request, lift the verification holds, publish it all as one change."""
    request_id = _close_request(session, account, RequestStatus.PASSED, now)
    record(session, actor=actor, action="verification.passed", account_id=account.id,
           subject_type="call_session", subject_id=call.id, details={"request_id": request_id}, now=now)
    lifted: list[Hold] = []
    for hold in active_holds(session, account.id):
        if hold.kind in LIFTED_ON_PASS:
            hold.lifted_at, hold.lifted_by, hold.lift_reason = now, actor, PASS_LIFT_REASON
            lifted.append(hold)
    session.flush()
    for hold in lifted:
        record(session, actor=actor, action="hold.lifted", account_id=account.id, subject_type="hold",
               subject_id=hold.id, details={"kind": hold.kind.value}, now=now)
    events = [("verification.passed", {**_session_data(call), "request_id": request_id})]
    events += [("account.hold.lifted", {"hold": hold_dict(hold)}) for hold in lifted]
    publish_change(session, account, events, now=now)


def _apply_confirmed_fail(session: Session, account: Account, call: CallSession, *, actor: str,
                          now: dt.datetime) -> None:
    """Failed for good: close the request, place the failed hold, ask for proposals to be canceled."""
    request_id = _close_request(session, account, RequestStatus.FAILED, now)
    record(session, actor=actor, action="verification.failed", account_id=account.id,
           subject_type="call_session", subject_id=call.id, details={"request_id": request_id}, now=now)
    hold = add_automatic_hold(session, account, kind=HoldKind.VERIFICATION_FAILED, reason=FAIL_HOLD_REASON,
                              actor=actor, now=now, verification_request_id=request_id)
    events: list[tuple[str, dict[str, Any]]] = [("verification.failed", {**_session_data(call),
                                                                         "request_id": request_id})]
    if hold is not None:  # None: a verification_failed hold is already active
        events.append(("account.hold.placed", {"hold": hold_dict(hold)}))
    events.append(("account.proposals.cancel_requested", {"reason": "verification_failed"}))
    publish_change(session, account, events, now=now)


# ---------------------------------------------------------------- claiming

def claim_session(session: Session, call_session_id: str, *, reviewer_id: int, now: dt.datetime) -> CallSession:
    """The reviewer takes a session from the queue.

    A ``waiting`` session moves to ``in_progress``; an ``in_progress`` session
    nobody has claimed (the freelancer joined first) just gets its claimer.
    Claiming a session one already holds changes nothing (a double click).
    No event is sent: ``verification.session.started`` belongs to attendance.

    Raises:
        ReviewerNotFound, ReviewerInactive, CallSessionNotFound, AccountClosed,
        SessionAlreadyClaimed: another reviewer holds it.
        SessionNotClaimable: the session is not waiting or in progress.
    """
    reviewer = _staff(session, reviewer_id)
    account, call = _lock_call(session, call_session_id)
    _require_open(account)
    if call.claimed_by_id == reviewer.id and call.status is SessionStatus.IN_PROGRESS:
        return call
    if call.claimed_by_id is not None:
        raise SessionAlreadyClaimed(f"call session {call.id} is claimed by reviewer {call.claimed_by_id}")
    if call.status is SessionStatus.WAITING:
        transition(call, SessionStatus.IN_PROGRESS, now=now)
    elif call.status is not SessionStatus.IN_PROGRESS:
        raise SessionNotClaimable(f"call session {call.id} is {call.status.value}")
    call.claimed_by_id, call.claimed_at, call.updated_at = reviewer.id, now, now
    session.flush()
    record(session, actor=_actor(reviewer), action="session.claimed", account_id=account.id,
           subject_type="call_session", subject_id=call.id, details={}, now=now)
    return call


def release_session(session: Session, call_session_id: str, *, reviewer_id: int, now: dt.datetime) -> CallSession:
    """Give a claimed session back to the queue (``in_progress`` → ``waiting``, claim cleared).

    Only the claimer may release it, or a lead/admin (e.g. for a reviewer who left).

    Raises:
        ReviewerNotFound, ReviewerInactive, CallSessionNotFound,
        SessionNotClaimed: the session is not in progress with a claimer.
        NotSessionClaimer: someone else claimed it and the caller is not a lead.
    """
    reviewer = _staff(session, reviewer_id)
    account, call = _lock_call(session, call_session_id)
    if call.status is not SessionStatus.IN_PROGRESS or call.claimed_by_id is None:
        raise SessionNotClaimed(f"call session {call.id} is {call.status.value} and not claimed")
    if call.claimed_by_id != reviewer.id and not _is_lead(reviewer):
        raise NotSessionClaimer(f"call session {call.id} is claimed by reviewer {call.claimed_by_id}")
    claimer = call.claimed_by_id
    transition(call, SessionStatus.WAITING, now=now)  # clears the claim
    session.flush()
    record(session, actor=_actor(reviewer), action="session.released", account_id=account.id,
           subject_type="call_session", subject_id=call.id, details={"claimed_by": claimer}, now=now)
    return call


# ---------------------------------------------------------------- deciding

def record_outcome(session: Session, call_session_id: str, *, reviewer_id: int, result: OutcomeResult,
                   notes: str | None, now: dt.datetime) -> Outcome:
    """Record the reviewer's decision on a session in progress.

    * ``passed`` — final; the session completes, the open request passes, the
      account is verified, its verification holds are lifted
      (``verification.passed`` + one ``account.hold.lifted`` each, one version).
    * ``failed`` — not final (four eyes): the session waits in
      ``awaiting_second_review``; nothing is published until a lead decides.
    * ``inconclusive`` — final; the request stays open for a retry;
      ``verification.inconclusive`` is published (one version bump).
    * ``no_show`` — final; the request stays open, the audit log records it,
      and nothing is published: DESIGN has no event for it and the account
      service's view (request, holds, verification status) is unchanged. The
      request's deadline, if any, still applies.

    Raises:
        InvalidInput: notes longer than ``NOTES_MAX_LENGTH``.
        ReviewerNotFound, ReviewerInactive, CallSessionNotFound, AccountClosed,
        SessionNotInProgress: the session is not ``in_progress``.
        NotSessionClaimer: the caller is not the claimer, nor a lead/admin.
    """
    notes = _clean_notes(notes)
    reviewer = _staff(session, reviewer_id)
    account, call = _lock_call(session, call_session_id)
    _require_open(account)
    if call.status is not SessionStatus.IN_PROGRESS:
        raise SessionNotInProgress(f"call session {call.id} is {call.status.value}")
    if call.claimed_by_id != reviewer.id and not _is_lead(reviewer):
        raise NotSessionClaimer("claim the session before deciding it" if call.claimed_by_id is None
                                else f"call session {call.id} is claimed by reviewer {call.claimed_by_id}")
    final = result is not OutcomeResult.FAILED
    outcome = Outcome(call_session_id=call.id, account_id=account.id, result=result, decided_by_id=reviewer.id,
                      decided_at=now, notes=notes, final=final)
    session.add(outcome)
    transition(call, SessionStatus.COMPLETED if final else SessionStatus.AWAITING_SECOND_REVIEW, now=now)
    call.outcome = result
    session.flush()
    actor = _actor(reviewer)
    record(session, actor=actor, action="outcome.recorded", account_id=account.id, subject_type="outcome",
           subject_id=outcome.id, details={"call_session_id": call.id, "result": result.value, "final": final},
           now=now)
    if result is OutcomeResult.PASSED:
        _apply_pass(session, account, call, actor=actor, now=now)
    elif result is OutcomeResult.INCONCLUSIVE:
        publish_change(session, account, [("verification.inconclusive", _session_data(call))], now=now)
    return outcome


def second_review(session: Session, outcome_id: str, *, lead_id: int, decision: SecondDecision,
                  notes: str | None, now: dt.datetime) -> Outcome:
    """A lead confirms or overturns a recorded fail; either way the session completes.

    ``confirm``: the request fails, the account's status becomes ``failed``, a
    ``verification_failed`` hold is placed; ``verification.failed``,
    ``account.hold.placed`` and ``account.proposals.cancel_requested`` are
    published as one change. ``overturn``: the outcome keeps ``result=failed``
    (what the first reviewer said) with ``second_decision="overturned"``, and
    the effects are those of a pass. The lead's notes are appended to the
    outcome's notes (there is no separate column for them).

    Raises:
        InvalidInput: an unknown decision, or notes that are too long.
        ReviewerNotFound, ReviewerInactive, LeadRequired, OutcomeNotFound, AccountClosed,
        OutcomeNotPendingReview: the outcome is not a fail waiting for review.
        FourEyes: the lead recorded the fail themselves.
    """
    if decision not in _RECORDED_AS:
        raise InvalidInput.for_field("decision", "must be 'confirm' or 'overturn'")
    notes = _clean_notes(notes)
    lead = _staff(session, lead_id, lead=True)
    call_session_id = session.scalar(sa.select(Outcome.call_session_id).where(Outcome.id == outcome_id))
    if call_session_id is None:
        raise OutcomeNotFound(f"no outcome with id {outcome_id!r}")
    account, call = _lock_call(session, call_session_id)
    outcome = session.execute(sa.select(Outcome).where(Outcome.id == outcome_id)
                              .execution_options(populate_existing=True)).scalar_one()
    _require_open(account)
    if outcome.final or outcome.result is not OutcomeResult.FAILED:
        raise OutcomeNotPendingReview(f"outcome {outcome.id} is a {'final ' if outcome.final else ''}"
                                      f"{outcome.result.value}")
    if outcome.decided_by_id == lead.id:
        raise FourEyes("you recorded this fail; another lead must review it")
    outcome.final = True
    outcome.second_reviewer_id, outcome.second_decided_at = lead.id, now
    outcome.second_decision = _RECORDED_AS[decision]
    if notes:
        lead_notes = f"Second review ({outcome.second_decision}): {notes}"
        outcome.notes = f"{outcome.notes}\n\n{lead_notes}" if outcome.notes else lead_notes
    transition(call, SessionStatus.COMPLETED, now=now)
    call.outcome = OutcomeResult.FAILED if decision == "confirm" else OutcomeResult.PASSED
    session.flush()
    actor = _actor(lead)
    record(session, actor=actor, action="outcome.second_review", account_id=account.id, subject_type="outcome",
           subject_id=outcome.id, details={"decision": outcome.second_decision,
                                           "first_reviewer_id": outcome.decided_by_id}, now=now)
    if decision == "confirm":
        _apply_confirmed_fail(session, account, call, actor=actor, now=now)
    else:
        _apply_pass(session, account, call, actor=actor, now=now)
    return outcome


# ---------------------------------------------------------------- queries

def pending_second_reviews(session: Session, *, limit: int = 50) -> Sequence[Outcome]:
    """Fails waiting for a lead, oldest first (closed accounts' are left out: they can no longer be decided)."""
    return session.scalars(
        sa.select(Outcome).join(Account, Account.id == Outcome.account_id)
        .where(Outcome.result == OutcomeResult.FAILED, Outcome.final.is_(False), Account.closed_at.is_(None))
        .order_by(Outcome.decided_at, Outcome.id).limit(limit)).all()
