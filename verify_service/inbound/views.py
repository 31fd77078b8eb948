"""``POST /webhooks/account-service``: the account service's events.

The view answers fast: the effects are database writes only; anything that
talks to the outside (ending a Meet conference) is left to a job.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError

from verify_service.api.validation import problem_from_validation_error
from verify_service.pages import page_unit, undo, write
from verify_service.registry import db_session, registry
from verify_service.inbound import events as inbound
from verify_service.inbound import schemas

# Events are small; the app-wide default (1 MiB) is for other uploads.
MAX_BODY = 256 * 1024

bp = Blueprint("inbound_webhooks", __name__, url_prefix="/webhooks")


@bp.before_request
def _limit_body() -> None:
    # Reading more than this raises 413 (Flask 3.1 per-request limit).
    request.max_content_length = MAX_BODY


@bp.post("/account-service")
@page_unit
def account_service() -> Response:
    """One event; its effects and its receipt are one unit of work (the page boundary's), committed as it answers."""
    reg = registry()
    raw = request.get_data(cache=False)
    webhook_id = reg.inbound_verifier.verify(raw, {name: request.headers.get(name) for name in inbound.HEADERS})
    try:
        event = schemas.parse_event(raw)
    except ValidationError as error:
        return problem_from_validation_error(error)
    try:
        # An event for a closed account comes back ignored, and its receipt is committed all the same.
        received = inbound.receive(write(), webhook_id, event, now=reg.now())
    except IntegrityError:
        # A concurrent delivery of the same webhook-id committed first (PostgreSQL: its flush waited on the key).
        undo()
        if not inbound.was_received(db_session(), webhook_id):
            raise
        received = inbound.Received(inbound.Status.DUPLICATE)
    return jsonify(received.as_dict())
