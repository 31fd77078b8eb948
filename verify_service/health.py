"""Liveness and readiness."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from verify_service import migrate
from verify_service.registry import registry

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """The process is up and serving requests."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> Response:
    """Ready for traffic: the database answers and its schema is at the code's migration head."""
    engine = registry().engine
    checks: dict[str, dict[str, object]] = {}
    try:
        current = migrate.current_revision(engine)
        checks["database"] = {"ok": True}
    except Exception as exc:  # any driver error means "not ready", never a crash
        checks["database"] = {"ok": False, "detail": f"database unreachable: {type(exc).__name__}"}
        current = None
    head = migrate.head_revision(engine)
    if checks["database"]["ok"]:
        checks["migrations"] = {"ok": current == head, "current": current, "head": head}
        if current != head:
            checks["migrations"]["detail"] = "run 'verify-service db upgrade'"
    ready = all(check["ok"] for check in checks.values())
    response = jsonify({"status": "ready" if ready else "not_ready", "checks": checks})
    response.status_code = 200 if ready else 503
    return response
