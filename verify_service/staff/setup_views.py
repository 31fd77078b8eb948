"""The setup link's page (``/review/setup/<token>``): the owner chooses their password, then two-step follows.

Opening the link changes nothing (mail scanners open links too); the form's
post uses it. Its token is in the path, like a launch link's: the staff
pages send no Referer, are never cached, and the logs scrub the path.
"""

from __future__ import annotations

from flask import Response, make_response, render_template, request

from verify_service.errors import InvalidInput
from verify_service.pages import after_commit, keep_on_refusal, page_unit, undo, write
from verify_service.ratelimit import limiter
from verify_service.registry import db_session, registry
from verify_service.staff import invitations, sessions
from verify_service.staff.auth import client_ip, cookie_name
from verify_service.staff.invitations import SetupLinkUnusable
from verify_service.staff.mail import deliver
from verify_service.staff.views import MAX_CODE_LENGTH, _continue, _refused, bp

MAX_PASSWORD_FIELD = 1100  # a little over the longest password accepted, so "too long" can be said


def _unusable(error: SetupLinkUnusable) -> Response:
    return make_response(render_template("review/setup_unusable.html", state=error.state.value,
                                         hours=registry().settings.staff_invite_hours), error.status)


def _form(token: str, *, error: str | None = None, status: int = 200) -> Response:
    """The form of a usable link (or the page saying why it is not)."""
    try:
        link, reviewer = invitations.open_link(db_session(), token, now=registry().now())
    except SetupLinkUnusable as unusable:
        return _unusable(unusable)
    return make_response(render_template("review/setup.html", token=token, person=reviewer,
                                         purpose=link.purpose.value, needs_code=invitations.needs_code(reviewer),
                                         expires_at=link.expires_at, error=error), status)


@bp.route("/setup/<token>", methods=["GET", "POST"])
@limiter.limit(lambda: registry().settings.sign_in_rate_limit, methods=["POST"])
@page_unit
def setup(token: str) -> Response:
    if request.method == "GET":
        return _form(token)
    db, now = write(), registry().now()
    try:
        done = invitations.complete_setup(
            db, token, password=request.form.get("password", "")[:MAX_PASSWORD_FIELD],
            confirm=request.form.get("confirm", "")[:MAX_PASSWORD_FIELD],
            code=request.form.get("code", "")[:MAX_CODE_LENGTH], ip=client_ip(), now=now)
    except SetupLinkUnusable as unusable:
        undo()
        return _unusable(unusable)
    except InvalidInput as invalid:
        undo()
        return _form(token, error=input_problem(invalid), status=422)
    if not done.step.ok:
        keep_on_refusal("the failed code counts on the throttle")
        link, reviewer = invitations.open_link(db, token, now=now)
        return _refused("review/setup.html", done.step, now, token=token, person=reviewer,
                        purpose=link.purpose.value, needs_code=True, expires_at=link.expires_at)
    sessions.revoke(db, request.cookies.get(cookie_name()), now=now)  # whatever this browser held before
    after_commit(lambda: deliver(done.notice, registry().mailer))
    return _continue(done.step, None)


def input_problem(invalid: InvalidInput) -> str:
    """A sentence for the page: "The new password must be at least 12 characters." """
    if not invalid.errors:
        return invalid.detail
    problem = invalid.errors[0]
    label = {"password": "The new password", "new_password": "The new password"}.get(problem.field)
    return f"{label} {problem.message}." if label else problem.message[:1].upper() + problem.message[1:] + "."
