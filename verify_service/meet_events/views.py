"""``POST /webhooks/google/meet-events``: Cloud Pub/Sub pushes Meet's events here.

Pub/Sub counts any 2xx as acknowledged and pushes anything else again (with its backoff): so a
refused token is 401 and a body that is no push 400 (both change nothing), Meet being unreadable
is 503 (the event comes back and is applied then), and an event applied, a duplicate or one with
nothing to change is 204. 404 while events are not configured.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, request

from integrations.google_meet import MeetError
from integrations.meet_events import BadPush, event_from_push
from verify_service.errors import DomainError, MalformedRequest, NotFound, Unauthorized
from verify_service.meet_events import apply, subscriptions
from verify_service.meet_events.tokens import PushRefused, PushVerifier
from verify_service.pages import page_unit, run_workflow
from verify_service.registry import registry
from verify_service.settings import MEET_EVENTS_PATH

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024  # a push of one Meet event is well under 2 KiB

bp = Blueprint("meet_events", __name__)


class MeetUnavailable(DomainError):
    status = 503
    code = "meet_unavailable"
    title = "Meet could not be read"


@bp.before_request
def _limit_body() -> None:
    request.max_content_length = MAX_BODY


@bp.post(MEET_EVENTS_PATH)
@page_unit
def meet_events() -> Response:
    reg = registry()
    if not reg.settings.meet_events:
        raise NotFound("Meet events are not configured here (VERIFY_MEET_EVENTS_TOPIC is not set)")
    verifier: PushVerifier = current_app.extensions["verify_service.meet_events.verifier"]
    try:
        verifier.verify(request.headers.get("Authorization"))
    except PushRefused as exc:
        log.warning("Meet event push refused: %s", exc)
        raise Unauthorized(str(exc), headers={"WWW-Authenticate": 'Bearer realm="meet-events"'}) from None
    try:
        event = event_from_push(request.get_json(silent=True))
    except BadPush as exc:
        raise MalformedRequest(str(exc)) from None
    try:
        applied = run_workflow(apply.apply_event, reg.sessions, reg.meet_gateway(), event, settings=reg.settings,
                               now=reg.now())
    except BadPush as exc:
        raise MalformedRequest(str(exc)) from None
    except MeetError as exc:
        log.warning("Meet event %s (%s) waits for Meet: %s", event.id, event.type, exc)
        raise MeetUnavailable(f"the event could not be applied yet: {exc}", headers={"Retry-After": "10"}) from None
    if applied.result is apply.Result.LIFECYCLE and applied.host is not None:
        # Act on the subscription at once (renew, reactivate, recreate); its own failures stay on its row.
        run_workflow(subscriptions.keep_subscriptions, reg.sessions, reg.meet_events_gateway(),
                     hosts=subscriptions.configured_hosts(reg.settings), topic=reg.settings.meet_events_topic,
                     now=reg.now(), only=[applied.host])
    log.info("Meet event %s (%s): %s", event.id, event.type, applied.result.value)
    return Response(status=204)
