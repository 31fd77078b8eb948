"""Staff sign-in pages (blueprint ``staff``, under /review): password, two-step, enrolment, sign-out, Google.

Every step that succeeds sets a new session cookie (the token is rotated and the previous step's session
revoked by the services). Wrong input never raises: each page shows what went wrong (role="alert").
"""

from __future__ import annotations

import datetime as dt
import math

import segno
from flask import (
    Blueprint, Response, abort, flash, make_response, redirect, render_template, request, session, url_for,
)
from sqlalchemy.orm import Session

from verify_service.csrf import protect_posts
from verify_service.ratelimit import limiter
from verify_service.pages import after_commit, keep_on_refusal, page_unit, write
from verify_service.registry import registry
from verify_service.staff import oidc, services, sessions
from verify_service.staff.auth import (
    clear_session_cookie, client_ip, cookie_name, destination, private, safe_next, set_session_cookie, signed_in,
)
from verify_service.staff.mail import deliver
from verify_service.staff.models import Stage
from verify_service.staff.services import Refusal, SignInStep

bp = Blueprint("staff", __name__, url_prefix="/review")
bp.before_request(protect_posts)
bp.after_request(private)
bp.record_once(lambda state: oidc.init_app(state.app))


@bp.app_context_processor
def _link_hours() -> dict[str, int]:
    """How long a link a lead emails works (the "Ask a lead" text of the sign-in and account pages says it)."""
    return {"staff_link_hours": registry().settings.staff_invite_hours}

MAX_CODE_LENGTH = 64
STEP_EXPIRED = "Your sign-in took too long or was interrupted. Please sign in again."
MESSAGES = {
    Refusal.INVALID_CREDENTIALS: (401, "That email and password do not match an active staff account. "
                                       "Check both and try again."),
    Refusal.INVALID_CODE: (401, "That code is not right, or it was already used. Enter the 6-digit code your "
                                "authenticator app shows now (or one of your unused recovery codes)."),
    Refusal.NOT_ALLOWED: (403, "That Google account cannot sign in here. Use the work account a lead added as "
                               "staff, or sign in with your email and password."),
}


def _target() -> str | None:
    return safe_next(request.values.get("next"))


def _live(stage: Stage) -> sessions.Current | None:
    """This browser's live session if it is at ``stage`` (its idle clock refreshed when due)."""
    found = signed_in(touch=True)
    return found if found is not None and found.staff_session.stage is stage else None


def _continue(step: SignInStep, target: str | None) -> Response:
    """Go to the next step's page carrying the new session token (rotated at every step)."""
    assert step.token is not None
    if step.stage is Stage.ACTIVE:
        location = destination(target)
    elif step.stage is Stage.ENROLLING:
        location = url_for("staff.enrol", next=target)
    else:
        location = url_for("staff.two_step", next=target)
    return set_session_cookie(redirect(location, code=303), step.token)


def _start_again(target: str | None, message: str = STEP_EXPIRED) -> Response:
    flash(message, "error")
    return clear_session_cookie(redirect(url_for("staff.sign_in", next=target), code=303))


def _refused(template: str, step: SignInStep, now: dt.datetime, **context: object) -> Response:
    """``template`` again with the reason (429 with Retry-After while locked)."""
    if step.refusal is Refusal.LOCKED and step.retry_at is not None:
        seconds = max(1, math.ceil((step.retry_at - now).total_seconds()))
        minutes = math.ceil(seconds / 60)
        error = (f"Too many failed attempts. For your security, sign-in is paused; try again in {minutes} "
                 f"minute{'s' if minutes != 1 else ''}.")
        response = make_response(render_template(template, error=error, **context), 429)
        response.headers["Retry-After"] = str(seconds)
        return response
    status, error = MESSAGES.get(step.refusal or Refusal.INVALID_CREDENTIALS, MESSAGES[Refusal.INVALID_CREDENTIALS])
    return make_response(render_template(template, error=error, **context), status)


@bp.route("/sign-in", methods=["GET", "POST"])
@limiter.limit(lambda: registry().settings.sign_in_rate_limit, methods=["POST"])
@page_unit
def sign_in() -> Response:
    target, now = _target(), registry().now()
    if request.method == "GET":
        signed_in_now = _live(Stage.ACTIVE)
        return make_response(render_template(
            "review/sign_in.html", next=target, google=oidc.enabled(), continue_to=destination(target),
            signed_in_as=signed_in_now.reviewer.display_name if signed_in_now is not None else None))
    db = write()
    email = request.form.get("email", "")[:320]
    step = services.sign_in_with_password(db, email, request.form.get("password", ""), ip=client_ip(), now=now)
    if not step.ok:
        keep_on_refusal("a failed sign-in is audited and counts on the throttle")
        return _refused("review/sign_in.html", step, now, next=target, email=email, google=oidc.enabled())
    sessions.revoke(db, request.cookies.get(cookie_name()), now=now)  # whatever this browser held before
    return _continue(step, target)


@bp.route("/sign-in/two-step", methods=["GET", "POST"])
@page_unit
def two_step() -> Response:
    target, now = _target(), registry().now()
    if request.method == "POST":
        write()  # a post checks this browser's session under the lock its code is checked under
    pending = _live(Stage.PASSWORD_OK)
    if pending is None:
        return _start_again(target)
    if request.method == "GET":
        return make_response(render_template("review/two_step.html", next=target))
    db = write()
    step = services.verify_second_step(db, pending.staff_session, request.form.get("code", "")[:MAX_CODE_LENGTH],
                                       now=now)
    if step.refusal is Refusal.STEP_EXPIRED:
        return _start_again(target)
    if not step.ok:
        keep_on_refusal("a wrong code is audited and counts on the throttle")
        return _refused("review/two_step.html", step, now, next=target)
    if step.method == "recovery_code" and step.reviewer_id is not None:
        left = services.remaining_recovery_codes(db, step.reviewer_id)
        flash(f"You signed in with a recovery code; {left} unused code{'s' if left != 1 else ''} left. "
              "Make new ones on the Your account page; if you lost your authenticator, ask a lead to reset your "
              "two-step verification.", "ok")
    return _continue(step, target)


@bp.route("/sign-in/enrol", methods=["GET", "POST"])
@page_unit
def enrol() -> Response:
    """Set up two-step verification. The GET writes too: it stores the secret the QR code shows."""
    target, now = _target(), registry().now()
    db = write()
    pending = _live(Stage.ENROLLING)
    if pending is None:
        return _start_again(target)
    error = None
    if request.method == "POST":
        try:
            enrolled = services.enrol_and_sign_in(db, pending.staff_session, request.form.get("secret", "")[:100],
                                                  request.form.get("code", "")[:MAX_CODE_LENGTH], now=now)
        except services.WrongCode:
            error = ("That code is not right. Enter the 6-digit code your authenticator app shows now "
                     "(it changes every 30 seconds).")
        except services.EnrolmentRestarted as restarted:
            error = restarted.detail
        except services.AlreadyEnrolled:
            return _start_again(target, "Two-step verification is already set up. Sign in with your code.")
        else:
            after_commit(lambda: deliver(enrolled.notice, registry().mailer))  # the owner is told it was set up
            page = make_response(render_template("review/recovery_codes.html", codes=enrolled.recovery_codes,
                                                 continue_to=destination(target)))
            assert enrolled.step.token is not None
            return set_session_cookie(page, enrolled.step.token)
    return _enrol_page(db, pending, target, error, now)


def _enrol_page(db: Session, pending: sessions.Current, target: str | None, error: str | None,
                now: dt.datetime) -> Response:
    try:
        secret = services.start_enrolment(db, pending.reviewer, now=now)
    except services.AlreadyEnrolled:
        return _start_again(target, "Two-step verification is already set up. Sign in with your code.")
    if error:
        keep_on_refusal("the secret this page's QR code shows must stand")
    qr = segno.make(services.provisioning_uri(pending.reviewer, secret), error="m").svg_inline(
        scale=4, border=2, title="QR code to add this account to your authenticator app")
    grouped = " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))
    return make_response(render_template("review/enrol.html", qr=qr, secret=secret, grouped=grouped,
                                         next=target, error=error), 422 if error else 200)


@bp.post("/sign-out")
@page_unit
def sign_out() -> Response:
    services.sign_out(write(), request.cookies.get(cookie_name()), now=registry().now())
    flash("You are signed out.", "ok")
    return clear_session_cookie(redirect(url_for("staff.sign_in"), code=303))


@bp.get("/sign-in/google")
@page_unit
def google() -> Response:
    client = oidc.client()
    if client is None:
        abort(404)
    session["staff_next"] = _target()
    location = oidc.start_url(client, allowed_domain=registry().settings.oidc_allowed_domain)
    if location is None:
        return make_response(render_template(
            "review/sign_in.html", next=_target(), google=True,
            error="Google sign-in is unavailable right now. Sign in with your email and password."), 503)
    return redirect(location, code=303)


@bp.get("/sign-in/google/callback")
@page_unit
def google_callback() -> Response:
    client = oidc.client()
    if client is None:
        abort(404)
    target = safe_next(session.pop("staff_next", None))
    claims = oidc.verified_claims(client)
    db, now = write(), registry().now()
    step = services.sign_in_with_google(db, claims, allowed_domain=registry().settings.oidc_allowed_domain,
                                        ip=client_ip(), now=now)
    if not step.ok:
        keep_on_refusal("a refused Google sign-in is audited")
        return _refused("review/sign_in.html", step, now, next=target, google=True)
    sessions.revoke(db, request.cookies.get(cookie_name()), now=now)
    return _continue(step, target)

