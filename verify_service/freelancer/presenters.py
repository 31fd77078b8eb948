"""What the freelancer's pages show, in the freelancer's words: the capabilities, a call's live status, its outcome.

Pure reads of a unit of work's session, given ``now`` and the settings, so the
pages, their polls and the tests share one wording.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from verify_service.accounts import services as accounts
from verify_service.accounts.domain import HoldKind
from verify_service.accounts.errors import AccountClosed
from verify_service.accounts.models import Hold
from verify_service.accounts.restrictions import isoformat, restrictions_for
from verify_service.calls.availability import Availability, availability
from verify_service.calls.models import CallSession, MeetingStatus
from verify_service.calls.state import SessionStatus
from verify_service.calls.models import OutcomeRecord
from verify_service.freelancer import journey, timezones
from verify_service.freelancer.holds_text import CAPABILITY_TEXT, hold_context, reason_lines
from verify_service.settings import Settings

def phase_of(call: CallSession, outcome: str | None) -> str:
    if call.status is SessionStatus.SCHEDULED:
        return "scheduled"
    if call.status is SessionStatus.AWAITING_SECOND_REVIEW:
        return "reviewing"
    if call.status in (SessionStatus.COMPLETED, SessionStatus.EXPIRED, SessionStatus.CANCELED):
        return "ended"
    if call.meet_status is not MeetingStatus.READY:
        return "preparing"
    if call.status is SessionStatus.IN_PROGRESS:
        return "in_call"
    return "waiting"


MESSAGES = {
    "preparing": ("Preparing your meeting", "We are setting up your Google Meet call. This page updates by itself."),
    "waiting": ("Your call is ready", "Join the call now. A reviewer will join you there as soon as one is free."),
    "in_call": ("A reviewer has your call", "Your reviewer is joining or is already in the call. "
                                            "Keep this page open if you like; the result will show here."),
    "reviewing": ("Your call is over", "Thank you. Your result is being confirmed by a second reviewer; "
                                       "we will let you know by email, usually within one working day."),
    "scheduled": ("Your call is booked", "Join at the time below from this page or from the calendar invite."),
    "ended": ("Your call has ended", "Reload the page to see the result."),
}


def availability_text(on: Availability, *, zone: zoneinfo.ZoneInfo, now: dt.datetime, settings: Settings) -> str:
    """Whether reviewers are on, in one sentence that follows the shifts (times in the freelancer's ``zone``)."""
    if on.around_the_clock:
        return "Reviewers are available 24/7."
    if on.on_now and on.until is not None:
        return f"Reviewers are on shift now until {timezones.moment(on.until, zone, now=now)} (your time, {zone})."
    if on.next_start is not None:
        return (f"No reviewer is on shift right now. The next shift starts "
                f"{timezones.moment(on.next_start, zone, now=now)} (your time, {zone}).")
    return f"No reviewer is on shift right now, and no shift is planned in the next {settings.booking_days} days."


def _waiting_text(on: Availability, wait: journey.Wait | None, *, zone: zoneinfo.ZoneInfo, now: dt.datetime,
                  settings: Settings) -> str:
    if on.around_the_clock and wait is not None and wait.reviewers_now == 0:
        # No shifts to go by, and nobody seen at work lately: say so rather than guess.
        return ("Reviewers take calls at any time of day. None has started a call in the last half hour, "
                "so we cannot estimate your wait yet.")
    return availability_text(on, zone=zone, now=now, settings=settings)


def live_status(db: Session, call: CallSession, *, now: dt.datetime, settings: Settings,
                zone: zoneinfo.ZoneInfo) -> dict[str, Any]:
    """What the waiting room shows of ``call`` (and its poll returns), as of ``now``, times in ``zone``.

    ``estimate_minutes`` is None while nobody is working to back a wait; ``availability`` then says when
    the next shift starts.
    """
    outcome = journey.outcome_of(db, call)
    phase = phase_of(call, outcome)
    on = availability(db, now=now, settings=settings)
    wait = journey.estimate_wait(db, call, now=now, on_shift=on.on_now) if phase in ("waiting", "preparing") else None
    title, message = MESSAGES[phase]
    in_meeting = call.freelancer_joined_at is not None and call.freelancer_left_at is None
    if phase == "in_call" and in_meeting and (call.claimed_by_id is None or call.reviewer_joined_at is None):
        title, message = "You are in the call", "A reviewer will join you in a moment."
    elif phase == "in_call" and call.claimed_by_id is None:
        # The reviewer gave the call back (or nobody took it yet): it waits, in progress, for the next one.
        title, message = MESSAGES["waiting"]
    return {
        "phase": phase, "status": call.status.value, "title": title, "message": message,
        "meet_uri": call.meet_uri if call.meet_status is MeetingStatus.READY else None,
        "position": wait.position if wait else None,
        "estimate_minutes": wait.estimate_minutes if wait else None,
        "reviewers_now": wait.reviewers_now if wait else None,
        "availability": _waiting_text(on, wait, zone=zone, now=now, settings=settings),
        "reviewers_on": on.reviewers_on,
        "on_shift_until": isoformat(on.until) if on.until else None,
        "next_shift_at": isoformat(on.next_start) if on.next_start else None,
        "outcome": outcome,
    }


def outcome_context(db: Session, call: CallSession, *, settings: Settings, now: dt.datetime) -> dict[str, Any]:
    """What the outcome part of the call page needs: the restrictions and holds now, what the pass unblocked,
    the decision's reasons the freelancer can act on, and whether a new call may start."""
    restrictions = restrictions_for(db, call.account_id)
    lifted = db.scalars(sa.select(Hold).where(
        Hold.account_id == call.account_id, Hold.lifted_at.is_not(None), Hold.lifted_at >= call.created_at,
        Hold.kind.in_((HoldKind.VERIFICATION_PENDING, HoldKind.VERIFICATION_FAILED)))).all()
    unblocked = sorted({c for hold in lifted for c in hold.blocks} - set(restrictions.blocked),
                       key=list(CAPABILITY_TEXT).index)
    may_start = True
    try:
        account = accounts.get_account(db, call.account_id)
        journey.check_may_open(db, account, settings=settings, now=now)
    except (journey.NothingToVerify, journey.SessionAlreadyActive, journey.DailyLimitReached,
            AccountClosed):
        may_start = False
    codes = db.scalar(sa.select(OutcomeRecord.reason_codes).where(OutcomeRecord.call_session_id == call.id,
                                                                  OutcomeRecord.final.is_(True)))
    return {"restrictions": restrictions, "unblocked": unblocked, "may_start": may_start,
            "four_eyes": settings.four_eyes_on_fail,
            "reasons": reason_lines(codes or []), **hold_context(restrictions)}
