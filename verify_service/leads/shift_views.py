"""Lead pages: weekly recurring shifts per reviewer, in the reviewer's time zone."""

from __future__ import annotations

from typing import Any

from flask import Response, render_template, request

from verify_service.errors import DomainError
from verify_service.leads import shifts as weekly
from verify_service.leads.views import bp, done
from verify_service.pages import refused, write
from verify_service.registry import db_session, registry
from verify_service.staff.models import Reviewer, Role
from verify_service.staff.auth import actor, staff_page


def _form() -> dict[str, str]:
    return {name: request.form.get(name, "") for name in ("reviewer_id", "weekday", "start", "end", "time_zone")}


def _plan(form: dict[str, str]) -> weekly.ShiftPlan:
    """Raises: InvalidInput."""
    return weekly.parse_plan(form["reviewer_id"], form["weekday"], form["start"], form["end"], form["time_zone"])


def _shifts_page(*, error: DomainError | None = None, form: dict[str, Any] | None = None) -> str:
    return render_template("review/lead/shifts.html", plans=weekly.plans(db_session(), now=registry().now()),
                           weekdays=weekly.WEEKDAYS, describe=weekly.describe,
                           crosses_midnight=weekly.crosses_midnight, error=error, form=form or {})


@bp.get("/shifts")
@staff_page(Role.LEAD)
def shifts() -> str:
    return _shifts_page()


@bp.post("/shifts")
@staff_page(Role.LEAD)
def add_shift() -> Response | tuple[str, int]:
    session = write()
    form = _form()
    try:
        shift = weekly.add_recurring_shift(session, _plan(form), actor=actor(), now=registry().now())
    except DomainError as exc:
        return refused(exc, _shifts_page, form=form)
    return done(f"Weekly shift added: {weekly.describe(shift)}.", "leads.shifts")


def _edit_page(shift_id: int, *, error: DomainError | None = None, form: dict[str, Any] | None = None) -> str:
    shift = weekly.get_recurring_shift(db_session(), shift_id)
    reviewer = db_session().get(Reviewer, shift.reviewer_id)
    return render_template("review/lead/shift_edit.html", shift=shift, reviewer=reviewer, weekdays=weekly.WEEKDAYS,
                           error=error,
                           form=form or {"weekday": str(shift.weekday), "start": f"{shift.start_time:%H:%M}",
                                         "end": f"{shift.end_time:%H:%M}", "time_zone": shift.time_zone})


@bp.get("/shifts/<int:shift_id>")
@staff_page(Role.LEAD)
def shift_edit(shift_id: int) -> str:
    return _edit_page(shift_id)


@bp.post("/shifts/<int:shift_id>")
@staff_page(Role.LEAD)
def change_shift(shift_id: int) -> Response | tuple[str, int]:
    session = write()
    shift = weekly.get_recurring_shift(session, shift_id)  # unknown: 404
    form = {**_form(), "reviewer_id": str(shift.reviewer_id)}
    try:
        shift = weekly.change_recurring_shift(session, shift_id, _plan(form), actor=actor(), now=registry().now())
    except DomainError as exc:
        return refused(exc, lambda **kw: _edit_page(shift_id, **kw), form=form)
    return done(f"Weekly shift changed: {weekly.describe(shift)}. Its coming shifts were replaced.", "leads.shifts")


@bp.post("/shifts/<int:shift_id>/remove")
@staff_page(Role.LEAD)
def remove_shift(shift_id: int) -> Response:
    removed = weekly.remove_recurring_shift(write(), shift_id, actor=actor(), now=registry().now())
    return done(f"Weekly shift removed, with its {removed} coming shift{'s' if removed != 1 else ''}. "
                "Calls already booked stay booked.", "leads.shifts")
