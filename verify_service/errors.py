"""Domain exceptions and their one mapping to HTTP.

Services raise :class:`DomainError` subclasses (defined next to the services
when they are feature specific). This module turns every error into
``application/problem+json`` (RFC 9457) under ``/api`` and ``/webhooks``, and
into an HTML page everywhere else.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from flask import Flask, Response, json, render_template, request
from werkzeug.exceptions import HTTPException


log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"


@dataclass
class FieldError:
    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


class DomainError(Exception):
    """Base of every error the service raises on purpose."""

    status = 400
    code = "bad_request"
    title = "Bad request"

    def __init__(self, detail: str | None = None, *, errors: list[FieldError] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.errors = errors or []
        self.headers = headers or {}


class NotFound(DomainError):
    status = 404
    code = "not_found"
    title = "Not found"


class Conflict(DomainError):
    status = 409
    code = "conflict"
    title = "Conflict"


class Forbidden(DomainError):
    """The caller may not do this (their role, their status, or a rule such as four eyes)."""

    status = 403
    code = "forbidden"
    title = "Not allowed"


class InvalidInput(DomainError):
    """Input that is well formed but not acceptable (a field names the culprit)."""

    status = 422
    code = "validation_failed"
    title = "The request is not valid"

    @classmethod
    def for_field(cls, name: str, message: str) -> InvalidInput:
        return cls(f"{name}: {message}", errors=[FieldError(name, message)])


class MalformedRequest(DomainError):
    status = 400
    code = "malformed_request"
    title = "The request could not be read"


class Unauthorized(DomainError):
    status = 401
    code = "unauthorized"
    title = "Authentication required"


class UnsupportedMediaType(DomainError):
    status = 415
    code = "unsupported_media_type"
    title = "Unsupported media type"


@dataclass
class Problem:
    status: int
    code: str
    title: str
    detail: str
    errors: list[FieldError] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"/problems/{self.code}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
            "instance": request.path,
        }
        if self.errors:
            body["errors"] = [e.as_dict() for e in self.errors]
        return body


def problem_response(problem: Problem) -> Response:
    response = Response(json.dumps(problem.body()), status=problem.status, mimetype=PROBLEM_MEDIA_TYPE)
    response.headers.update(problem.headers)
    return response


def prefers_json() -> bool:
    """Whether the caller asked for JSON rather than a page (the pages' own scripts: polling, the system check)."""
    return request.accept_mimetypes.best_match(["text/html", "application/json"]) == "application/json" \
        and "text/html" not in request.accept_mimetypes


def _wants_problem_json() -> bool:
    if request.path.startswith(("/api/", "/webhooks/")) or request.path in ("/healthz", "/readyz"):
        return True
    return prefers_json()


def render_problem(problem: Problem) -> Response:
    """``problem`` as problem+json (API, webhooks, health, scripts) or as the site's error page."""
    if _wants_problem_json():
        return problem_response(problem)
    html = render_template("errors/error.html", problem=problem)
    response = Response(html, status=problem.status, mimetype="text/html")
    response.headers.update(problem.headers)
    return response


_HTTP_CODES = {
    400: "malformed_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 413: "payload_too_large", 415: "unsupported_media_type",
    429: "too_many_requests",
}


def domain_error_response(error: DomainError) -> Response:
    return render_problem(Problem(error.status, error.code, error.title, error.detail, error.errors, error.headers))


def http_error_response(error: HTTPException) -> Response:
    """An HTTP error as problem+json (API) or the HTML error page (browsers)."""
    status = error.code or 500
    # Allow (405) and Retry-After (429, 503) tell the client what to do next.
    headers = dict(error.get_headers()) if status in (405, 429, 503) else {}
    headers.pop("Content-Type", None)
    problem = Problem(status, _HTTP_CODES.get(status, "http_error"), error.name,
                      error.description or error.name, headers=headers)
    return render_problem(problem)


# How long a client should wait before retrying while the database is unreachable (a restart takes seconds).
DATABASE_RETRY_AFTER_SECONDS = 5


def database_unavailable(error: sa.exc.DBAPIError) -> bool:
    """Whether ``error`` means "the database cannot serve right now" rather than a bug.

    Operational errors are the driver's word for it: a refused connection, a server shutting down or
    starting up, a connection cut mid-transaction, too many connections, a lock or statement timeout.
    SQLAlchemy also flags any error that invalidated its connection (a disconnect).
    """
    return isinstance(error, sa.exc.OperationalError) or error.connection_invalidated


def internal_error_response(_error: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.path)
    return render_problem(Problem(500, "internal_error", "Internal error",
                           "Something went wrong on our side. Nothing was changed; please try again."))


def database_error_response(error: sa.exc.DBAPIError) -> Response:
    """503 with Retry-After while the database is unreachable; any other driver error is a bug (500).

    Fails closed: nothing is served from a guess. A disconnect retires every pooled connection older
    than it, and idle ones are pinged before use (``db.make_engine``), so once the database is back
    the next requests get fresh connections.
    """
    if not database_unavailable(error):
        return internal_error_response(error)
    # The driver's class and first line, never the statement or its parameters (personal data).
    first_line = str(error.orig).splitlines()[0][:200] if str(error.orig) else ""
    log.warning("database unavailable on %s %s: %s: %s", request.method, request.path,
                type(error.orig).__name__, first_line)
    return _database_unavailable_response()


def pool_timeout_response(error: sa.exc.TimeoutError) -> Response:
    """503 with Retry-After when every pooled connection stayed busy for the pool timeout.

    The same answer as an unreachable database: the caller cannot tell the two apart, and either way
    retrying in a few seconds is right. The wait is ``Settings.db_pool_timeout_seconds`` (see
    ``create_app``), not SQLAlchemy's default 30 s: that is gunicorn's whole worker timeout, so a burst
    would pile requests up until workers were killed instead of answering.
    """
    # SQLAlchemy's own message: the pool's size, overflow and timeout. No statement ran, so none is logged.
    limits = str(error).split(" (Background", 1)[0].splitlines()[0][:200] if str(error) else ""
    log.warning("database pool exhausted on %s %s: %s", request.method, request.path, limits)
    return _database_unavailable_response()


def _database_unavailable_response() -> Response:
    detail = "The service cannot reach its database right now; please try again in a few seconds."
    if _wants_problem_json():
        detail += " A POST retried with the same Idempotency-Key takes effect at most once."
    return render_problem(Problem(503, "database_unavailable", "Temporarily unavailable", detail,
                           headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)}))


def sentence(text: str) -> str:
    """``text`` as a sentence for a page: a capital first letter and a full stop ("the body is …" → "The body is ….")."""
    text = text.strip()
    if not text:
        return text
    return text[0].upper() + text[1:] + ("" if text[-1] in ".!?" else ".")


def register_errorhandlers(app: Flask) -> None:
    app.add_template_filter(sentence)
    app.register_error_handler(DomainError, domain_error_response)
    app.register_error_handler(HTTPException, http_error_response)
    app.register_error_handler(sa.exc.DBAPIError, database_error_response)
    # Not a DBAPIError (the driver never saw the request), so it needs its own mapping.
    app.register_error_handler(sa.exc.TimeoutError, pool_timeout_response)
    app.register_error_handler(Exception, internal_error_response)
