"""Lead pages: outbound webhook deliveries that are dead-lettered or failing; redeliver; resume after a 410."""

from __future__ import annotations

from flask import Response, render_template, request

from verify_service.errors import DomainError
from verify_service.leads.deliveries import problem_deliveries
from verify_service.leads.views import bp, done
from verify_service.pages import refused, write
from verify_service.registry import db_session, registry
from verify_service.staff.models import Role
from verify_service.staff.auth import actor, staff_page
from verify_service.webhooks.outbox import enable_endpoint
from verify_service.webhooks.outbox import redeliver as redeliver_events


def _url() -> str | None:
    return registry().settings.account_service_webhook_url or None


def _deliveries_page(*, error: DomainError | None = None) -> str:
    return render_template("review/lead/deliveries.html", deliveries=problem_deliveries(db_session(), _url()),
                           url=_url(), error=error)


@bp.get("/deliveries")
@staff_page(Role.LEAD)
def deliveries() -> str:
    return _deliveries_page()


@bp.post("/deliveries/redeliver")
@staff_page(Role.LEAD)
def redeliver() -> Response | tuple[str, int]:
    """One dead event (``event_id``) or every dead event (``all=1``) back in line, retries starting over."""
    session = write()
    all_dead = request.form.get("all") == "1"
    event_id = None if all_dead else request.form.get("event_id", "").strip()[:40]
    try:
        count = redeliver_events(session, event_id=event_id, all_dead=all_dead, actor=actor(), now=registry().now())
    except DomainError as exc:
        return refused(exc, _deliveries_page)
    return done(f"{count} event{'s' if count != 1 else ''} queued for redelivery.", "leads.deliveries")


@bp.post("/deliveries/enable")
@staff_page(Role.LEAD)
def enable_delivery() -> Response:
    """Resume delivery to the configured URL after the account service answered 410 Gone."""
    url = _url()
    was_disabled = url is not None and enable_endpoint(write(), url, actor=actor(), now=registry().now())
    return done("Delivery resumed." if was_disabled else "Delivery was not disabled.", "leads.deliveries")
