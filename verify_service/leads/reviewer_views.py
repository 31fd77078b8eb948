"""Lead pages: staff accounts — invite, disable/enable, change role, reset the password or two-step verification.

No password is ever shown here. A new account, and every reset, sends a
single-use link to the account's own address once the change is committed.
When that mail cannot be sent, the change stands, the page says so, and
"Send setup link again" issues a new link (the old one stops working).
"""

from __future__ import annotations

from typing import Any

from flask import Response, flash, g, redirect, render_template, request, url_for
from markupsafe import Markup

from verify_service.errors import DomainError
from verify_service.leads import staffing
from verify_service.leads.views import bp
from verify_service.pages import after_commit, refused, write
from verify_service.registry import db_session, registry
from verify_service.staff.models import Role
from verify_service.staff.auth import actor, staff_page
from verify_service.staff.invitations import LinkPolicy
from verify_service.staff.mail import StaffMail, deliver
from verify_service.web_names import person


def _links() -> LinkPolicy:
    settings = registry().settings
    return LinkPolicy(base_url=settings.base_url, hours=settings.staff_invite_hours)


def _reviewers_page(*, error: DomainError | None = None, form: dict[str, Any] | None = None) -> str:
    me, session = g.staff.reviewer, db_session()
    return render_template("review/lead/reviewers.html", staff=staffing.staff_list(session), me=me,
                           pending=staffing.pending_setups(session), now=registry().now(),
                           invite_hours=registry().settings.staff_invite_hours,
                           roles=[r for r in Role if r is not Role.ADMIN or me.role is Role.ADMIN],
                           error=error, form=form or {})


def _committed(message: Markup, mail: StaffMail | None, *, link: bool = False) -> Response:
    """Back to the list; once the change is committed, mail its owner (never before: a rolled-back change must
    not be announced) and say how that went. ``message`` is markup: the names in it are isolated (``person``)."""

    def announce() -> None:
        if deliver(mail, registry().mailer):
            flash(message)
        elif link and mail is not None:
            flash(Markup("{} But the email with the link could not be sent to {}: the mail server did not take "
                         "it, so nobody has the link. Use “Send setup link again” once mail works.")
                  .format(message, mail.to), "error")
        elif mail is not None:
            flash(Markup("{} The notice email to {} could not be sent.").format(message, mail.to), "error")

    after_commit(announce)
    return redirect(url_for("leads.reviewers"), code=303)


@bp.get("/reviewers")
@staff_page(Role.LEAD)
def reviewers() -> str:
    return _reviewers_page()


@bp.post("/reviewers")
@staff_page(Role.LEAD)
def create_reviewer() -> Response | tuple[str, int]:
    """Create an account; its owner gets the link to choose a password and set up two-step verification."""
    session = write()
    form = {name: request.form.get(name, "").strip() for name in ("email", "display_name", "role")}
    try:
        invited = staffing.create_staff(
            session, email=form["email"][:320], display_name=form["display_name"][:200],
            role=staffing.parse_role(form["role"]), by=g.staff.reviewer, actor=actor(), links=_links(),
            now=registry().now())
    except DomainError as exc:
        return refused(exc, _reviewers_page, form=form)
    added = invited.reviewer
    return _committed(Markup("{} ({}) was added as {}. An email with a link to set up the account was sent to that "
                             "address; it works once, within {} hours.").format(
        person(added.display_name), added.email, added.role.value, registry().settings.staff_invite_hours),
        invited.mail, link=True)


def _target(reviewer_id: int) -> Any:
    """The staff account the post is about. Raises: ReviewerNotFound (a 404)."""
    return staffing.locked_staff(db_session(), reviewer_id)


@bp.post("/reviewers/<int:reviewer_id>/disable")
@staff_page(Role.LEAD)
def disable_reviewer(reviewer_id: int) -> Response | tuple[str, int]:
    session = write()
    name = person(_target(reviewer_id).display_name)
    try:
        notice = staffing.set_active(session, reviewer_id, active=False, by=g.staff.reviewer, actor=actor(),
                                     now=registry().now())
    except DomainError as exc:
        return refused(exc, _reviewers_page)
    return _committed(Markup("{} is disabled; their sessions have ended.").format(name), notice)


@bp.post("/reviewers/<int:reviewer_id>/enable")
@staff_page(Role.LEAD)
def enable_reviewer(reviewer_id: int) -> Response | tuple[str, int]:
    session = write()
    name = person(_target(reviewer_id).display_name)
    try:
        notice = staffing.set_active(session, reviewer_id, active=True, by=g.staff.reviewer, actor=actor(),
                                     now=registry().now())
    except DomainError as exc:
        return refused(exc, _reviewers_page)
    return _committed(Markup("{} is enabled.").format(name), notice)


@bp.post("/reviewers/<int:reviewer_id>/role")
@staff_page(Role.LEAD)
def change_role(reviewer_id: int) -> Response | tuple[str, int]:
    session = write()
    name = person(_target(reviewer_id).display_name)
    try:
        role = staffing.parse_role(request.form.get("role", ""))
        notice = staffing.change_role(session, reviewer_id, role=role, by=g.staff.reviewer, actor=actor(),
                                      now=registry().now())
    except DomainError as exc:
        return refused(exc, _reviewers_page)
    return _committed(Markup("{} is now {}.").format(name, role.value), notice)


@bp.post("/reviewers/<int:reviewer_id>/password/reset")
@staff_page(Role.LEAD)
def reset_password(reviewer_id: int) -> Response | tuple[str, int]:
    """Their password stops working now; they choose a new one through the link sent to their address."""
    session = write()
    name = person(_target(reviewer_id).display_name)
    try:
        mail = staffing.reset_password(session, reviewer_id, by=g.staff.reviewer, actor=actor(), links=_links(),
                                       now=registry().now())
    except DomainError as exc:
        return refused(exc, _reviewers_page)
    return _committed(Markup("The password of {} was reset and their sessions have ended. A link to choose "
                             "a new one was emailed to them.").format(name), mail, link=True)


@bp.post("/reviewers/<int:reviewer_id>/two-step/reset")
@staff_page(Role.LEAD)
def reset_two_step(reviewer_id: int) -> Response | tuple[str, int]:
    """Two-step verification and the password go; the link to their address sets up both again."""
    session = write()
    name = person(_target(reviewer_id).display_name)
    try:
        mail = staffing.reset_two_step(session, reviewer_id, by=g.staff.reviewer, actor=actor(), links=_links(),
                                       now=registry().now())
    except DomainError as exc:
        return refused(exc, _reviewers_page)
    return _committed(Markup("Two-step verification of {} was reset, with their password, and their sessions "
                             "have ended. A link to set up both again was emailed to them.").format(name),
                      mail, link=True)


@bp.post("/reviewers/<int:reviewer_id>/setup-link")
@staff_page(Role.LEAD)
def resend_setup_link(reviewer_id: int) -> Response | tuple[str, int]:
    """A new setup link for an account that has not used its own yet (the earlier one stops working)."""
    session = write()
    name = person(_target(reviewer_id).display_name)
    try:
        mail = staffing.resend_setup_link(session, reviewer_id, by=g.staff.reviewer, actor=actor(),
                                          links=_links(), now=registry().now())
    except DomainError as exc:
        return refused(exc, _reviewers_page)
    return _committed(Markup("A new setup link was emailed to {}; the earlier one no longer works.").format(name),
                      mail, link=True)
