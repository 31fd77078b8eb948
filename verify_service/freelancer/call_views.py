"""The freelancer's call pages: start now, the waiting room (and its live status), the outcome, canceling."""

from __future__ import annotations

from flask import Response, flash, g, jsonify, make_response, redirect, render_template, request, url_for
from sqlalchemy.orm import Session

from verify_service.accounts import services as accounts
from verify_service.calls.invites import Pushed
from verify_service.freelancer import gate, journey
from verify_service.freelancer.auth import freelancer_key, freelancer_page, pages
from verify_service.freelancer.timezones import PageZone, full_date, page_zone
from verify_service.freelancer.presenters import live_status, outcome_context
from verify_service.freelancer.views import verdict, verdict_context
from verify_service.pages import run_workflow
from verify_service.ratelimit import limiter
from verify_service.review.queue import compact_system_check
from verify_service.registry import db_session, registry
from verify_service.support.classify import Verdict
from verify_service.support.describe import store_links


@pages.post("/calls")
@limiter.limit(lambda: registry().settings.call_start_rate_limit, key_func=freelancer_key)
@freelancer_page
def start_call() -> Response:
    """Start a call now, if this browser may (freelancer/gate.py).

    The verdict comes from this request's own User-Agent and ``Sec-CH-UA*``
    headers plus the hints the page posted in the form; the page's camera
    test result comes in the form too. A refused start answers **409
    Conflict** (the request is well formed, the browser it came from cannot
    hold the call) with a page that says what to do, and creates no call.
    """
    reg = registry()
    judged = verdict(gate.posted_hints(request.form.get("client_hints")))
    # No camera report (JavaScript off, or the test not run) may still start: Google Meet tests the camera itself.
    camera = gate.camera_report(request.form.get("camera"))
    refused = gate.refusal(judged, camera)
    if refused is not None:
        return start_refused(judged, refused)
    try:
        call_id, _ = run_workflow(journey.start_call, reg.sessions, reg.meet_gateway(), g.account_id,
                                  settings=reg.settings, now=reg.now(), system_check=compact_system_check(judged),
                                  on_meet_problem=reg.note_meet_error)
    except journey.SessionAlreadyActive as exc:
        flash("You already have a verification call; here it is.")
        call_id = exc.call_session_id
    return redirect(url_for("freelancer.call", call_id=call_id), code=303)


def start_refused(judged: Verdict, refused: gate.Refusal) -> Response:
    page = render_template("freelancer/start_refused.html", refused=refused, **verdict_context(judged))
    return make_response(page, 409)


@pages.get("/calls/<call_id>")
@freelancer_page
def call(call_id: str) -> str:
    db = db_session()
    row = journey.own_session(db, g.account_id, call_id)
    zone = _zone(db)
    if zone.problem:
        flash(f"{zone.problem} Times here are in {zone.name}.", "error")
    reg = registry()
    judged = verdict()  # on a phone the call is in the Meet app: only its store, no "move the call to your phone"
    outcome = outcome_context(db, row, settings=reg.settings, now=reg.now())
    # "Start a new call" only where the gate would let it start; otherwise the link back to /verify, which
    # says what to fix (the server refuses such a start anyway).
    outcome["may_start"] = outcome["may_start"] and gate.refusal(judged, None) is None
    return render_template("freelancer/call.html", call=row, tz=zone.zone, full_date=full_date,
                           live=live_status(db, row, now=reg.now(), settings=reg.settings, zone=zone.zone),
                           on_phone=judged.verdict == "use_mobile_app", app_links=store_links(judged.os["family"]),
                           **outcome)


def _zone(db: Session) -> PageZone:
    return page_zone(request.args, accounts.get_account(db, g.account_id).timezone)


@pages.get("/calls/<call_id>/status")
@freelancer_page
def call_status(call_id: str) -> Response:
    """Polled by the waiting room every few seconds."""
    db = db_session()
    reg = registry()
    return jsonify(live_status(db, journey.own_session(db, g.account_id, call_id), now=reg.now(),
                               settings=reg.settings, zone=_zone(db).zone))


@pages.post("/calls/<call_id>/cancel")
@freelancer_page
def cancel(call_id: str) -> Response:
    """Cancel a booked call, or leave the queue before a reviewer takes the call up."""
    reg = registry()
    try:
        done = run_workflow(journey.cancel_call, reg.sessions, reg.meet_gateway(), g.account_id, call_id,
                            settings=reg.settings, now=reg.now())
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
