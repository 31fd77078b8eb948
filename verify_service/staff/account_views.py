"""The "Your account" pages (blueprint ``account``, /review/account), for every signed-in staff member.

Change your password (current password and a fresh code), or make new recovery codes (a fresh code;
they are shown once, on the response). Wrong input never raises: the page says what went wrong
(role="alert"), and failed checks count on the sign-in throttle.
"""

from __future__ import annotations

import datetime as dt
import math

from flask import Blueprint, Response, flash, g, make_response, redirect, render_template, request, url_for

from verify_service.csrf import protect_posts
from verify_service.errors import DomainError, InvalidInput
from verify_service.pages import after_commit, keep_on_refusal, undo, write
from verify_service.registry import db_session, registry
from verify_service.staff.models import Role
from verify_service.staff import account, two_step
from verify_service.staff.auth import client_ip, private, set_session_cookie, staff_page
from verify_service.staff.mail import deliver
from verify_service.staff.setup_views import MAX_PASSWORD_FIELD, input_problem
from verify_service.staff.services import Refusal, SignInStep
from verify_service.staff.views import MAX_CODE_LENGTH

bp = Blueprint("account", __name__, url_prefix="/review/account")
bp.before_request(protect_posts)
bp.after_request(private)


def _page(*, error: str | None = None, status: int = 200) -> Response:
    me = g.staff.reviewer
    left = two_step.remaining_recovery_codes(db_session(), me.id)
    return make_response(render_template("review/account.html", me=me, recovery_left=left, error=error), status)


REFUSALS = {
    Refusal.INVALID_CREDENTIALS: "That is not your current password.",
    # The code that signed you in cannot be used again here: each code works once.
    Refusal.INVALID_CODE: ("That code is not right, or it was already used (each code works once, the one you "
                           "signed in with too). Wait for the next code your authenticator app shows and enter it."),
}


def _refusal(step: SignInStep, now: dt.datetime) -> Response:
    """The page again, saying what was refused (429 with Retry-After while locked out)."""
    if step.refusal is Refusal.LOCKED and step.retry_at is not None:
        seconds = max(1, math.ceil((step.retry_at - now).total_seconds()))
        response = _page(error=f"Too many failed attempts. For your security, try again in {math.ceil(seconds / 60)} "
                               "minute(s).", status=429)
        response.headers["Retry-After"] = str(seconds)
        return response
    return _page(error=REFUSALS.get(step.refusal or Refusal.INVALID_CODE, REFUSALS[Refusal.INVALID_CODE]),
                 status=401)


@bp.get("")
@staff_page(Role.REVIEWER)
def page() -> Response:
    return _page()


@bp.post("/password")
@staff_page(Role.REVIEWER)
def change_password() -> Response:
    db, now = write(), registry().now()
    try:
        changed = account.change_password(
            db, g.staff.reviewer.id, current=request.form.get("current_password", "")[:MAX_PASSWORD_FIELD],
            new=request.form.get("new_password", "")[:MAX_PASSWORD_FIELD],
            confirmation=request.form.get("confirm", "")[:MAX_PASSWORD_FIELD],
            code=request.form.get("code", "")[:MAX_CODE_LENGTH], ip=client_ip(), now=now)
    except InvalidInput as invalid:
        undo()
        return _page(error=input_problem(invalid), status=422)
    except DomainError as problem:
        undo()
        return _page(error=problem.detail, status=problem.status)
    if not changed.ok or changed.token is None:
        assert changed.refusal is not None
        keep_on_refusal("a refused check counts on the sign-in throttle")
        return _refusal(changed.refusal, now)
    after_commit(lambda: deliver(changed.notice, registry().mailer))
    flash("Your password was changed. Every other session of your account has ended.")
    return set_session_cookie(redirect(url_for("account.page"), code=303), changed.token)


@bp.post("/recovery-codes")
@staff_page(Role.REVIEWER)
def recovery_codes() -> Response:
    """The new codes are on this response only (never stored in clear, never shown again)."""
    db, now = write(), registry().now()
    try:
        made = account.regenerate_recovery_codes(db, g.staff.reviewer.id,
                                                 code=request.form.get("code", "")[:MAX_CODE_LENGTH],
                                                 ip=client_ip(), now=now)
    except DomainError as problem:
        undo()
        return _page(error=problem.detail, status=problem.status)
    if not made.ok:
        assert made.refusal is not None
        keep_on_refusal("a refused check counts on the sign-in throttle")
        return _refusal(made.refusal, now)
    after_commit(lambda: deliver(made.notice, registry().mailer))
    return make_response(render_template("review/account_recovery_codes.html", codes=made.recovery_codes))
