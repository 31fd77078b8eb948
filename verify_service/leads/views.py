"""Lead pages (blueprint ``leads``, /review/lead): accounts and holds, webhook deliveries, shifts, reviewers, metrics.

Every view needs the lead role (``@staff_page(Role.LEAD)``); admins pass too.
A post runs one unit of work: it starts a write transaction, calls one
service, and commits once, then redirects (303) to the page with a notice.
When the service refuses (bad input, a conflict, a rule), the transaction
is rolled back and the page is shown again with the problem in a
``role="alert"`` notice and the status of the error; nothing changed.
The routes live in the sibling ``*_views`` modules, imported at the end.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, flash, redirect, url_for
from sqlalchemy.orm import Session

from verify_service.csrf import protect_posts
from verify_service.db import begin_write
from verify_service.errors import DomainError, InvalidInput
from verify_service.registry import db_session
from verify_service.staff.auth import private

bp = Blueprint("leads", __name__, url_prefix="/review/lead")
bp.before_request(protect_posts)
bp.after_request(private)

TEXT_MAX = 500  # hold reasons and lift reasons (their columns' length)


def write_session() -> Session:
    """The request's session in a new write transaction (SQLite: ``BEGIN IMMEDIATE``).

    ``staff_page`` has already committed its own short transaction (the idle
    clock), so the view's unit of work starts here, taking the write lock
    before its first read.
    """
    session = db_session(write=True)
    begin_write(session)
    return session


def done(message: str, endpoint: str, **values: Any) -> Response:
    """Commit the unit of work and go back to the page with ``message``."""
    db_session().commit()
    flash(message)
    return redirect(url_for(endpoint, **values), code=303)


def refused(error: DomainError, page: Callable[..., str], **context: Any) -> tuple[str, int]:
    """Undo the unit of work and show ``page`` again with the problem (and the status of ``error``)."""
    db_session().rollback()
    return page(error=error, **context), error.status


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


# The routes register themselves on ``bp``.
from verify_service.leads import (  # noqa: F401
    account_views,
    delivery_views,
    metric_views,
    reviewer_views,
    shift_views,
)
