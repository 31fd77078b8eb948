"""Per-request hooks: the request id, the request metrics, and one log line per failed request."""

from __future__ import annotations

import contextvars
import logging
import time

from flask import Flask, Response, g, request

from verify_service.observability.logging import (
    current_request_id,
    new_request_id,
    sane_request_id,
)
from verify_service.observability.metrics import LATENCY, REQUESTS

REQUEST_ID_HEADER = "X-Request-ID"
UNMATCHED = "unmatched"  # no route: never label with the raw path (unbounded cardinality, and tokens)

log = logging.getLogger(__name__)


def _start() -> None:
    """Adopt the caller's request id when it is a sane token, else make one; start the clock."""
    request_id = sane_request_id(request.headers.get(REQUEST_ID_HEADER)) or new_request_id()
    g.request_id = request_id
    g.request_started = time.perf_counter()
    g.request_id_token = current_request_id.set(request_id)


def _finish(response: Response) -> Response:
    """Echo the request id and count the request by endpoint name, method and status class."""
    request_id = g.get("request_id")
    if request_id:
        response.headers[REQUEST_ID_HEADER] = request_id
    endpoint = request.url_rule.endpoint if request.url_rule is not None else UNMATCHED
    REQUESTS.labels(endpoint=endpoint, method=request.method, status=f"{response.status_code // 100}xx").inc()
    started = g.get("request_started")
    if started is not None:
        LATENCY.labels(endpoint=endpoint, method=request.method).observe(time.perf_counter() - started)
    return response


def _teardown(_exc: BaseException | None = None) -> None:
    token: contextvars.Token[str | None] | None = g.pop("request_id_token", None)
    if token is not None:
        try:
            current_request_id.reset(token)
        except ValueError:  # set in another context (a copied one): just clear it
            current_request_id.set(None)


def register_request_hooks(app: Flask) -> None:
    """Run first among the before-request hooks so every later log line carries the id."""
    app.before_request_funcs.setdefault(None, []).insert(0, _start)
    app.after_request(_finish)
    app.teardown_request(_teardown)
