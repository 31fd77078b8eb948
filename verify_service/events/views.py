"""The events API (README, 'Events API'): thin views over the feed."""

from __future__ import annotations

import json

from flask import Response
from flask_openapi3 import APIBlueprint, Tag

from verify_service.api.boundary import authenticate_api_request
from verify_service.api.schemas import PROBLEMS, Problem
from verify_service.db import run_read
from verify_service.events import feed
from verify_service.events.schemas import EventOut, EventPath, EventsPage, EventsQuery
from verify_service.registry import registry

api = APIBlueprint("events_api", __name__, url_prefix="/api/v1", abp_tags=[Tag(name="events")],
                   abp_security=[{"bearer": []}])
api.before_request(authenticate_api_request)


def _json(document: object) -> Response:
    # Keys in the order the webhook body has them (jsonify would sort them).
    return Response(json.dumps(document, separators=(",", ":"), ensure_ascii=False), mimetype="application/json")


@api.get("/events", responses={200: EventsPage, 410: Problem, **PROBLEMS},
         summary="Every event, in the order the service made them visible; follow next_cursor (never skips)")
def list_events(query: EventsQuery) -> Response:
    reg = registry()
    filters = feed.Filters(query.type, query.account_id)
    page = run_read(reg.engine, lambda connection: feed.read_page(
        connection, filters, after=query.after, limit=query.limit, now=reg.now(),
        retention=feed.retention_period(reg.settings)))
    return _json(page.as_dict())


@api.get("/events/<event_id>", responses={200: EventOut, **PROBLEMS}, summary="One event, by its id (webhook-id)")
def get_event(path: EventPath) -> Response:
    return _json(run_read(registry().engine, lambda connection: feed.read_event(connection, path.event_id)))
