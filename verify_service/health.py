"""Liveness and readiness."""

from __future__ import annotations

import datetime as dt
import time

from flask import Blueprint, Response, current_app, jsonify

from verify_service import migrate
from verify_service.ops.heartbeat import STALE_AFTER
from verify_service.registry import registry
from verify_service.webhooks.models import DeliveryStatus
from verify_service.webhooks.outbox import no_url_reason, oldest_pending_event, undelivered_counts
from verify_service.webhooks.relay import endpoint_disabled

bp = Blueprint("health", __name__)

# When the app was built (time.monotonic()): a scheduler gets this long to show up before /readyz misses it.
STARTED_KEY = "verify_service.started_monotonic"
SCHEDULER_GRACE = STALE_AFTER
# The oldest undelivered webhook event older than this is an alert (the gauge is verify_outbox_lag_seconds).
OUTBOX_LAG_ALERT = dt.timedelta(minutes=10)


@bp.record_once
def _note_start(state: object) -> None:
    state.app.extensions.setdefault(STARTED_KEY, time.monotonic())  # type: ignore[attr-defined]


@bp.get("/healthz")
def healthz() -> Response:
    """The process is up and serving requests."""
    return jsonify({"status": "ok"})


def _meet_check() -> dict[str, object]:
    """The Meet backend can be built, and no configuration error was met since the last success.

    A host user that failed (e.g. suspended, or its delegation revoked) is
    named in ``hosts`` with its problem, until a call as it works again; the
    other hosts keep serving, but the failing one needs a person.
    """
    from integrations.google_meet import MeetConfigurationError

    reg = registry()
    backend = reg.settings.meet_backend
    try:
        reg.meet_gateway()
    except MeetConfigurationError as exc:
        return {"ok": False, "backend": backend, "detail": str(exc)}
    hosts = reg.meet_host_problems()
    problems = ([reg.meet_problem] if reg.meet_problem else []) + [
        f"host user {host}: {problem}" for host, problem in sorted(hosts.items())]
    if not problems:
        return {"ok": True, "backend": backend}
    check: dict[str, object] = {"ok": False, "backend": backend, "detail": "; ".join(problems)}
    if hosts:
        check["hosts"] = dict(sorted(hosts.items()))
    return check


def _meet_events_check() -> dict[str, object] | None:
    """With Meet events configured: every host user has a live subscription (ACTIVE, not expired); else None.

    A host without one is named with why (its state, a suspension's reason and what to do, the last
    attempt's problem), like a failing host of the Meet check: its calls' attendance then comes only from
    polling. A host the keep_meet_subscriptions job has not tried yet counts only once this process has been
    up :data:`SCHEDULER_GRACE` (a new leader runs the job at once).
    """
    import sqlalchemy as sa

    from verify_service.meet_events.subscriptions import configured_hosts, hosts_without_live_subscription

    reg = registry()
    settings = reg.settings
    if not settings.meet_events:
        return None
    up = time.monotonic() - current_app.extensions.get(STARTED_KEY, time.monotonic())
    try:
        with reg.sessions() as db:
            missing = hosts_without_live_subscription(db, configured_hosts(settings), reg.now(),
                                                      topic=settings.meet_events_topic,
                                                      include_unchecked=up >= SCHEDULER_GRACE.total_seconds())
    except sa.exc.SQLAlchemyError:  # e.g. its migration is not applied yet: the migrations check says so
        return {"ok": False, "topic": settings.meet_events_topic,
                "detail": "the Meet events subscriptions cannot be read"}
    if not missing:
        return {"ok": True, "topic": settings.meet_events_topic}
    return {"ok": False, "topic": settings.meet_events_topic,
            "detail": "; ".join(f"host user {host} has no live Meet events subscription: {why}"
                                for host, why in sorted(missing.items())),
            "hosts": dict(sorted(missing.items()))}


def _alerts(scheduler: dict[str, object] | None) -> list[dict[str, str]]:
    """Conditions that need a person but must not take the API out of service.

    Webhook delivery being disabled (410 Gone) or lagging is one: the
    marketplace still needs ``GET …/restrictions`` while events wait in the
    outbox. A broken or stale release catalog is another: client checks go on
    with the last good data. A missing or stale scheduler is a third.
    """
    from verify_service.support.store import catalog_alerts

    return (catalog_alerts(registry().catalog_store(), registry().now()) + _webhook_alerts() + _outbox_lag_alerts()
            + _scheduler_alerts(scheduler))


def _webhook_alerts() -> list[dict[str, str]]:
    url = registry().settings.account_service_webhook_url
    if not url:
        with registry().sessions() as db:
            pending = undelivered_counts(db).get(DeliveryStatus.PENDING, 0)
        return [{"code": "webhook_url_missing", "detail": no_url_reason(pending) + "."}] if pending else []
    with registry().sessions() as db:
        endpoint = endpoint_disabled(db, url)
        if endpoint is None:
            return []
        return [{"code": "webhook_delivery_disabled",
                 "detail": f"{endpoint.disabled_reason}; events are kept. Fix the endpoint, then run "
                           "'verify-service outbox enable'."}]


def _outbox_lag_alerts() -> list[dict[str, str]]:
    with registry().sessions() as db:
        oldest = oldest_pending_event(db)
    lag = registry().now() - oldest if oldest is not None else dt.timedelta(0)
    if lag <= OUTBOX_LAG_ALERT:
        return []
    return [{"code": "outbox_lagging",
             "detail": f"the oldest undelivered webhook event is {int(lag.total_seconds() // 60)} min old (alert "
                       f"past {int(OUTBOX_LAG_ALERT.total_seconds() // 60)}). See 'verify-service outbox status' "
                       "and the scheduler's deliver_outbox logs."}]


def _scheduler_state() -> dict[str, object] | None:
    """The heartbeat's leader, processes and per-job latest runs; None when it cannot be read."""
    import sqlalchemy as sa

    from verify_service.ops.heartbeat import read_state

    try:
        with registry().sessions() as db:
            state = read_state(db)
    except sa.exc.SQLAlchemyError:  # e.g. the migration adding the table is not applied yet: shown by the migrations check
        return None
    return {"leader": state.leader,
            "leader_beat_at": state.leader_beat_at.isoformat() if state.leader_beat_at else None,
            "stale": state.stale(registry().now()), "never_seen": state.never_seen,
            "instances": state.instances, "jobs": state.jobs}


def _scheduler_alerts(state: dict[str, object] | None) -> list[dict[str, str]]:
    """No leader has beaten for a minute, or no scheduler ever ran here: jobs (deliveries, expiries) stand still.

    An alert, not a failed check: the API serves fine without the scheduler.
    A database no scheduler has ever run against alerts only once this web
    process has been up for :data:`SCHEDULER_GRACE` (``verify-service run``'s
    embedded scheduler beats at once; a test app lives a few seconds).
    """
    if state is None:
        return []
    if state["never_seen"]:
        up = time.monotonic() - current_app.extensions.get(STARTED_KEY, time.monotonic())
        if up < SCHEDULER_GRACE.total_seconds():
            return []
        return [{"code": "scheduler_missing",
                 "detail": f"scheduler: none — no scheduler has recorded a heartbeat in this database, and this "
                           f"web process has been up {int(up)} s. Jobs (webhook deliveries, meetings, expiries) do "
                           "not run: start 'verify-service scheduler'."}]
    if not state["stale"]:
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
    events = _meet_events_check() if checks["database"]["ok"] else None
    if events is not None:
        checks["meet_events"] = events
    ready = all(check["ok"] for check in checks.values())
    scheduler = _scheduler_state() if checks["database"]["ok"] else None
    body: dict[str, object] = {"status": "ready" if ready else "not_ready", "checks": checks,
                               "alerts": _alerts(scheduler) if checks["database"]["ok"] else [],
                               "scheduler": scheduler}
    response = jsonify(body)
    response.status_code = 200 if ready else 503
    return response
