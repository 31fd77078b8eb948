"""The freelancer's call pages: start now, the waiting room (and its live status), the outcome, canceling."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Response, flash, g, jsonify, redirect, render_template, request, url_for
from sqlalchemy.orm import Session

from verify_service.accounts import services as accounts
from verify_service.accounts.domain import HoldKind
from verify_service.accounts.models import Hold
from verify_service.calls.invites import Pushed
from verify_service.calls.models import CallSession, MeetingStatus
from verify_service.calls.state import SessionStatus
from verify_service.freelancer import journey
from verify_service.freelancer.auth import freelancer_page, pages
from verify_service.freelancer.booking_views import time_zone
from verify_service.freelancer.views import CAPABILITY_TEXT, verdict
from verify_service.ratelimit import freelancer_key, limiter
from verify_service.review.queue import compact_system_check
from verify_service.registry import db_session, registry


@pages.post("/calls")
@limiter.limit(lambda: registry().settings.call_start_rate_limit, key_func=freelancer_key)
@freelancer_page
def start_call() -> Response:
    reg = registry()
    try:
        call_id, _ = journey.start_call(reg.sessions, reg.meet_gateway(), g.account_id, settings=reg.settings,
                                        now=reg.now(), system_check=compact_system_check(verdict().as_dict()),
                                        on_meet_problem=reg.note_meet_error)
    except journey.SessionAlreadyActive as exc:
        flash("You already have a verification call; here it is.")
        call_id = exc.call_session_id
    return redirect(url_for("freelancer.call", call_id=call_id), code=303)


@pages.get("/calls/<call_id>")
@freelancer_page
def call(call_id: str) -> str:
    session = db_session()
    row = journey.own_session(session, g.account_id, call_id)
    tz, _ = time_zone(request.args, accounts.get_account(session, g.account_id).timezone)
    return render_template("freelancer/call.html", call=row, live=live_status(session, row), tz=tz,
                           tz_name=str(tz), **outcome_context(session, row))


@pages.get("/calls/<call_id>/status")
@freelancer_page
def call_status(call_id: str) -> Response:
    """Polled by the waiting room every few seconds."""
    session = db_session()
    return jsonify(live_status(session, journey.own_session(session, g.account_id, call_id)))


@pages.post("/calls/<call_id>/cancel")
@freelancer_page
def cancel(call_id: str) -> Response:
    """Cancel a booked call, or leave the queue before a reviewer takes the call up."""
    reg = registry()
    try:
        done = journey.cancel_call(reg.sessions, reg.meet_gateway(), g.account_id, call_id, settings=reg.settings,
                                   now=reg.now())
    except journey.CannotCancel as exc:
        flash(exc.detail[:1].upper() + exc.detail[1:] + ".", "error")
        return redirect(url_for("freelancer.call", call_id=call_id), code=303)
    if not done.booking:
        flash("You have left the queue. You can start a new call or book a time whenever you are ready.")
    elif done.invite is Pushed.DONE:
        flash("Your appointment is canceled, and its calendar invite removed. You can book another time or start "
              "a call now.")
    else:
        flash("Your appointment is canceled. We could not remove the calendar invite just yet; we will keep "
              "trying, and you can ignore it meanwhile.")
    return redirect(url_for("freelancer.status"), code=303)


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


def live_status(session: Session, call: CallSession) -> dict[str, Any]:
    outcome = journey.outcome_of(session, call)
    phase = phase_of(call, outcome)
    wait = journey.estimate_wait(session, call, now=registry().now()) if phase in ("waiting", "preparing") else None
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
        "outcome": outcome,
    }


def outcome_context(session: Session, call: CallSession) -> dict[str, Any]:
    """What the outcome part of the call page needs: the restrictions now, and what the pass unblocked."""
    restrictions = accounts.restrictions_for(session, call.account_id)
    lifted = session.scalars(sa.select(Hold).where(
        Hold.account_id == call.account_id, Hold.lifted_at.is_not(None), Hold.lifted_at >= call.created_at,
        Hold.kind.in_((HoldKind.VERIFICATION_PENDING, HoldKind.VERIFICATION_FAILED)))).all()
    unblocked = sorted({c for hold in lifted for c in hold.blocks} - set(restrictions.blocked),
                       key=list(CAPABILITY_TEXT).index)
    may_start = True
    try:
        account = accounts.get_account(session, call.account_id)
        journey.check_may_open(session, account, settings=registry().settings, now=registry().now())
    except (journey.NothingToVerify, journey.SessionAlreadyActive, journey.DailyLimitReached,
            accounts.AccountClosed):
        may_start = False
    return {"restrictions": restrictions, "unblocked": unblocked, "capability_text": CAPABILITY_TEXT,
            "may_start": may_start}
