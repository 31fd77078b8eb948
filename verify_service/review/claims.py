"""The workflows around the decision services that talk to Meet: claiming, deciding; claim activity and release.

Workflow (takes a sessionmaker: they call Meet between their units):
:func:`take_session`, :func:`decide` and :func:`refresh_attendance` run
their database steps in short transactions of their own and call Meet
between them, never inside one. The review pages call them through
``pages.run_workflow``, holding no transaction of their own across them.

* :func:`take_session` — a claim commits first; only then is the reviewer
  made co-host of the Meet space. If Meet refuses, the claim is released
  again so the freelancer is not left with a reviewer who cannot get in.
* :func:`decide` — the session's attendance is re-read from Meet, then the
  decision is recorded against it (the rules of evidence in ``evidence.py``).
* :func:`refresh_attendance` — a page (the second review) shows attendance
  as Meet reports it now.

A claim goes back to the queue after ``claim_idle_minutes`` without
activity: no page of the session opened, no ID recorded, and the reviewer
not in the Meet call (as attendance last saw it). A released call stays in
progress: only its claimer is cleared.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from collections.abc import Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from integrations.google_meet import MeetError, MeetGateway
from verify_service.accounts.models import Account
from verify_service.calls import attendance
from verify_service.calls.meetings import add_reviewer
from verify_service.calls.models import CallSession, OutcomeRecord
from verify_service.calls.state import Outcome, SessionStatus
from verify_service.db import for_update, unit_of_work, workflow
from verify_service.errors import DomainError
from verify_service.observability.metrics import record_session_wait
from verify_service.review.decisions import (
    claim_session,
    clean_notes,
    lock_call,
    may_decide,
    record_outcome,
    release_session,
    unclaim,
)
from verify_service.review.evidence import NEEDS_ATTENDANCE, DecisionPolicy
from verify_service.staff.models import Reviewer
from verify_service.review.reasons import check_reasons
from verify_service.settings import Settings

log = logging.getLogger(__name__)

IDLE_ACTOR = "system:idle-claims"
# Page views count as activity; writing it down more often than this adds nothing.
TOUCH_EVERY = dt.timedelta(seconds=30)


class MeetUnavailable(DomainError):
    status = 503
    code = "meet_unavailable"
    title = "Google Meet is not available"


class CohostFailed(DomainError):
    status = 502
    code = "meet_cohost_failed"
    title = "Could not add you to the Meet call"


class AttendanceUnavailable(DomainError):
    status = 503
    code = "attendance_unavailable"
    title = "Attendance could not be read from Meet"


@workflow
def take_session(sessions: sessionmaker[Session], gateway: MeetGateway, call_session_id: str, *,
                 reviewer_id: int, now: dt.datetime) -> CallSession:
    """Claim the session (committed), then make the reviewer co-host of its Meet space.

    Adding a member is idempotent, so a double click simply repeats it.

    Raises:
        ReviewerNotFound, ReviewerInactive, CallSessionNotFound, AccountClosed,
        SessionAlreadyClaimed, SessionNotClaimable: see :func:`claim_session`.
        CohostFailed: Meet refused (or the meeting is not ready); the claim was released.
    """
    with unit_of_work(sessions) as db:
        call = claim_session(db, call_session_id, reviewer_id=reviewer_id, now=now)
        email = db.get_one(Reviewer, reviewer_id).email
    # claim_session stamps claimed_at only on a new claim (a repeated click keeps the first time).
    new_claim = call.claimed_at == now
    try:
        add_reviewer(gateway, call, email)  # fails closed: no co-host, no claim
    except MeetError as exc:
        log.warning("reviewer %s could not be made co-host of call session %s (%s); the claim is released",
                    reviewer_id, call_session_id, exc)
        with unit_of_work(sessions) as db:
            release_session(db, call_session_id, reviewer_id=reviewer_id, now=now, reason="meet_error")
        raise CohostFailed("Google Meet did not accept you as co-host of this call, so the session went back to "
                           "the queue. Try claiming it again in a moment.") from exc
    if new_claim:  # only a claim that stands ends the wait
        record_session_wait(waiting_since(call), now)
    return call


def waiting_since(call: CallSession) -> dt.datetime:
    """When the freelancer started waiting: the meeting was ready, and for a booked call not before its time."""
    ready = call.meet_ready_at or call.created_at
    return max(ready, call.scheduled_for) if call.scheduled_for is not None else ready


def note_activity(db: Session, call_session_id: str, *, reviewer_id: int, now: dt.datetime) -> None:
    """The claimer is working on the session: restart its idle clock (a no-op for anyone else).

    A single row update without the account lock: it neither reads nor
    changes anything the decision services guard.
    """
    db.execute(sa.update(CallSession).where(
        CallSession.id == call_session_id, CallSession.claimed_by_id == reviewer_id,
        CallSession.status == SessionStatus.IN_PROGRESS,
        sa.or_(CallSession.claim_active_at.is_(None), CallSession.claim_active_at < now - TOUCH_EVERY))
        .values(claim_active_at=now).execution_options(synchronize_session=False))


def activity_due(call: CallSession, *, reviewer_id: int, now: dt.datetime) -> bool:
    """Whether :func:`note_activity` would write (the same test as its UPDATE): the session page writes only then,
    in a short unit of its own (a page view is a read)."""
    return (call.claimed_by_id == reviewer_id and call.status is SessionStatus.IN_PROGRESS
            and (call.claim_active_at is None or call.claim_active_at < now - TOUCH_EVERY))


def _idle(call: CallSession, cutoff: dt.datetime) -> bool:
    """Claimed, in progress, and nothing since ``cutoff``: no action, reviewer not in (or recently left) the call."""
    if call.status is not SessionStatus.IN_PROGRESS or call.claimed_by_id is None:
        return False
    if call.reviewer_joined_at is not None and (call.reviewer_left_at is None or call.reviewer_left_at >= cutoff):
        return False
    last = call.claim_active_at or call.claimed_at
    return last is not None and last < cutoff


def _lock_if_free(db: Session, call_session_id: str, account_id: str) -> CallSession | None:
    """Lock account then session; None when the account is busy right now (someone is working on it)."""
    stmt = sa.select(Account.id).where(Account.id == account_id)
    if db.get_bind().dialect.name == "postgresql":  # SQLite: BEGIN IMMEDIATE already serialises writers
        stmt = stmt.with_for_update(skip_locked=True)
    if db.scalar(stmt) is None:
        return None
    return db.execute(for_update(db, sa.select(CallSession).where(CallSession.id == call_session_id))
                           .execution_options(populate_existing=True)).scalar_one()


def release_idle_claims(db: Session, *, idle: dt.timedelta, now: dt.datetime, limit: int = 100) -> list[str]:
    """Put claims idle for ``idle`` back in the queue (``in_progress`` → ``waiting``); returns their ids.

    Every candidate is re-checked under its locks, and accounts locked by
    someone else are skipped (``SKIP LOCKED``) until the next run, so a
    second scheduler or a reviewer acting right now never races it.

    Raises nothing of its own.
    """
    cutoff = now - idle
    last_active = sa.func.coalesce(CallSession.claim_active_at, CallSession.claimed_at)
    candidates = db.execute(sa.select(CallSession.id, CallSession.account_id).where(
        CallSession.status == SessionStatus.IN_PROGRESS, CallSession.claimed_by_id.is_not(None),
        last_active < cutoff).order_by(last_active, CallSession.id).limit(limit)).all()
    released = []
    for call_session_id, account_id in candidates:
        call = _lock_if_free(db, call_session_id, account_id)
        if call is None or not _idle(call, cutoff):
            continue
        unclaim(db, call, actor=IDLE_ACTOR, reason="idle", now=now,
                details={"idle_minutes": int(idle.total_seconds() // 60)})
        released.append(call.id)
    return released


def release_claims_of(db: Session, reviewer_id: int, *, actor: str, now: dt.datetime) -> list[str]:
    """Release every call the reviewer holds (their account is being disabled); returns the calls' ids.

    Each call is locked account first, then session, and re-checked under the lock.
    """
    held = db.scalars(sa.select(CallSession.id).where(
        CallSession.claimed_by_id == reviewer_id, CallSession.status == SessionStatus.IN_PROGRESS)
        .order_by(CallSession.id)).all()
    released = []
    for call_session_id in held:
        _account, call = lock_call(db, call_session_id)
        if call.claimed_by_id == reviewer_id and call.status is SessionStatus.IN_PROGRESS:
            unclaim(db, call, actor=actor, reason="reviewer_disabled", now=now)
            released.append(call.id)
    return released


# ---------------------------------------------------------------- deciding against attendance read now

@workflow
def refresh_attendance(sessions: sessionmaker[Session], gateway: MeetGateway, call_session_id: str, *,
                       settings: Settings, now: dt.datetime) -> attendance.SyncResult:
    """Re-read the session's attendance from Meet and store it (with what follows from it).

    Raises: MeetError (Meet could not be read; nothing changed).
    """
    return attendance.sync_attendance(
        sessions, gateway, call_session_id, ttl=dt.timedelta(minutes=settings.session_ttl_minutes), now=now,
        no_show_wait=dt.timedelta(minutes=settings.no_show_wait_minutes),
        abandon_after=dt.timedelta(minutes=settings.abandoned_call_minutes))


@workflow
def decide(sessions: sessionmaker[Session], gateway: MeetGateway, call_session_id: str, *, reviewer_id: int,
           result: Outcome, notes: str | None, reason_codes: Sequence[str],
           checklist: Mapping[str, bool] | None, settings: Settings, now: dt.datetime,
           rng: random.Random | None = None) -> OutcomeRecord:
    """Record a decision against attendance re-read from Meet for this session now.

    The form is checked first (no Meet call for a form that cannot be
    recorded); then attendance is read and stored; then ``record_outcome``
    judges the evidence on it, in a transaction of its own.

    Raises:
        AttendanceUnavailable: Meet could not be read for a decision that rests on attendance (nothing recorded).
        Whatever :func:`~verify_service.review.decisions.record_outcome` raises.
    """
    check_reasons(result, reason_codes, clean_notes(notes))
    with unit_of_work(sessions, write=False) as db:  # who may decide, before anything asks Meet
        may_decide(db, call_session_id, reviewer_id=reviewer_id)
    if result in NEEDS_ATTENDANCE:
        try:
            refresh_attendance(sessions, gateway, call_session_id, settings=settings, now=now)
        except MeetError as exc:
            log.warning("attendance of call session %s could not be read for a decision: %s", call_session_id, exc)
            raise AttendanceUnavailable("Meet did not answer when we checked who is in the call, so nothing was "
                                        "recorded. Try again in a moment.") from exc
    with unit_of_work(sessions) as db:
        return record_outcome(db, call_session_id, reviewer_id=reviewer_id, result=result, notes=notes,
                              now=now, reason_codes=reason_codes, checklist=checklist,
                              policy=DecisionPolicy.from_settings(settings), rng=rng)
