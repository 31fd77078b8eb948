"""The freelancer's side of a call: starting one, canceling or leaving it, the waiting room, what they may see.

A freelancer has at most one active session (booked, waiting or in a call,
or a fail waiting for its second review) and opens at most
``daily_session_limit`` new sessions in any 24 hours — calls started and
bookings kept (a booking canceled before its time does not count, and a
move is no new call; booking changes have their own limit, see
``calls/booking.py``): enough to recover from a dropped call, not enough to
hammer the reviewers' queue or Meet's creation budget.

A freelancer may cancel a booked call, or leave the queue while no reviewer
has taken the call up; once a reviewer has it, only the reviewer's decision
(or its expiry) ends it.

Workflow (takes a sessionmaker: they call Meet and Calendar between their
units): :func:`start_call` commits the new session, then creates its
meeting (``prepare_meeting``: its own units around the call to Meet);
:func:`cancel_call` commits the cancel, then deletes a booking's invite.
The call pages call them through ``pages.run_workflow``, holding no
transaction of their own across them. The other functions here take the
caller's ``Session`` and only flush.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import math
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from integrations.google_meet import MeetConfigurationError, MeetGateway
from verify_service.accounts.domain import VerificationStatus, ensure_open
from verify_service.accounts.models import Account
from verify_service.accounts.services import lock_account
from verify_service.accounts.restrictions import open_request
from verify_service.audit.services import record
from verify_service.calls import availability, invites, lifecycle
from verify_service.calls.booking import BOOKING_CANCELED, audit_booking_change
from verify_service.calls.errors import CallSessionNotFound
from verify_service.calls.invites import Pushed
from verify_service.calls.meetings import Preparation, prepare_meeting
from verify_service.calls.models import CallSession, MeetingStatus, OutcomeRecord
from verify_service.calls.state import OPEN, EndReason, SessionStatus
from verify_service.db import for_update, unit_of_work, workflow
from verify_service.errors import Conflict
from verify_service.staff.models import HUMAN, Reviewer, not_builtin
from verify_service.settings import Settings

log = logging.getLogger(__name__)

# A session that is not over for the freelancer yet: a fail waiting for its second review counts.
ACTIVE = OPEN | {SessionStatus.AWAITING_SECOND_REVIEW}
LIMIT_WINDOW = dt.timedelta(hours=24)
# With no recent calls to learn from, assume this long per call (the help pages say "under 10 minutes").
DEFAULT_HANDLING = dt.timedelta(minutes=8)
HANDLING_WINDOW = dt.timedelta(hours=24)
# A reviewer who claimed a session this recently counts as working now, shift or not.
RECENTLY_ACTIVE = dt.timedelta(minutes=30)


class NothingToVerify(Conflict):
    code = "verification_not_required"
    title = "No verification is needed"


class SessionAlreadyActive(Conflict):
    code = "session_already_active"
    title = "You already have a verification call"

    def __init__(self, call_session_id: str,
                 detail: str = "finish or cancel your current call before starting another one") -> None:
        super().__init__(detail)
        self.call_session_id = call_session_id


class DailyLimitReached(Conflict):
    status = 429
    code = "daily_session_limit"
    title = "Too many calls today"


class CannotCancel(Conflict):
    code = "session_not_cancelable"
    title = "This call can no longer be canceled"


def active_session(db: Session, account_id: str) -> CallSession | None:
    return db.scalars(sa.select(CallSession).where(
        CallSession.account_id == account_id, CallSession.status.in_(ACTIVE))
        .order_by(CallSession.created_at.desc()).limit(1)).first()


def latest_session(db: Session, account_id: str) -> CallSession | None:
    return db.scalars(sa.select(CallSession).where(CallSession.account_id == account_id)
                           .order_by(CallSession.created_at.desc(), CallSession.id).limit(1)).first()


def own_session(db: Session, account_id: str, call_session_id: str) -> CallSession:
    """The freelancer's own session. Raises: CallSessionNotFound (also for someone else's: no hint it exists)."""
    call = db.scalar(sa.select(CallSession).where(CallSession.id == call_session_id,
                                                       CallSession.account_id == account_id))
    if call is None:
        raise CallSessionNotFound("there is no such call on your account")
    return call


def check_may_open(db: Session, account: Account, *, settings: Settings, now: dt.datetime) -> str:
    """Whether the (locked) account may open a new session; returns its open request's id.

    Raises: AccountClosed, NothingToVerify, SessionAlreadyActive, DailyLimitReached.
    """
    ensure_open(account)
    request = open_request(db, account.id)
    if request is None or account.verification_status is VerificationStatus.VERIFIED:
        raise NothingToVerify("your account has no verification to complete")
    current = active_session(db, account.id)
    if current is not None:
        raise SessionAlreadyActive(current.id)
    lifts_at = limit_lifts_at(db, account.id, settings=settings, now=now)
    if lifts_at is not None:
        raise DailyLimitReached(f"you have started or booked {settings.daily_session_limit} calls in the last 24 "
                                f"hours, the most we allow; you can start or book another from "
                                f"{lifts_at:%d %B %Y, %H:%M} UTC")
    return request.id


def calls_opened(db: Session, account_id: str, *, now: dt.datetime) -> list[dt.datetime]:
    """When the account started calls, or made bookings it kept, in the last 24 hours, newest first (a booking
    canceled before its time — by the freelancer, a lead or the account's closure — is not one)."""
    return list(db.scalars(sa.select(CallSession.created_at).where(_counted(account_id, now))
                           .order_by(CallSession.created_at.desc())))


def _counted(account_id: str, now: dt.datetime) -> sa.ColumnElement[bool]:
    canceled_booking = sa.and_(CallSession.status == SessionStatus.CANCELED, CallSession.scheduled_for.is_not(None),
                               CallSession.ended_at < CallSession.scheduled_for)
    return sa.and_(CallSession.account_id == account_id, CallSession.created_at > now - LIMIT_WINDOW,
                   sa.not_(canceled_booking))


def limit_lifts_at(db: Session, account_id: str, *, settings: Settings, now: dt.datetime) -> dt.datetime | None:
    """When the daily limit lets the account open a session again; None while it is not reached."""
    opened = calls_opened(db, account_id, now=now)
    if len(opened) < settings.daily_session_limit:
        return None
    # The limit-th newest leaves the 24-hour window first among the ones that keep the count at the limit.
    return opened[settings.daily_session_limit - 1] + LIMIT_WINDOW


def open_call(db: Session, account_id: str, *, settings: Settings, now: dt.datetime,
              system_check: dict[str, Any] | None = None, actor: str = "freelancer") -> CallSession:
    """Lock the account and open a waiting session on its open request (no meeting yet); audited as ``actor``.

    The first step of :func:`start_call`; a simulation (``simulations/``) runs it too, in its own transaction.

    Raises:
        AccountNotFound, AccountClosed, NothingToVerify, SessionAlreadyActive, DailyLimitReached.
    """
    account = lock_account(db, account_id)
    request_id = check_may_open(db, account, settings=settings, now=now)
    attempt = (db.scalar(sa.select(sa.func.count()).select_from(CallSession).where(
        CallSession.verification_request_id == request_id)) or 0) + 1
    call = CallSession(account_id=account_id, verification_request_id=request_id, status=SessionStatus.WAITING,
                       attempt=attempt, system_check=system_check, created_at=now, updated_at=now)
    db.add(call)
    db.flush()
    record(db, actor=actor, action="call_session.started", account_id=account_id,
           subject_type="call_session", subject_id=call.id, details={"attempt": attempt}, now=now)
    return call


@workflow
def start_call(sessions: sessionmaker[Session], gateway: MeetGateway, account_id: str, *, settings: Settings,
               now: dt.datetime, system_check: dict[str, Any] | None = None,
               on_meet_problem: Callable[[MeetConfigurationError], None] | None = None) -> tuple[str, Preparation]:
    """Open a session now and create its meeting (or queue it while Meet's budget is spent).

    A Meet configuration error queues the meeting too: the job creates it once
    Meet is fixed (and /readyz reports the problem meanwhile), so the
    freelancer's place is kept. The error is logged and returned in the preparation.

    ``system_check`` is the summary of the browser/OS verdict the reviewer's queue shows;
    ``on_meet_problem`` hears of a Meet configuration error at once (the app's readiness).

    Raises:
        AccountNotFound, AccountClosed, NothingToVerify, SessionAlreadyActive, DailyLimitReached.
    """
    with unit_of_work(sessions) as db:
        call_id = open_call(db, account_id, settings=settings, now=now, system_check=system_check).id
    try:
        return call_id, prepare_meeting(sessions, gateway, call_id, settings=settings, now=now)
    except MeetConfigurationError as exc:
        log.error("Meet is misconfigured; call session %s waits in the queue: %s", call_id, exc)
        if on_meet_problem is not None:
            on_meet_problem(exc)
        with unit_of_work(sessions) as db:
            call = db.get_one(CallSession, call_id)
            call.meet_status, call.meet_queued_at, call.meet_error = MeetingStatus.QUEUED, now, str(exc)[:500]
        return call_id, Preparation(MeetingStatus.QUEUED, error=str(exc))


@dataclasses.dataclass(frozen=True)
class Canceled:
    """What canceling did: a booking (its invite as Google took it) or a place in the queue."""

    booking: bool
    invite: Pushed


@workflow
def cancel_call(sessions: sessionmaker[Session], gateway: MeetGateway, account_id: str, call_session_id: str, *,
                settings: Settings, now: dt.datetime) -> Canceled:
    """The freelancer cancels their booked call, or leaves the queue before a reviewer has taken the call up.

    Announced (``verification.session.canceled`` by ``freelancer``) and audited;
    a booking's invite is deleted once here and then by the invite job until
    Google takes it; a waiting call's conference is ended by a job.

    Raises:
        CallSessionNotFound: no such call on this account. AccountNotFound, AccountClosed,
        CannotCancel: a reviewer has the call, or it is over.
    """
    with unit_of_work(sessions) as db:
        account = lock_account(db, account_id)
        ensure_open(account)
        call = db.execute(for_update(db, sa.select(CallSession).where(
            CallSession.id == call_session_id, CallSession.account_id == account_id))
            .execution_options(populate_existing=True)).scalar_one_or_none()
        if call is None:
            raise CallSessionNotFound("there is no such call on your account")
        booking = call.status is SessionStatus.SCHEDULED
        if call.status is SessionStatus.WAITING:
            lifecycle.cancel(db, account, call, by=EndReason.FREELANCER, now=now)
            record(db, actor="freelancer", action="call_session.left_queue", account_id=account_id,
                   subject_type="call_session", subject_id=call.id, details={"attempt": call.attempt}, now=now)
        elif booking:  # counted as a booking change, never refused: a time given back helps everyone
            lifecycle.cancel(db, account, call, by=EndReason.FREELANCER, now=now)
            audit_booking_change(db, BOOKING_CANCELED, call, now=now)
        else:
            raise CannotCancel(_why_not_cancelable(call))
    invite = invites.push_invite(sessions, gateway, call_session_id, settings=settings, now=now) if booking \
        else Pushed.DONE
    return Canceled(booking, invite)


def _why_not_cancelable(call: CallSession) -> str:
    if call.status is SessionStatus.IN_PROGRESS:
        return ("a reviewer has taken up your call, so it can no longer be canceled; join the call, or leave it "
                "and the reviewer will record what happened")
    if call.status is SessionStatus.AWAITING_SECOND_REVIEW:
        return "your call is over and its result is being confirmed"
    return "this call is already over"


@dataclasses.dataclass(frozen=True)
class Wait:
    """What the waiting room tells the freelancer."""

    position: int | None          # 1 = next for a reviewer; None once a reviewer has it
    reviewers_now: int
    average_minutes: int
    estimate_minutes: int | None


def reviewers_working(db: Session, *, now: dt.datetime, on_shift: frozenset[int] | None = None) -> int:
    """Reviewers on shift now (``on_shift``, else read here), or who took a call within the last half hour."""
    on = availability.on_shift(db, now=now) if on_shift is None else on_shift
    recent = db.scalars(sa.select(CallSession.claimed_by_id).distinct().join(
        Reviewer, Reviewer.id == CallSession.claimed_by_id).where(
        CallSession.claimed_at > now - RECENTLY_ACTIVE, Reviewer.active.is_(True), HUMAN)).all()
    return len(on | set(recent))


def average_handling(db: Session, *, now: dt.datetime) -> dt.timedelta:
    """Mean length of the calls completed in the last 24 hours (computed here: portable across backends)."""
    rows = db.execute(sa.select(CallSession.started_at, CallSession.ended_at).where(
        CallSession.status == SessionStatus.COMPLETED, CallSession.ended_at > now - HANDLING_WINDOW,
        CallSession.started_at.is_not(None), not_builtin(CallSession.claimed_by_id))
        .order_by(CallSession.ended_at.desc()).limit(200)).all()
    lengths = [ended - started for started, ended in rows if ended > started]
    if not lengths:
        return DEFAULT_HANDLING
    return sum(lengths, dt.timedelta()) / len(lengths)


def waiting_position(db: Session, call: CallSession) -> int | None:
    """Place among the sessions waiting for a reviewer (oldest first); None once claimed or not waiting.

    Calls in progress that nobody has claimed (the freelancer joined first, or a claim was released) wait
    for a reviewer too, so the ones that arrived earlier count as ahead.
    """
    if call.status is not SessionStatus.WAITING:
        return None
    unclaimed = sa.and_(CallSession.status == SessionStatus.IN_PROGRESS, CallSession.claimed_by_id.is_(None))
    ahead = db.scalar(sa.select(sa.func.count()).select_from(CallSession).where(
        sa.or_(CallSession.status == SessionStatus.WAITING, unclaimed),
        sa.tuple_(CallSession.created_at, CallSession.id) < sa.tuple_(call.created_at, call.id)))
    return (ahead or 0) + 1


def estimate_wait(db: Session, call: CallSession, *, now: dt.datetime, on_shift: frozenset[int] | None = None) -> Wait:
    """The call's place, the reviewers working and the wait; no estimate while nobody is working to back one."""
    position = waiting_position(db, call)
    reviewers = reviewers_working(db, now=now, on_shift=on_shift)
    average = average_handling(db, now=now)
    minutes = max(1, round(average.total_seconds() / 60))
    estimate = None
    if position is not None and reviewers > 0:
        # Everyone ahead shares the reviewers working now.
        rounds = math.ceil(position / reviewers)
        estimate = max(1, round((rounds - 1) * average.total_seconds() / 60 + 2))
    return Wait(position, reviewers, minutes, estimate)


def outcome_of(db: Session, call: CallSession) -> str | None:
    """What the freelancer is told: passed, failed, inconclusive, no_show, pending (second review) or None."""
    if call.status is SessionStatus.AWAITING_SECOND_REVIEW:
        return "pending"
    row = db.scalars(sa.select(OutcomeRecord).where(OutcomeRecord.call_session_id == call.id)
                          .order_by(OutcomeRecord.decided_at.desc()).limit(1)).first()
    if row is None:
        return None
    if not row.final:
        return "pending"
    if row.second_decision in ("overturn", "overturned"):
        return "passed"  # a lead overturned the fail
    if row.qa_decision == "overturned":
        return "failed"  # a lead's QA overturned the pass
    return row.result.value
