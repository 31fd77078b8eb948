"""Logging: one root configuration, a request id on every record, and redaction.

``configure_logging`` is called by ``create_app`` and the CLI; it installs one
handler on the root logger (replacing its own earlier one, so calling it again
is harmless). In ``json`` format every line is one JSON object with ``time``,
``level``, ``logger``, ``message``, ``request_id`` and any ``extra`` fields.
Work outside a request binds its own id (and fields, e.g. a job run's ``job``)
with :func:`bind_request_id`.

Secrets and personal data never reach the output: ``extra`` keys that look
sensitive are replaced, and launch-link tokens and bearer credentials are cut
out of messages (the launch token is part of the URL path), as are PostgreSQL's ``DETAIL``
lines, which quote the values of a failed statement.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import re
import sys
import uuid
from collections.abc import Iterator
from typing import Any, TextIO

from pythonjsonlogger.json import JsonFormatter

REDACTED = "[redacted]"
SENSITIVE_KEYS = ("authorization", "cookie", "password", "secret", "token", "document_number", "email",
                  "api_key", "apikey")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
# Credentials that can hide in a message: launch tokens live in the path; bearer keys in headers.
# And personal data: PostgreSQL's DETAIL line of a failed statement quotes the values it refused
# ("Key (email)=(...) already exists", "Failing row contains (...)"); the engine hides the parameters
# themselves (db.make_engine), but the driver's message, in every traceback, carries this line.
_MESSAGE_SECRETS = (
    (re.compile(r"(/verify/launch/)[^\s/?\"']+"), r"\1" + REDACTED),
    (re.compile(r"(/review/setup/)[^\s/?\"']+"), r"\1" + REDACTED),  # staff setup links carry a token too
    (re.compile(r"(?i)(bearer\s+)[^\s\"',]+"), r"\1" + REDACTED),
    (re.compile(r"(?m)^(DETAIL:[ \t]*).*$"), r"\1" + REDACTED),
)
_STANDARD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message", "asctime", "request_id", "taskName"}
# Loggers kept to warnings and errors (see configure_logging).
QUIET_LOGGERS = ("alembic.runtime.plugins", "apscheduler.scheduler", "apscheduler.executors.default")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"

current_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
# Fields every record in the current context carries (e.g. the job of a job run); never mutated in place.
current_log_fields: contextvars.ContextVar[tuple[tuple[str, str], ...]] = contextvars.ContextVar(
    "log_fields", default=())


def new_request_id() -> str:
    """A fresh id (uuid4, hex)."""
    return uuid.uuid4().hex


def sane_request_id(value: str | None) -> str | None:
    """``value`` when it is a safe token to echo and log (≤ 128 of ``[A-Za-z0-9._-]``), else ``None``."""
    if value and _REQUEST_ID.fullmatch(value):
        return value
    return None


@contextlib.contextmanager
def bind_request_id(request_id: str | None = None, **fields: str) -> Iterator[str]:
    """Tag every log record in this block with ``request_id`` (a new one when not given) and ``fields``.

    For work outside a request, e.g. one job run (``jobs/runner.py``)::

        with bind_request_id(job="deliver_outbox") as run_id:
            ...
    """
    value = sane_request_id(request_id) or new_request_id()
    token = current_request_id.set(value)
    fields_token = current_log_fields.set(current_log_fields.get() + tuple(fields.items()))
    try:
        yield value
    finally:
        current_log_fields.reset(fields_token)
        current_request_id.reset(token)


def scrub(text: str) -> str:
    """``text`` with launch tokens and bearer credentials replaced."""
    for pattern, replacement in _MESSAGE_SECRETS:
        text = pattern.sub(replacement, text)
    return text


def _is_sensitive(key: str) -> bool:
    lowered = key.lower()
    return any(word in lowered for word in SENSITIVE_KEYS)


def redact(value: Any) -> Any:
    """A copy of ``value`` with sensitive keys of (nested) mappings replaced."""
    if isinstance(value, dict):
        return {k: REDACTED if isinstance(k, str) and _is_sensitive(k) else redact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact(v) for v in value)
    if isinstance(value, str):
        return scrub(value)
    return value


class RequestIdFilter(logging.Filter):
    """Sets ``record.request_id`` from the current request or job run (``-`` outside both), and bound fields."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = current_request_id.get() or "-"
        for name, value in current_log_fields.get():
            record.__dict__.setdefault(name, value)  # an explicit ``extra`` wins
        return True


class RedactionFilter(logging.Filter):
    """Replaces sensitive ``extra`` values and cuts credentials out of the message."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key in [k for k in record.__dict__ if k not in _STANDARD_ATTRS]:
            value = record.__dict__[key]
            record.__dict__[key] = REDACTED if _is_sensitive(key) else redact(value)
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001  (a broken format string: the formatter reports it)
            return True
        cleaned = scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:  # also when another handler (a test's capture, an error tracker) formatted it first
            record.exc_text = scrub(record.exc_text)
        return True


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is now (test runners swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def make_formatter(log_format: str) -> logging.Formatter:
    """The JSON formatter (``json``) or the readable one (anything else)."""
    if log_format == "json":
        return JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
                             rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                             datefmt="%Y-%m-%dT%H:%M:%S%z")
    return logging.Formatter(TEXT_FORMAT)


def make_handler(log_format: str) -> logging.Handler:
    """A stderr handler with the request-id and redaction filters and the chosen format."""
    handler = _StderrHandler()
    handler.addFilter(RequestIdFilter())
    handler.addFilter(RedactionFilter())
    handler.setFormatter(make_formatter(log_format))
    handler._verify_service = True  # type: ignore[attr-defined]  (marks ours, for reconfiguration)
    return handler


def configure_logging(log_format: str, level: int = logging.INFO) -> None:
    """Install the service's handler on the root logger, replacing one installed before."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_verify_service", False)]:
        root.removeHandler(handler)
    root.addHandler(make_handler(log_format))
    root.setLevel(level)
    # Routine chatter at INFO, not news: Alembic announces each of its plugins, APScheduler each job it adds
    # ("Adding job tentatively", "Added job") and two lines for each run (every 2 s for deliver_outbox). The
    # scheduler logs its own start with the job count, and the jobs (jobs/) what their runs did; a job's
    # exception or a missed run still shows (APScheduler logs those as errors and warnings).
    for chatty in QUIET_LOGGERS:
        logging.getLogger(chatty).setLevel(logging.WARNING)


def log_format_from_environ(environ: dict[str, str] | None = None) -> str:
    """The log format before settings are loaded (CLI start, gunicorn's own logger): same rule as settings."""
    import os

    env = os.environ if environ is None else environ
    return env.get("VERIFY_LOG_FORMAT") or ("json" if env.get("VERIFY_ENV") == "production" else "text")
