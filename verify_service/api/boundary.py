"""The transaction boundary of API writes, with Idempotency-Key handling."""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Callable
from typing import Any

from flask import Response, make_response, request
from sqlalchemy.exc import IntegrityError

from verify_service.api import idempotency
from verify_service.api.auth import require_api_key
from verify_service.errors import InvalidInput, MalformedRequest, UnsupportedMediaType
from verify_service.registry import db_session, registry


def authenticate_api_request() -> None:
    """``before_request`` of the authenticated API blueprints. Raises: Unauthorized."""
    require_api_key(request.headers.get("Authorization"), registry().settings.api_keys)


def check_json_body() -> None:
    """``before_request``: a body must be a JSON object, so the error says what is wrong.

    Raises:
        UnsupportedMediaType: the body is not declared as JSON.
        MalformedRequest: the body is not valid JSON.
        InvalidInput: the body is JSON but not an object (every API body is one; flask-openapi3
            would otherwise parse a JSON *string* body a second time, as if it were the object).
    """
    if request.method not in ("POST", "PUT", "PATCH"):
        return
    if not request.get_data(cache=True) and request.method == "POST":
        return  # an operation without a body (its schema rejects it where one is needed)
    if not request.is_json:
        raise UnsupportedMediaType("send the body as JSON with 'Content-Type: application/json'")
    try:
        body = json.loads(request.get_data(cache=True) or b"")
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
        raise MalformedRequest(f"the body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise InvalidInput.for_field("body", "must be a JSON object")


def _stored(response: Response) -> idempotency.StoredResponse:
    headers = {name: response.headers[name] for name in idempotency.REPLAYED_HEADERS if name in response.headers}
    stored = idempotency.StoredResponse(response.status_code, response.get_json(silent=True), headers)
    return idempotency.seal(stored, registry().keyring.sealer)


def _replay(stored: idempotency.StoredResponse) -> Response:
    """Raises: IdempotentResponseUnreadable (a sealed response, and its data key was removed since)."""
    stored = idempotency.unseal(stored, registry().keyring.sealer)
    response = make_response(json.dumps(stored.body), stored.status)
    response.headers.update(stored.headers)
    response.headers["Idempotent-Replayed"] = "true"
    return response


def api_write(view: Callable[..., Any]) -> Callable[..., Response]:
    """Run ``view`` as one write transaction, committing once at the end.

    For POSTs with an ``Idempotency-Key``: replay the remembered response, or
    remember this one in the same transaction as its effect (sealed when it is ``Cache-Control: no-store``).
    """

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        reg = registry()
        db = db_session(write=True)
        key = request.headers.get("Idempotency-Key") if request.method == "POST" else None
        scope = f"{request.method} {request.path}"
        request_hash = ""
        now = reg.now()
        if key is not None:
            request_hash = idempotency.fingerprint(request.method, request.path, request.get_data(cache=True))
            stored = idempotency.lookup(db, scope=scope, key=key, request_hash=request_hash, now=now)
            if stored is not None:
                return _replay(stored)
        response = make_response(view(*args, **kwargs))
        try:
            if key is not None and 200 <= response.status_code < 300:
                idempotency.remember(db, scope=scope, key=key, request_hash=request_hash,
                                     response=_stored(response), now=now,
                                     ttl=dt.timedelta(hours=reg.settings.idempotency_ttl_hours))
            db.commit()
        except IntegrityError:
            db.rollback()
            if key is None:
                raise
            # Another request with this key committed first: answer as it did.
            stored = idempotency.lookup(db, scope=scope, key=key, request_hash=request_hash, now=reg.now())
            if stored is None:
                raise
            return _replay(stored)
        return response

    return wrapper
