"""Lead pages: staff accounts — create, disable/enable, reset two-step verification, change role."""

from __future__ import annotations

from typing import Any

from flask import Response, g, render_template, request

from verify_service.errors import DomainError
from verify_service.leads import staffing
from verify_service.leads.views import bp, done, refused, write_session
from verify_service.registry import db_session, registry
from verify_service.review.models import Role
from verify_service.staff.auth import actor, staff_page


def _reviewers_page(*, error: DomainError | None = None, form: dict[str, Any] | None = None,
                    created: tuple[Any, str] | None = None) -> str:
    me = g.staff.reviewer
    return render_template("review/lead/reviewers.html", staff=staffing.staff_list(db_session()), me=me,
                           roles=[r for r in Role if r is not Role.ADMIN or me.role is Role.ADMIN],
                           error=error, form=form or {}, created=created)


@bp.get("/reviewers")
@staff_page(Role.LEAD)
def reviewers() -> str:
    return _reviewers_page()


@bp.post("/reviewers")
@staff_page(Role.LEAD)
def create_reviewer() -> str | tuple[str, int]:
    """Create an account; the temporary password is shown once, on this response (never in a cookie or URL)."""
    session = write_session()
    form = {name: request.form.get(name, "").strip() for name in ("email", "display_name", "role")}
    try:
        reviewer, password = staffing.create_staff(
            session, email=form["email"][:320], display_name=form["display_name"][:200],
            role=staffing.parse_role(form["role"]), by=g.staff.reviewer, actor=actor(), now=registry().now())
    except DomainError as exc:
        return refused(exc, _reviewers_page, form=form)
    session.commit()
    return _reviewers_page(created=(reviewer, password))


def _target(reviewer_id: int) -> Any:
    """The staff account the post is about. Raises: StaffNotFound (a 404)."""
    return staffing.locked_staff(db_session(), reviewer_id)


@bp.post("/reviewers/<int:reviewer_id>/disable")
@staff_page(Role.LEAD)
def disable_reviewer(reviewer_id: int) -> Response | tuple[str, int]:
    session = write_session()
    name = _target(reviewer_id).display_name
    try:
        staffing.set_active(session, reviewer_id, active=False, by=g.staff.reviewer, actor=actor(),
                            now=registry().now())
    except DomainError as exc:
        return refused(exc, _reviewers_page)
    return done(f"{name} is disabled; their sessions have ended.", "leads.reviewers")


@bp.post("/reviewers/<int:reviewer_id>/enable")
@staff_page(Role.LEAD)
def enable_reviewer(reviewer_id: int) -> Response | tuple[str, int]:
    session = write_session()
    name = _target(reviewer_id).display_name
    try:
        staffing.set_active(session, reviewer_id, active=True, by=g.staff.reviewer, actor=actor(),
                            now=registry().now())
    except DomainError as exc:
        return refused(exc, _reviewers_page)
    return done(f"{name} is enabled.", "leads.reviewers")


@bp.post("/reviewers/<int:reviewer_id>/role")
@staff_page(Role.LEAD)
def change_role(reviewer_id: int) -> Response | tuple[str, int]:
    session = write_session()
    name = _target(reviewer_id).display_name
    try:
        role = staffing.parse_role(request.form.get("role", ""))
        staffing.change_role(session, reviewer_id, role=role, by=g.staff.reviewer, actor=actor(),
                             now=registry().now())
    except DomainError as exc:
        return refused(exc, _reviewers_page)
    return done(f"{name} is now {role.value}.", "leads.reviewers")


@bp.post("/reviewers/<int:reviewer_id>/two-step/reset")
@staff_page(Role.LEAD)
def reset_two_step(reviewer_id: int) -> Response | tuple[str, int]:
    """They set two-step verification up again at their next sign-in (the staff service ends their sessions)."""
    from verify_service.staff.services import (
        reset_two_step as reset,  # the staff sign-in feature owns this
    )

    session = write_session()
    target = _target(reviewer_id)
    try:
        staffing.check_may_manage(g.staff.reviewer, target, what="reset two-step verification of")
        reset(session, reviewer_id, actor=actor(), now=registry().now())
    except DomainError as exc:
        return refused(exc, _reviewers_page)
    return done(f"Two-step verification of {target.display_name} was reset; they set it up again at their next "
                "sign-in.", "leads.reviewers")
