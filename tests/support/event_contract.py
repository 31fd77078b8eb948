"""Every event a test left in the outbox, checked against the AsyncAPI document the service serves.

``tests/conftest.py``'s ``database_url`` fixture calls :func:`check_emitted_events` before it empties
the database, so every test that emits events checks them against the published contract. The
validators are built once a session (the document, then one compiled validator per message); a test
costs one ``SELECT`` and the validation of its few events.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Callable
from typing import Any

import jsonschema
import sqlalchemy as sa

from verify_service.webhooks.asyncapi import asyncapi_document, payload_schemas
from verify_service.webhooks.events import EVENT_MODELS
from verify_service.webhooks.models import OutboxEvent

# The dialect of an AsyncAPI 3.0 document's default schema format (a superset of JSON Schema Draft 07).
Validator = jsonschema.Draft7Validator


@functools.cache
def validators() -> dict[str, Callable[[dict[str, Any]], list[str]]]:
    """For every event type, a function that lists what is wrong with a webhook body (empty: it fits)."""
    document = asyncapi_document(None, "test")
    found: dict[str, Callable[[dict[str, Any]], list[str]]] = {}
    for event_type, payload in payload_schemas(document).items():
        # The payload's references point into the document: validate with the document as the root resource.
        validator = Validator({**payload, "components": document["components"]})
        found[event_type] = functools.partial(_errors, validator)
    for event_type, model in EVENT_MODELS.items():
        if model.internal:  # not in the public document: its model's own schema is its contract
            data = Validator(model.model_json_schema())
            found[event_type] = lambda body, data=data: _errors(data, body["data"])
    return found


def _errors(validator: jsonschema.protocols.Validator, instance: dict[str, Any]) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}" for e in validator.iter_errors(instance)]


def _timestamp(created_at: dt.datetime) -> str:
    return created_at.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def check_emitted_events(engine: sa.Engine) -> int:
    """Fail (AssertionError) on any outbox event that does not fit the document; returns how many were checked.

    A database without the outbox table (a test that dropped the schema) has nothing to check.
    """
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.select(OutboxEvent.event_id, OutboxEvent.type, OutboxEvent.created_at,
                                                OutboxEvent.data).order_by(OutboxEvent.id)).all()
    except (sa.exc.OperationalError, sa.exc.ProgrammingError) as exc:
        if "outbox_events" in str(exc):
            return 0
        raise
    check = validators()
    problems = []
    for event_id, event_type, created_at, data in rows:
        body = {"type": event_type, "timestamp": _timestamp(created_at), "data": data}
        errors = check[event_type](body) if event_type in check else [f"unknown event type {event_type!r}"]
        if errors:
            problems.append(f"{event_id} {json.dumps(body)}\n    " + "\n    ".join(errors))
    assert not problems, "events that do not fit GET /api/v1/asyncapi.json:\n" + "\n".join(problems)
    return len(rows)
