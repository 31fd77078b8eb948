"""Liveness and readiness."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from verify_service import migrate
from verify_service.registry import registry
from verify_service.webhooks.relay import endpoint_disabled

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """The process is up and serving requests."""
    return jsonify({"status": "ok"})


def _meet_check() -> dict[str, object]:
    """The Meet backend can be built, and no configuration error was met since the last success."""
    from integrations.google_meet import MeetConfigurationError

    reg = registry()
    try:
        reg.meet_gateway()
    except MeetConfigurationError as exc:
        return {"ok": False, "backend": reg.settings.meet_backend, "detail": str(exc)}
    if reg.meet_problem:
        return {"ok": False, "backend": reg.settings.meet_backend, "detail": reg.meet_problem}
    return {"ok": True, "backend": reg.settings.meet_backend}


def _alerts() -> list[dict[str, str]]:
    """Conditions that need a person but must not take the API out of service.

    Webhook delivery being disabled (410 Gone) is one: the marketplace still
    needs ``GET …/restrictions`` while events wait in the outbox. A broken or
    stale release catalog is another: client checks go on with the last good data.
    """
    from verify_service.support.store import catalog_alerts

    return catalog_alerts(registry().catalog_store(), registry().now()) + _webhook_alerts() + _scheduler_alerts()


def _webhook_alerts() -> list[dict[str, str]]:
    url = registry().settings.account_service_webhook_url
    if not url:
        return []
    with registry().sessions() as session:
        endpoint = endpoint_disabled(session, url)
        if endpoint is None:
            return []
        return [{"code": "webhook_delivery_disabled",
                 "detail": f"{endpoint.disabled_reason}; events are kept. Fix the endpoint, then run "
                           "'verify-service outbox enable'."}]


def _scheduler_state() -> dict[str, object] | None:
    """The heartbeat's leader, processes and per-job latest runs; None when it cannot be read."""
    import sqlalchemy as sa

    from verify_service.ops.heartbeat import read_state

    try:
        with registry().sessions() as session:
            state = read_state(session)
    except sa.exc.SQLAlchemyError:  # e.g. the migration adding the table is not applied yet: shown by the migrations check
        return None
    return {"leader": state.leader,
            "leader_beat_at": state.leader_beat_at.isoformat() if state.leader_beat_at else None,
            "stale": state.stale(registry().now()), "instances": state.instances, "jobs": state.jobs}


def _scheduler_alerts() -> list[dict[str, str]]:
    """A scheduler has run here, but no leader has beaten for a minute: jobs (deliveries, expiries) stand still.

    An alert, not a failed check: the API serves fine without the scheduler.
    A database no scheduler ever ran against gives no alert.
    """
    state = _scheduler_state()
    if state is None or not state["stale"]:
        return []
    since = state["leader_beat_at"] or "never"
    return [{"code": "scheduler_stale",
             "detail": f"scheduler: stale — no leader heartbeat within 60 s (last: {since}). "
                       "Start 'verify-service scheduler' or check its logs."}]


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
    head = migrate.head_revision()
    if checks["database"]["ok"]:
        checks["migrations"] = {"ok": current == head, "current": current, "head": head}
        if current != head:
            checks["migrations"]["detail"] = "run 'verify-service db upgrade'"
    checks["meet"] = _meet_check()
    ready = all(check["ok"] for check in checks.values())
    body: dict[str, object] = {"status": "ready" if ready else "not_ready", "checks": checks,
                               "alerts": _alerts() if checks["database"]["ok"] else [],
                               "scheduler": _scheduler_state() if checks["database"]["ok"] else None}
    response = jsonify(body)
    response.status_code = 200 if ready else 503
    return response
