"""The reviewer dashboard: the queue, claiming, the call page, the decision (blueprint ``review``, /review).

Views parse the form, call one service in the page's unit of work (the page
boundary, :mod:`verify_service.pages`: ``pages.write()`` where the change
starts, one commit as the page answers), and redirect (303) or render.
Claiming and deciding are workflows (they ask Meet): the views call them
through ``pages.run_workflow``, holding no transaction across them. The
queue and the session page's attendance are polled: they only read.
Services raise domain errors; :func:`_problem` shows them on a dashboard
page with the way back (problem+json for the page scripts).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, Response, flash, g, jsonify, make_response, redirect, render_template, request, url_for

import logging

from integrations.google_meet import MeetConfigurationError, MeetError, MeetGateway
from verify_service.calls.models import CallSession
from verify_service.calls.state import Outcome, SessionStatus
from verify_service.csrf import protect_posts
from verify_service.errors import DomainError, InvalidInput, domain_error_response, prefers_json
from verify_service.pages import run_workflow, short_write, undo, write
from verify_service.registry import db_session, registry
from verify_service.review import claims, decisions, evidence, identity, quality, queue
from verify_service.review.evidence import DecisionPolicy
from verify_service.review.models import DocumentType
from verify_service.staff.models import Reviewer, Role
from verify_service.review.reasons import OUTCOME_LABELS
from verify_service.staff.auth import private, staff_page

log = logging.getLogger(__name__)

bp = Blueprint("review", __name__, url_prefix="/review")
bp.before_request(protect_posts)
bp.after_request(private)

# The session page shows the profile photo from the account service's (https) host.
SESSION_PAGE_CSP = "default-src 'self'; img-src 'self' https:; object-src 'none'; frame-ancestors 'none'; " \
                   "base-uri 'none'; form-action 'self'"


@bp.errorhandler(DomainError)
def _problem(error: DomainError) -> Response:
    if prefers_json():
        return domain_error_response(error)
    call_id = (request.view_args or {}).get("call_id")
    return make_response(render_template("review/problem.html", error=error, call_id=call_id), error.status)


def _me() -> Reviewer:
    """The signed-in staff member (set by ``staff_page``)."""
    reviewer: Reviewer = g.staff.reviewer
    return reviewer


# ---------------------------------------------------------------- the queue

@bp.get("", endpoint="queue")
@staff_page(Role.REVIEWER)
def queue_page() -> Any:
    reg = registry()
    rows = queue.waiting_sessions(db_session(), now=reg.now(),
                                  ttl=dt.timedelta(minutes=reg.settings.session_ttl_minutes))
    if prefers_json():  # queue.js, every few seconds
        return jsonify({"count": len(rows), "sessions": [row.as_json() for row in rows],
                        "html": render_template("review/_queue_rows.html", rows=rows)})
    return render_template("review/queue.html", rows=rows)


@bp.get("/mine")
@staff_page(Role.REVIEWER)
def mine() -> str:
    found = queue.my_sessions(db_session(), _me().id, now=registry().now())
    return render_template("review/mine.html", mine=found)


def _gateway(nothing_done: str) -> MeetGateway:
    """The Meet gateway, or a clear refusal when Meet is misconfigured (``nothing_done`` says what did not happen).

    Raises: MeetUnavailable.
    """
    reg = registry()
    try:
        return reg.meet_gateway()
    except MeetConfigurationError as exc:
        reg.note_meet(str(exc))
        raise claims.MeetUnavailable("Meet is not configured correctly, so nobody can be added to calls and "
                                     f"attendance cannot be read. Tell an administrator; {nothing_done}.") from exc


@bp.post("/sessions/<call_id>/claim")
@staff_page(Role.REVIEWER)
def claim(call_id: str) -> Response:
    reg = registry()
    gateway = _gateway("nothing was claimed")
    run_workflow(claims.take_session, reg.sessions, gateway, call_id, reviewer_id=_me().id, now=reg.now())
    return redirect(url_for("review.session", call_id=call_id), code=303)


@bp.post("/sessions/<call_id>/release")
@staff_page(Role.REVIEWER)
def release(call_id: str) -> Response:
    decisions.release_session(write(), call_id, reviewer_id=_me().id, now=registry().now())
    flash("Released: the session is back in the queue.")
    return redirect(url_for("review.queue"), code=303)


# ---------------------------------------------------------------- one session

def _render_session(call_id: str, *, status: int = 200, errors: dict[str, str] | None = None,
                    form: dict[str, Any] | None = None, evidence_errors: list[str] | None = None,
                    attendance_note: str | None = None) -> Response:
    reg = registry()
    page = queue.session_page(db_session(), call_id, _me())
    policy = DecisionPolicy.from_settings(reg.settings)
    ticked = {i for i in (form or {}).get("checklist", []) if i.isdigit() and int(i) < len(policy.checklist)}
    needs = evidence.pass_needs(db_session(), page.call, ticked=len(ticked), policy=policy, now=reg.now())
    response = make_response(render_template(
        "review/session.html", page=page, me=_me(), may_act=page.may_act(_me()), today=reg.now().date(),
        checklist=reg.settings.checklist, pass_needs=needs, doc_types=list(DocumentType),
        four_eyes=policy.four_eyes, errors=errors or {}, form=form or {}, evidence_errors=evidence_errors or [],
        attendance_note=attendance_note, pass_requires_id=policy.pass_requires_id,
        no_show_minutes=reg.settings.no_show_wait_minutes), status)
    response.headers["Content-Security-Policy"] = SESSION_PAGE_CSP
    return response


def _second_review_attendance(call_id: str) -> str | None:
    """A fail waiting for its second review is judged on attendance as Meet reports it now: re-read it."""
    reg = registry()
    call = db_session().get(CallSession, call_id)  # leads see every session: no further check needed here
    if call is None or call.status is not SessionStatus.AWAITING_SECOND_REVIEW or not _me().role.includes(Role.LEAD):
        return None
    try:
        # The page's read ends first: what it reads next includes the new attendance.
        run_workflow(claims.refresh_attendance, reg.sessions, reg.meet_gateway(), call_id, settings=reg.settings,
                     now=reg.now())
    except MeetError as exc:  # MeetConfigurationError included: the page still shows the last reading
        log.warning("attendance of call session %s could not be re-read for its second review: %s", call_id, exc)
        return "Meet could not be read just now: this is attendance as last read."
    return "Read from Meet just now."


@bp.get("/sessions/<call_id>", endpoint="session")
@staff_page(Role.REVIEWER)
def session_page(call_id: str) -> Response:
    """The session page; its claimer's view of it is claim activity (written when due, in a short unit)."""
    now = registry().now()
    response = _render_session(call_id, attendance_note=_second_review_attendance(call_id))
    me = _me().id
    call = db_session().get(CallSession, call_id)  # loaded by the page: no query
    if call is not None and claims.activity_due(call, reviewer_id=me, now=now):
        short_write(lambda session: claims.note_activity(session, call_id, reviewer_id=me, now=now))
    return response


@bp.get("/sessions/<call_id>/attendance")
@staff_page(Role.REVIEWER)
def attendance(call_id: str) -> Response:
    """Polled by the session page: who is in the call (a read: not claim activity)."""
    page = queue.session_page(db_session(), call_id, _me())
    return jsonify({"status": page.call.status.value,
                    "html": render_template("review/_attendance.html", page=page)})


@bp.post("/sessions/<call_id>/identity-document")
@staff_page(Role.REVIEWER)
def identity_document(call_id: str) -> Response:
    reg = registry()
    try:
        form = identity.DocumentForm.parse(request.form)
        recorded = identity.record_document(write(), call_id, form, reviewer_id=_me().id,
                                            pepper=reg.settings.identity_pepper, now=reg.now())
    except InvalidInput as exc:  # the number is never sent back
        undo()
        kept = {k: request.form.get(k, "") for k in ("doc_type", "issuing_country", "expires_on")}
        return _render_session(call_id, status=422, errors=_field_errors(exc), form=kept)
    flash(f"ID document saved (number ending {recorded.document.last4}).")
    if recorded.matching_accounts:
        flash("Warning: this document is already on another account (" + ", ".join(recorded.matching_accounts)
              + "). One account per person: consider failing with “suspected duplicate”.", "error")
    if recorded.expired:
        flash("Warning: this document has expired.", "error")
    return redirect(url_for("review.session", call_id=call_id, _anchor="decision"), code=303)


@bp.post("/sessions/<call_id>/outcome")
@staff_page(Role.REVIEWER)
def outcome(call_id: str) -> Response:
    reg = registry()
    values = request.form
    try:
        result = _result(values.get("result", ""))
        ticked = set(values.getlist("checklist"))
        answers = {question: str(i) in ticked for i, question in enumerate(reg.settings.checklist)}
        recorded = run_workflow(claims.decide, reg.sessions, _gateway("nothing was recorded"), call_id,
                                reviewer_id=_me().id, result=result, notes=values.get("notes"),
                                reason_codes=values.getlist("reason_codes"), checklist=answers,
                                settings=reg.settings, now=reg.now())
    except InvalidInput as exc:
        if prefers_json():
            return domain_error_response(exc)
        kept = {"result": values.get("result", ""), "reason_codes": values.getlist("reason_codes"),
                "notes": values.get("notes", ""), "checklist": values.getlist("checklist")}
        # The workflow ended the page's read: the page shows attendance as the decision re-read it.
        return _render_session(call_id, status=422, errors=_field_errors(exc), form=kept,
                               evidence_errors=[e.message for e in exc.errors] if exc.code == "evidence_missing"
                               else None)
    flash("Recorded: " + OUTCOME_LABELS[recorded.result.value].lower()
          + ("; a lead will review the fail." if not recorded.final else "."))
    return redirect(url_for("review.queue"), code=303)


def _result(value: str) -> Outcome:
    """Raises: InvalidInput."""
    try:
        return Outcome(value)
    except ValueError:
        raise InvalidInput.for_field("result", "choose passed, failed, inconclusive or no show") from None


def _field_errors(error: InvalidInput) -> dict[str, str]:
    if error.code == "evidence_missing":
        return {}  # listed with the decision (``evidence_errors``), not against form fields
    return {e.field: e.message for e in error.errors} or {"form": error.detail}


@bp.post("/sessions/<call_id>/cancel")
@staff_page(Role.LEAD)
def cancel(call_id: str) -> Response:
    """A lead cancels a call that is not over (the freelancer is told through the account service)."""
    decisions.cancel_by_lead(write(), call_id, lead_id=_me().id, reason=request.form.get("reason", ""),
                             now=registry().now())
    flash("The call is canceled.")
    return redirect(url_for("review.session", call_id=call_id), code=303)


# ---------------------------------------------------------------- second reviews (leads)

@bp.get("/second-reviews")
@staff_page(Role.LEAD)
def second_reviews() -> str:
    return render_template("review/second_reviews.html", pending=queue.second_reviews(db_session()), me=_me())


@bp.post("/outcomes/<outcome_id>/second-review")
@staff_page(Role.LEAD)
def second_review(outcome_id: str) -> Response:
    decision = request.form.get("decision", "")
    decisions.second_review(write(), outcome_id, lead_id=_me().id, decision=decision,  # type: ignore[arg-type]
                            notes=request.form.get("notes"), now=registry().now())
    flash("Fail confirmed: the failed hold is placed." if decision == "confirm"
          else "Fail overturned: the account counts as verified.")
    return redirect(url_for("review.second_reviews"), code=303)


# ---------------------------------------------------------------- quality review of passes (leads)

@bp.get("/quality")
@staff_page(Role.LEAD)
def quality_reviews() -> str:
    return render_template("review/quality.html", pending=quality.qa_list(db_session()), me=_me())


@bp.post("/outcomes/<outcome_id>/quality")
@staff_page(Role.LEAD)
def quality_review(outcome_id: str) -> Response:
    decision = request.form.get("decision", "")
    quality.qa_review(write(), outcome_id, lead_id=_me().id, decision=decision,  # type: ignore[arg-type]
                      reason_codes=request.form.getlist("reason_codes"), notes=request.form.get("notes"),
                      now=registry().now())
    flash("Pass confirmed." if decision == "confirm"
          else "Pass overturned: the account now has the failed hold, and the marketplace is told.")
    return redirect(url_for("review.quality_reviews"), code=303)
