"""``POST /webhooks/google/meet-events``: Cloud Pub/Sub pushes Meet's events here.

Pub/Sub counts any 2xx as acknowledged and pushes anything else again (with its backoff): so a
refused token is 401 and a body that is no push 400 (both change nothing); an event received is
204 once its receipt is committed — applied at once, a duplicate, one with nothing to change, or,
when Meet could not be read for it, kept pending for the ``drain_meet_events`` job. 404 while
events are not configured.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, request

from integrations.meet_events import BadPush, event_from_push
from verify_service.errors import MalformedRequest, NotFound, Unauthorized
from verify_service.meet_events import apply, subscriptions
from verify_service.meet_events.tokens import PushRefused, PushVerifier
from verify_service.pages import page_unit, run_workflow
from verify_service.registry import registry
from verify_service.settings import MEET_EVENTS_PATH

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024  # a push of one Meet event is well under 2 KiB

bp = Blueprint("meet_events", __name__)


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
        drained = run_workflow(apply.push, reg.sessions, reg.meet_gateway(), event, settings=reg.settings,
                               now=reg.now())
    except BadPush as exc:
        raise MalformedRequest(str(exc)) from None
    if drained.hosts:  # a lifecycle event: act on the subscription at once (renew, reactivate, recreate)
        run_workflow(subscriptions.keep_hosts_now, reg.sessions, reg.meet_events_gateway(), drained.hosts,
                     settings=reg.settings, now=reg.now())
    applied = drained.results.get(event.id, apply.Applied(apply.Result.PENDING))
    log.info("Meet event %s (%s): %s (%d applied with it)", event.id, event.type, applied.result.value,
             len(drained.results))
    return Response(status=204)
