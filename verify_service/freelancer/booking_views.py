"""Book a time: the next days' free 15-minute slots in the freelancer's time zone; booking and rescheduling."""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo

from flask import Response, flash, g, redirect, render_template, request, url_for
from sqlalchemy.orm import Session

from verify_service.accounts import services as accounts
from verify_service.accounts.domain import VerificationStatus
from verify_service.accounts.models import Account
from verify_service.calls import booking
from verify_service.calls.availability import availability
from verify_service.calls.invites import Pushed
from verify_service.calls.state import SessionStatus
from verify_service.errors import Conflict, InvalidInput
from verify_service.freelancer import journey
from verify_service.freelancer.auth import freelancer_page, pages
from verify_service.freelancer.presenters import availability_text
from verify_service.freelancer.timezones import page_zone
from verify_service.pages import run_workflow
from verify_service.registry import db_session, registry


@pages.get("/book")
@freelancer_page
def book() -> str | Response:
    db = db_session()
    reg = registry()
    account = accounts.get_account(db, g.account_id)
    zone = page_zone(request.args, account.timezone)
    if zone.problem:
        flash(f"{zone.problem} The times below are in {zone.name}.", "error")
    moving = None
    if request.args.get("reschedule"):
        moving = journey.own_session(db, g.account_id, request.args["reschedule"])
    elif (refusal := _nothing_to_book(db, account)) is not None:
        flash(refusal)
        return redirect(url_for("freelancer.status"), code=303)
    days = booking.group_by_day(booking.available_slots(db, now=reg.now(), settings=reg.settings, tz=zone.zone))
    wanted = request.args.get("day")
    selected = next((d for d in days if d[0].isoformat() == wanted), days[0] if days else None)
    on_now = "" if days else availability_text(availability(db, now=reg.now(), settings=reg.settings),
                                               zone=zone.zone, now=reg.now(), settings=reg.settings)
    # A refused tz is not guessed over: the page keeps the zone it says, and its script leaves it.
    return render_template("freelancer/book.html", days=days, selected=selected, tz=zone.name,
                           tz_chosen=zone.chosen or zone.problem is not None, on_now=on_now, moving=moving,
                           active=None if moving else journey.active_session(db, g.account_id))


@pages.post("/book")
@freelancer_page
def book_post() -> Response:
    zone = page_zone(request.form, None)
    back = {"day": request.form.get("day") or None, "reschedule": request.form.get("reschedule") or None}
    if zone.problem:
        flash(f"{zone.problem} Nothing was booked: please choose your time again.", "error")
        return redirect(url_for("freelancer.book", **back), code=303)
    tz = zone.zone
    back["tz"] = zone.name
    try:
        start = dt.datetime.fromisoformat(request.form.get("start", ""))
        if start.tzinfo is None:
            raise ValueError("no time zone")
    except ValueError:
        flash("Please choose one of the times offered.", "error")
        return redirect(url_for("freelancer.book", **back), code=303)
    try:
        call_id, message = _book_or_move(request.form.get("reschedule"), start.astimezone(dt.UTC), tz)
    except (InvalidInput, Conflict) as exc:
        flash(_booking_problem(exc), "error")
        return redirect(url_for("freelancer.book", **back), code=303)
    flash(message)
    return redirect(url_for("freelancer.call", call_id=call_id), code=303)


def _nothing_to_book(db: Session, account: Account) -> str | None:
    """Why a new booking is not offered (verified, nothing to verify, the daily limit); None when it is."""
    reg = registry()
    if journey.active_session(db, account.id) is not None:
        return None  # the booking page shows the call they have
    try:
        journey.check_may_open(db, account, settings=reg.settings, now=reg.now())
    except journey.NothingToVerify:
        if account.verification_status is VerificationStatus.VERIFIED:
            return "Your identity is verified: there is no call to book."
        if account.verification_status is VerificationStatus.FAILED:
            return (f"Your last verification did not pass. To verify again, ask {reg.settings.marketplace_name}'s "
                    "support team for a new verification; then you can book a call.")
        return "No verification is needed on your account right now, so there is no call to book."
    except journey.DailyLimitReached:
        return "You have reached the most calls allowed in a day; this page says when you can book again."
    except journey.SessionAlreadyActive:
        return None
    return None


def _book_or_move(reschedule: str | None, start: dt.datetime, tz: zoneinfo.ZoneInfo) -> tuple[str, str]:
    """Book, or move the booking; the call's id and what to tell the freelancer."""
    reg = registry()
    if reschedule:
        call = journey.own_session(db_session(), g.account_id, reschedule)
        if call.status is not SessionStatus.SCHEDULED:
            raise InvalidInput.for_field("reschedule", "only a booked call can be moved")
        invite = run_workflow(booking.reschedule_booking, reg.sessions, reg.meet_gateway(), g.account_id, call.id,
                              start=start, settings=reg.settings, now=reg.now(), tz=tz)
        if invite is Pushed.DONE:
            return call.id, "Your call is moved, and its calendar invite updated."
        return call.id, ("Your call is moved. We could not update the calendar invite just yet; we will keep "
                         "trying. This page always shows the right time.")
    call_id = run_workflow(booking.book_slot, reg.sessions, reg.meet_gateway(), g.account_id, start=start,
                           settings=reg.settings, now=reg.now(), tz=tz, on_meet_problem=reg.note_meet_error,
                           admit=functools.partial(journey.check_may_open, settings=reg.settings, now=reg.now()))
    return call_id, "Your call is booked. We are sending a calendar invite to your email address."


def _booking_problem(exc: InvalidInput | Conflict) -> str:
    if isinstance(exc, journey.SessionAlreadyActive):
        return "You already have a verification call. Cancel it first if you would like a different time."
    if isinstance(exc, journey.DailyLimitReached | journey.NothingToVerify | booking.BookingChangesLimit):
        return exc.detail[:1].upper() + exc.detail[1:] + "."
    if isinstance(exc, booking.SlotFull):
        return "Sorry, that time was just taken. Please choose another."
    return "That time cannot be booked any more. Please choose one of the times offered."
