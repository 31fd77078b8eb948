"""Reviewer decisions: claiming call sessions, recording outcomes, and the four-eyes second review.

Every function here locks the account row first
(:func:`lock_account`), then the call session row, and only then writes the
audit entries (which lock the audit head): one lock order for every writer.
Everything that changes what ``GET …/restrictions`` returns is published as
one change (one ``restrictions_version`` bump, its events in ``seq`` order).

Under the four-eyes rule (``VERIFY_FOUR_EYES_ON_FAIL``, on by default) a
*fail* is never final on one reviewer's word: it waits in
``awaiting_second_review`` until a lead other than its author confirms it
(the ``verification_failed`` hold is placed then) or overturns it (which
counts as a pass). The effects of a final decision are in
:mod:`verify_service.review.effects`; a decision's reason codes come from
:mod:`verify_service.review.reasons`, and the evidence it needs is checked by
:mod:`verify_service.review.evidence` (against attendance re-read at decision
time by ``review/claims.py: decide``). A session has at most one outcome: a
second submission is refused (:class:`AlreadyDecided`; what the desk refuses
is in :mod:`verify_service.review.errors`). A random share of passes is
sampled for a lead's QA (:mod:`verify_service.review.quality`).
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Mapping, Sequence
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from verify_service.accounts.domain import ensure_open
from verify_service.accounts.models import Account
from verify_service.accounts.services import lock_account, publish_change
from verify_service.audit.services import record
from verify_service.calls import lifecycle
from verify_service.calls.errors import CallSessionNotFound
from verify_service.calls.models import CallSession, OutcomeRecord
from verify_service.calls.state import OPEN, EndReason, Outcome, SessionStatus, transition
from verify_service.db import for_update
from verify_service.errors import InvalidInput
from verify_service.review.effects import apply_confirmed_fail, apply_pass, session_data
from verify_service.review.errors import (
    AlreadyDecided,
    FourEyes,
    NotSessionClaimer,
    OutcomeNotFound,
    OutcomeNotPendingReview,
    SessionAlreadyClaimed,
    SessionNotClaimable,
    SessionNotClaimed,
    SessionNotInProgress,
)
from verify_service.review.evidence import DecisionPolicy, check_evidence
from verify_service.review.reasons import check_reasons
from verify_service.staff.errors import LeadRequired, ReviewerInactive, ReviewerNotFound
from verify_service.staff.models import Reviewer, Role

NOTES_MAX_LENGTH = 2000
# A booked session can be claimed (and shows in the queue) from this long before its time.
APPOINTMENT_LEAD = dt.timedelta(minutes=10)

SecondDecision = Literal["confirm", "overturn"]
_RECORDED_AS = {"confirm": "confirmed", "overturn": "overturned"}
# Why a lead cancels a call (audited as a code: the audit log holds no free text).
LEAD_CANCEL_REASONS = {"freelancer_request": "The freelancer asked to cancel",
                       "duplicate": "A duplicate of another call", "technical": "A technical problem",
                       "other": "Something else"}
# Passes are sampled for QA with an unpredictable generator (a reviewer must not be able to tell which).
_SAMPLER = random.SystemRandom()


# ---------------------------------------------------------------- helpers

def load_staff(db: Session, reviewer_id: int, *, lead: bool = False) -> Reviewer:
    """Raises: ReviewerNotFound, ReviewerInactive, LeadRequired (with ``lead``)."""
    reviewer = db.get(Reviewer, reviewer_id)
    if reviewer is None:
        raise ReviewerNotFound(f"no staff account with id {reviewer_id}")
    if not reviewer.active:
        raise ReviewerInactive(f"staff account {reviewer_id} is deactivated")
    if lead and not reviewer.role.includes(Role.LEAD):
        raise LeadRequired(f"staff account {reviewer_id} is a {reviewer.role.value}")
    return reviewer


def _actor(reviewer: Reviewer) -> str:
    return f"reviewer:{reviewer.id}"


def is_lead(reviewer: Reviewer) -> bool:
    return reviewer.role.includes(Role.LEAD)


def lock_call(db: Session, call_session_id: str) -> tuple[Account, CallSession]:
    """Lock the session's account, then the session (the one lock order). Raises: CallSessionNotFound."""
    account_id = db.scalar(sa.select(CallSession.account_id).where(CallSession.id == call_session_id))
    if account_id is None:
        raise CallSessionNotFound(f"no call session with id {call_session_id!r}")
    account = lock_account(db, account_id)
    stmt = for_update(db, sa.select(CallSession).where(CallSession.id == call_session_id))
    return account, db.execute(stmt.execution_options(populate_existing=True)).scalar_one()


def lock_outcome(db: Session, outcome_id: str) -> tuple[Account, CallSession, OutcomeRecord]:
    """Lock the outcome's account, then its session, and read the outcome under those locks.

    Raises: OutcomeNotFound, AccountClosed.
    """
    call_session_id = db.scalar(sa.select(OutcomeRecord.call_session_id).where(OutcomeRecord.id == outcome_id))
    if call_session_id is None:
        raise OutcomeNotFound(f"no outcome with id {outcome_id!r}")
    account, call = lock_call(db, call_session_id)
    outcome = db.execute(sa.select(OutcomeRecord).where(OutcomeRecord.id == outcome_id)
                              .execution_options(populate_existing=True)).scalar_one()
    ensure_open(account)
    return account, call, outcome



def clean_notes(notes: str | None) -> str | None:
    """Notes are personal data: kept as written (trimmed), never copied into audit or events."""
    notes = (notes or "").strip()
    if len(notes) > NOTES_MAX_LENGTH:
        raise InvalidInput.for_field("notes", f"at most {NOTES_MAX_LENGTH} characters (got {len(notes)})")
    return notes or None


# ---------------------------------------------------------------- claiming

def claim_session(db: Session, call_session_id: str, *, reviewer_id: int, now: dt.datetime) -> CallSession:
    """The reviewer takes a session from the queue.

    A ``waiting`` session moves to ``in_progress`` (``verification.session.started``),
    and so does a booked one from ``APPOINTMENT_LEAD`` before its time; an
    ``in_progress`` session nobody holds (the freelancer joined first, or a
    claim was released) just gets its claimer. Claiming a session one already
    holds only counts as activity (a double click).

    Raises:
        ReviewerNotFound, ReviewerInactive, CallSessionNotFound, AccountClosed,
        SessionNotClaimable: the session is not waiting, due or in progress (e.g. already decided).
        SessionAlreadyClaimed: another reviewer holds it.
    """
    reviewer = load_staff(db, reviewer_id)
    account, call = lock_call(db, call_session_id)
    ensure_open(account)
    if call.claimed_by_id == reviewer.id and call.status is SessionStatus.IN_PROGRESS:
        call.claim_active_at = now
        db.flush()
        return call
    due = is_due_appointment(call, now)
    if call.status not in (SessionStatus.WAITING, SessionStatus.IN_PROGRESS) and not due:
        raise SessionNotClaimable(_not_claimable(db, call, reviewer))
    if call.claimed_by_id is not None:
        other = db.get(Reviewer, call.claimed_by_id)
        raise SessionAlreadyClaimed(f"{other.display_name if other else 'another reviewer'} has claimed this call "
                                    f"(at {call.claimed_at:%H:%M} UTC)" if call.claimed_at else
                                    "another reviewer has claimed this call")
    if call.status is not SessionStatus.IN_PROGRESS:
        lifecycle.begin(db, account, call, now=now)
    call.claimed_by_id, call.claimed_at, call.claim_active_at, call.updated_at = reviewer.id, now, now, now
    db.flush()
    record(db, actor=_actor(reviewer), action="session.claimed", account_id=account.id,
           subject_type="call_session", subject_id=call.id, details={}, now=now)
    return call


def _not_claimable(db: Session, call: CallSession, reviewer: Reviewer) -> str:
    """Why ``call`` cannot be claimed, in the claimer's words (naming a decision and who made it)."""
    decided = db.scalar(sa.select(OutcomeRecord).where(OutcomeRecord.call_session_id == call.id))
    if decided is not None:
        by = "you" if decided.decided_by_id == reviewer.id else "another reviewer"
        return (f"this call was already decided: {decided.result.value.replace('_', ' ')}, by {by} at "
                f"{decided.decided_at:%H:%M} UTC")
    if call.status is SessionStatus.SCHEDULED and call.scheduled_for is not None:
        return (f"this call is booked for {call.scheduled_for:%Y-%m-%d %H:%M} UTC; it can be claimed from "
                f"{int(APPOINTMENT_LEAD.total_seconds() // 60)} minutes before")
    return {SessionStatus.EXPIRED: "this call expired", SessionStatus.CANCELED: "this call was canceled"}.get(
        call.status, f"this call is {call.status.value.replace('_', ' ')}")


def is_due_appointment(call: CallSession, now: dt.datetime) -> bool:
    """A booked session whose time has come (or comes within ``APPOINTMENT_LEAD``)."""
    return (call.status is SessionStatus.SCHEDULED and call.scheduled_for is not None
            and call.scheduled_for - APPOINTMENT_LEAD <= now)


def release_session(db: Session, call_session_id: str, *, reviewer_id: int, now: dt.datetime,
                    reason: str | None = None) -> CallSession:
    """Give a claimed session back to the queue: the claim is cleared, the call stays ``in_progress``.

    Nothing moves back for the freelancer (who may be in the meeting already)
    and nothing is announced again: the next reviewer claims it from the queue.
    Only the claimer may release it, or a lead/admin (e.g. for a reviewer who
    left). ``reason`` (a short code such as ``meet_error``) goes in the audit entry.

    Raises:
        ReviewerNotFound, ReviewerInactive, CallSessionNotFound,
        SessionNotClaimed: the session is not in progress with a claimer.
        NotSessionClaimer: someone else claimed it and the caller is not a lead.
    """
    reviewer = load_staff(db, reviewer_id)
    account, call = lock_call(db, call_session_id)
    if call.status is not SessionStatus.IN_PROGRESS or call.claimed_by_id is None:
        raise SessionNotClaimed(f"call session {call.id} is {call.status.value} and not claimed")
    if call.claimed_by_id != reviewer.id and not is_lead(reviewer):
        raise NotSessionClaimer(f"call session {call.id} is claimed by reviewer {call.claimed_by_id}")
    unclaim(db, call, actor=_actor(reviewer), reason=reason, now=now)
    return call


def unclaim(db: Session, call: CallSession, *, actor: str, reason: str | None, now: dt.datetime,
            details: Mapping[str, object] | None = None) -> None:
    """Clear a locked session's claim and audit it (releases of every kind: by hand, idle, a disabled reviewer)."""
    claimer = call.claimed_by_id
    call.claimed_by_id = call.claimed_at = call.claim_active_at = None
    call.updated_at = now
    db.flush()
    record(db, actor=actor, action="session.released", account_id=call.account_id,
           subject_type="call_session", subject_id=call.id,
           details={"claimed_by": claimer, **({"reason": reason} if reason else {}), **(details or {})}, now=now)


def cancel_by_lead(db: Session, call_session_id: str, *, lead_id: int, reason: str,
                   now: dt.datetime) -> CallSession:
    """A lead cancels a call that is not over (``verification.session.canceled`` by ``lead``).

    Raises:
        InvalidInput: an unknown reason code.
        ReviewerNotFound, ReviewerInactive, LeadRequired, CallSessionNotFound, AccountClosed,
        SessionNotInProgress: the call is over already, or is a fail waiting for its second review
            (confirm or overturn it instead).
    """
    if reason not in LEAD_CANCEL_REASONS:
        raise InvalidInput.for_field("reason", "choose why the call is canceled")
    lead = load_staff(db, lead_id, lead=True)
    account, call = lock_call(db, call_session_id)
    ensure_open(account)
    if call.status not in OPEN:
        raise SessionNotInProgress(f"this call is {call.status.value.replace('_', ' ')}: only a booked, waiting or "
                                   "live call can be canceled")
    lifecycle.cancel(db, account, call, by=EndReason.LEAD, now=now)
    record(db, actor=_actor(lead), action="call_session.canceled", account_id=account.id,
           subject_type="call_session", subject_id=call.id, details={"by": "lead", "reason": reason}, now=now)
    return call


# ---------------------------------------------------------------- deciding

def _check_decidable(db: Session, call: CallSession, reviewer: Reviewer) -> None:
    """Raises: AlreadyDecided, SessionNotInProgress, NotSessionClaimer."""
    if call.status is not SessionStatus.IN_PROGRESS:
        earlier = db.scalar(sa.select(OutcomeRecord).where(OutcomeRecord.call_session_id == call.id))
        if earlier is not None:
            by = "you" if earlier.decided_by_id == reviewer.id else f"reviewer {earlier.decided_by_id}"
            raise AlreadyDecided(f"this session was already decided ({earlier.result.value.replace('_', ' ')}, by {by} at "
                                 f"{earlier.decided_at:%H:%M} UTC); your submission was not recorded")
        raise SessionNotInProgress(f"this call is not in progress: it is {call.status.value.replace('_', ' ')}")
    if call.claimed_by_id != reviewer.id and not is_lead(reviewer):
        raise NotSessionClaimer("claim the session before deciding it" if call.claimed_by_id is None
                                else f"call session {call.id} is claimed by reviewer {call.claimed_by_id}")


def may_decide(db: Session, call_session_id: str, *, reviewer_id: int) -> None:
    """Whether the reviewer may decide the session now, without locks (``record_outcome`` checks again under them).

    Raises: ReviewerNotFound, ReviewerInactive, CallSessionNotFound, AccountClosed, AlreadyDecided,
        SessionNotInProgress, NotSessionClaimer.
    """
    reviewer = load_staff(db, reviewer_id)
    call = db.get(CallSession, call_session_id)
    if call is None:
        raise CallSessionNotFound(f"no call session with id {call_session_id!r}")
    ensure_open(db.get_one(Account, call.account_id))
    _check_decidable(db, call, reviewer)


def record_outcome(db: Session, call_session_id: str, *, reviewer_id: int, result: Outcome,
                   notes: str | None, now: dt.datetime, reason_codes: Sequence[str],
                   checklist: Mapping[str, bool] | None, policy: DecisionPolicy,
                   rng: random.Random | None = None) -> OutcomeRecord:
    """Record the reviewer's decision on a session in progress, once its evidence is there.

    * ``passed`` — final; the session completes, the open request passes, the
      account is verified, its verification holds are lifted
      (``verification.passed`` + one ``account.hold.lifted`` each, one version).
      A share of passes (``policy.pass_sample_rate``, drawn from ``rng``) is
      marked for a lead's QA; the pass stands meanwhile.
    * ``failed`` — under four eyes (``policy.four_eyes``) not final: the
      session waits in ``awaiting_second_review`` and nothing is published
      until a lead decides. Without it, final at once with the effects of a
      confirmed fail (see :func:`second_review`).
    * ``inconclusive`` / ``no_show`` — final; the request stays open for a
      retry; ``verification.inconclusive`` / ``verification.no_show`` is
      published (one version bump each). The request's deadline still applies.

    The evidence each needs (:mod:`~verify_service.review.evidence`) is judged
    on the attendance stored at ``now``: the caller re-reads it from Meet first.

    Raises:
        InvalidInput: notes longer than ``NOTES_MAX_LENGTH``; reasons that do not fit (see ``check_reasons``).
        EvidenceMissing: the decision lacks evidence (each missing piece named).
        ReviewerNotFound, ReviewerInactive, CallSessionNotFound, AccountClosed,
        AlreadyDecided: the session has an outcome already (a second submission).
        SessionNotInProgress: the session is not ``in_progress`` (and not decided).
        NotSessionClaimer: the caller is not the claimer, nor a lead/admin.
    """
    notes = clean_notes(notes)
    codes = check_reasons(result, reason_codes, notes)
    reviewer = load_staff(db, reviewer_id)
    account, call = lock_call(db, call_session_id)
    ensure_open(account)
    _check_decidable(db, call, reviewer)
    check_evidence(db, call, result, checklist=checklist, policy=policy, now=now)
    final = result is not Outcome.FAILED or not policy.four_eyes
    sampled = result is Outcome.PASSED and (rng or _SAMPLER).random() < policy.pass_sample_rate
    outcome = OutcomeRecord(call_session_id=call.id, account_id=account.id, result=result, decided_by_id=reviewer.id,
                            decided_at=now, notes=notes, final=final, reason_codes=codes,
                            checklist=dict(checklist) if checklist is not None else None,
                            qa_sampled_at=now if sampled else None)
    db.add(outcome)
    transition(call, SessionStatus.COMPLETED if final else SessionStatus.AWAITING_SECOND_REVIEW, now=now)
    call.outcome = result
    try:
        db.flush()
    except IntegrityError as exc:  # the unique outcome per session: only reachable without the row locks
        raise AlreadyDecided("this session was already decided; your submission was not recorded") from exc
    actor = _actor(reviewer)
    record(db, actor=actor, action="outcome.recorded", account_id=account.id, subject_type="outcome",
           subject_id=outcome.id, details={"call_session_id": call.id, "result": result.value, "final": final,
                                           "reason_codes": codes}, now=now)
    if result is Outcome.PASSED:
        apply_pass(db, account, call, actor=actor, now=now)
    elif result is Outcome.FAILED and final:
        apply_confirmed_fail(db, account, call, actor=actor, now=now, reason_codes=codes)
    elif result in (Outcome.INCONCLUSIVE, Outcome.NO_SHOW):
        publish_change(db, account, [(f"verification.{result.value}", session_data(call, codes))], now=now)
    return outcome


def second_review(db: Session, outcome_id: str, *, lead_id: int, decision: SecondDecision,
                  notes: str | None, now: dt.datetime) -> OutcomeRecord:
    """A lead confirms or overturns a recorded fail; either way the session completes.

    ``confirm``: the request fails, the account's status becomes ``failed``, a
    ``verification_failed`` hold replaces the ``verification_pending`` one;
    ``verification.failed``, ``account.hold.placed``, ``account.hold.lifted``
    and ``account.proposals.cancel_requested`` are published as one change.
    The session's ``ended_at`` stays the time of the first decision. ``overturn``: the outcome keeps ``result=failed``
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
    notes = clean_notes(notes)
    lead = load_staff(db, lead_id, lead=True)
    account, call, outcome = lock_outcome(db, outcome_id)
    if outcome.final or outcome.result is not Outcome.FAILED \
            or call.status is not SessionStatus.AWAITING_SECOND_REVIEW:
        raise OutcomeNotPendingReview(f"outcome {outcome.id} is a {'final ' if outcome.final else ''}"
                                      f"{outcome.result.value.replace('_', ' ')}")
    if outcome.decided_by_id == lead.id:
        raise FourEyes("you recorded this fail; another lead must review it")
    outcome.final = True
    outcome.second_reviewer_id, outcome.second_decided_at = lead.id, now
    outcome.second_decision = _RECORDED_AS[decision]
    if notes:
        lead_notes = f"Second review ({outcome.second_decision}): {notes}"
        outcome.notes = f"{outcome.notes}\n\n{lead_notes}" if outcome.notes else lead_notes
    transition(call, SessionStatus.COMPLETED, now=now)
    call.outcome = Outcome.FAILED if decision == "confirm" else Outcome.PASSED
    db.flush()
    actor = _actor(lead)
    record(db, actor=actor, action="outcome.second_review", account_id=account.id, subject_type="outcome",
           subject_id=outcome.id, details={"decision": outcome.second_decision,
                                           "first_reviewer_id": outcome.decided_by_id}, now=now)
    if decision == "confirm":
        apply_confirmed_fail(db, account, call, actor=actor, now=now, reason_codes=outcome.reason_codes)
    else:
        apply_pass(db, account, call, actor=actor, now=now)
    return outcome

