"""Lead pages (blueprint ``leads``, /review/lead): accounts and holds, webhook deliveries, shifts, reviewers, metrics.

Every view needs the lead role (``@staff_page(Role.LEAD)``); admins pass too.
A post runs one unit of work in the page boundary (:mod:`verify_service.pages`):
it starts its write transaction (``pages.write()``), calls one service, and
redirects (303) to the page with a notice (:func:`done`); the boundary commits
once as the page answers. When the service refuses (bad input, a conflict, a
rule), ``pages.refused`` rolls the transaction back and shows the page again
with the problem in a ``role="alert"`` notice and the status of the error;
nothing changed.
The routes live in the sibling ``*_views`` modules (``leads/blueprint.py`` imports them).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, Response, flash, redirect, url_for

from verify_service.csrf import protect_posts
from verify_service.errors import InvalidInput
from verify_service.staff.auth import private

bp = Blueprint("leads", __name__, url_prefix="/review/lead")
bp.before_request(protect_posts)
bp.after_request(private)

TEXT_MAX = 500  # hold reasons and lift reasons (their columns' length)


def done(message: str, endpoint: str, **values: Any) -> Response:
    """Go back to the page with ``message`` (the page boundary commits the unit of work as the page answers)."""
    flash(message)
    return redirect(url_for(endpoint, **values), code=303)


def required_text(value: str | None, field: str, what: str) -> str:
    """A non-empty text of at most :data:`TEXT_MAX` characters.

    Raises:
        InvalidInput: empty or too long.
    """
    value = (value or "").strip()
    if not value:
        raise InvalidInput.for_field(field, f"{what} is required")
    if len(value) > TEXT_MAX:
        raise InvalidInput.for_field(field, f"{what} must be at most {TEXT_MAX} characters")
    return value


@bp.app_template_filter("lead_when")
def lead_when(value: dt.datetime | None) -> str:
    """A UTC instant as the lead pages show it: "2026-11-22 09:00 UTC"."""
    if value is None:
        return "–"
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
