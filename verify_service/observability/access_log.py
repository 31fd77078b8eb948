"""gunicorn's logger for verify-service: redacted access lines, JSON in production.

Used by ``gunicorn.conf.py`` and the embedded server (``logger_class``). The
launch-link token is part of the path (``/verify/launch/<token>``), so paths
and referrers are scrubbed, query strings are never written, and credential
headers cannot be logged even if an operator adds them to the format.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from gunicorn.glogging import Logger

from verify_service.observability.logging import (
    REDACTED,
    RequestIdFilter,
    log_format_from_environ,
    make_formatter,
    scrub,
)

_SECRET_HEADER = re.compile(r"\{(authorization|cookie|set-cookie|proxy-authorization|x-api-key)\}[io]$", re.IGNORECASE)


def _path(environ: dict[str, Any]) -> str:
    return scrub(environ.get("PATH_INFO") or "/")


class RedactingLogger(Logger):  # type: ignore[misc]  (gunicorn is untyped)
    """gunicorn's Logger with scrubbed atoms and, when the log format is json, JSON lines."""

    def setup(self, cfg: Any) -> None:
        """gunicorn's setup, then the service's JSON formatter on the error log when json is chosen."""
        super().setup(cfg)
        self.json = log_format_from_environ() == "json"
        if self.json:
            for handler in self.error_log.handlers:
                handler.addFilter(RequestIdFilter())
                handler.setFormatter(make_formatter("json"))

    def atoms(self, resp: Any, req: Any, environ: dict[str, Any], request_time: dt.timedelta) -> dict[str, Any]:
        """gunicorn's atoms without query strings, tokens in paths, or credential headers."""
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        path = _path(environ)
        atoms.update(r=f"{environ.get('REQUEST_METHOD')} {path} {environ.get('SERVER_PROTOCOL')}", U=path, q="-",
                     f=scrub(atoms.get("f") or "-"))
        for key in [k for k in atoms if _SECRET_HEADER.match(k)]:
            atoms[key] = REDACTED
        for key in ("{raw_uri}e", "{request_uri}e", "{query_string}e", "{http_referer}i"):
            if key in atoms:
                atoms[key] = REDACTED if "query" in key else scrub(str(atoms[key]).split("?")[0])
        return atoms

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: dt.timedelta) -> None:
        """One access line: gunicorn's format (scrubbed), or a JSON object when json is chosen.

        The JSON line is built from the few fields it has, not from gunicorn's atoms (every
        request header, response header and environ entry, then scrubbed): it is written once
        per request, on the hot path too.
        """
        if not getattr(self, "json", False):
            super().access(resp, req, environ, request_time)
            return
        if not self.access_log_enabled:
            return
        self.access_log.info(json.dumps(_access_record(resp, environ, request_time), separators=(",", ":")))


def _access_record(resp: Any, environ: dict[str, Any], request_time: dt.timedelta) -> dict[str, Any]:
    status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else str(resp.status)
    method, path = environ.get("REQUEST_METHOD"), _path(environ)
    request_id = next((value for name, value in resp.headers if name.lower() == "x-request-id"), "-")
    return {
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
        "level": "INFO",
        "logger": "gunicorn.access",
        "message": f"{method} {path} {status}",
        "request_id": request_id,
        "method": method,
        "path": path,
        "status": int(status) if status.isdigit() else status,
        "bytes": getattr(resp, "sent", None),
        "duration_ms": request_time.seconds * 1000 + request_time.microseconds // 1000,
        "user_agent": environ.get("HTTP_USER_AGENT", "-"),
    }
