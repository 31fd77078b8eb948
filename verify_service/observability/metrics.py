"""Prometheus metrics: what the process counts, what a scrape reads from the database, and ``/metrics``.

Counters and histograms live in the process (``prometheus_client``'s default
registry). Under gunicorn ``PROMETHEUS_MULTIPROC_DIR`` is set
(``gunicorn.conf.py``) and every worker writes its values to files there; a
scrape, answered by any worker, merges them (``MultiProcessCollector``).

The business gauges (waiting sessions, outbox, Meet quota) are state, not
events: :class:`BusinessCollector` reads them from the database on each
scrape with cheap queries under a short statement timeout. Each feature owns
its gauges and adds them when it registers (:func:`add_gauges`; e.g.
``calls/metrics.py``, ``webhooks/metrics.py``). A failing query
never fails the scrape; it counts ``verify_metrics_collect_errors_total``.

``/metrics`` has no authentication: bind it to a private network or allow-list
the scraper at the proxy; never expose it publicly.

A separate ``verify-service scheduler`` process serves no app, so it exposes
its own metrics (job runs, Meet errors of the meetings it prepares) with
:func:`start_exporter` on ``VERIFY_SCHEDULER_METRICS_PORT``: one more scrape
target per scheduler machine.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from wsgiref.simple_server import WSGIServer

import sqlalchemy as sa
from flask import Blueprint, Flask, Response, current_app
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

STATEMENT_TIMEOUT_MS = 2000
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Waits for a reviewer: seconds to hours (a call expires after VERIFY_SESSION_TTL_MINUTES, 30 by default).
WAIT_BUCKETS = (10, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600, 7200)

REQUESTS = Counter("verify_http_requests_total", "HTTP requests answered, by endpoint, method and status class.",
                   ["endpoint", "method", "status"])
LATENCY = Histogram("verify_http_request_duration_seconds", "Time to answer an HTTP request, by endpoint.",
                    ["endpoint", "method"], buckets=LATENCY_BUCKETS)
COLLECT_ERRORS = Counter("verify_metrics_collect_errors_total",
                         "Business gauges that could not be read from the database during a scrape.", ["group"])
SESSION_WAIT = Histogram("verify_session_wait_seconds",
                         "How long a freelancer waited for a reviewer: from the meeting being ready (a booked "
                         "call: its time) to the claim.", buckets=WAIT_BUCKETS)
MEET_ERRORS = Counter("verify_meet_api_errors_total",
                      "Meet API calls that failed while creating a meeting (kind: rate_limited or error).", ["kind"])

bp = Blueprint("metrics", __name__)


def multiprocess_dir() -> str | None:
    """The directory gunicorn's workers share their values in, when running under gunicorn."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def record_meet_error(kind: str) -> None:
    """Count one failed Meet call (``rate_limited`` or ``error``)."""
    MEET_ERRORS.labels(kind=kind).inc()


def record_session_wait(waiting_since: dt.datetime, claimed_at: dt.datetime) -> None:
    """Observe one claim's wait (never negative: a booked call claimed before its time waited 0 s)."""
    SESSION_WAIT.observe(age_seconds(waiting_since, claimed_at))


def start_exporter(addr: str, port: int) -> WSGIServer | None:
    """Serve this process's metrics (default registry) on ``http://addr:port/metrics`` from a daemon thread.

    Returns the server, or ``None`` when it could not listen: that fails open,
    logged as an error, and the process goes on without an exporter (its
    jobs matter more than their metrics).
    """
    try:
        server, _thread = start_http_server(port, addr=addr)
    except OSError as exc:
        log.error("metrics exporter could not listen on %s:%d (%s); running without it", addr, port, exc)
        return None
    log.info("metrics exporter serving http://%s:%d/metrics", addr, port)
    return server


# ---------------------------------------------------------------- business gauges

# Reads one group of gauges on a connection at scrape time: ``(connection, now) -> metrics``.
GaugeReader = Callable[[sa.Connection, dt.datetime], Iterable[Metric]]
EXTENSION = "verify_service.business_gauges"  # app.extensions: the app's BusinessCollector


class BusinessCollector(Collector):
    """Gauges read from the database at scrape time, in groups that each feature adds (:func:`add_gauges`)."""

    def __init__(self, engine: sa.Engine, now: Callable[[], dt.datetime]) -> None:
        self.engine = engine
        self.now = now
        self.groups: dict[str, GaugeReader] = {}

    def collect(self) -> Iterator[Metric]:
        now = self.now()
        for group, read in list(self.groups.items()):
            try:
                with self.engine.connect() as connection, connection.begin():
                    if connection.dialect.name == "postgresql":
                        connection.exec_driver_sql(f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_MS}")
                    metrics = list(read(connection, now))
            except Exception as exc:  # noqa: BLE001  (a slow or broken database must not take /metrics down)
                COLLECT_ERRORS.labels(group=group).inc()
                log.warning("metrics: reading %s gauges failed: %s", group, type(exc).__name__)
                continue
            yield from metrics


def install_business_gauges(app: Flask, engine: sa.Engine, now: Callable[[], dt.datetime]) -> None:
    """Give ``app`` its (empty) business collector; the features then add their groups."""
    app.extensions[EXTENSION] = BusinessCollector(engine, now)


def add_gauges(app: Flask, group: str, read: GaugeReader) -> None:
    """Read ``group``'s gauges with ``read`` on every scrape of ``app``'s ``/metrics``."""
    app.extensions[EXTENSION].groups[group] = read


def gauge(name: str, documentation: str, value: float | None) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=float(value or 0))


def age_seconds(since: dt.datetime | None, now: dt.datetime) -> float:
    return max((now - since).total_seconds(), 0.0) if since else 0.0


# ---------------------------------------------------------------- exposition

def exposition(business: Collector | None = None) -> bytes:
    """The text exposition of every metric this process (or, under gunicorn, every worker) knows.

    ``business`` (the app's :class:`BusinessCollector`) adds the gauges read from the database.
    """
    directory = multiprocess_dir()
    if directory:
        process = CollectorRegistry()
        MultiProcessCollector(process, path=directory)
    else:
        process = REGISTRY
    business_text = b""
    if business is not None:
        # The business collector runs first so its own error counter is current in the same scrape.
        scrape = CollectorRegistry(auto_describe=False)
        scrape.register(business)
        business_text = generate_latest(scrape)
    return generate_latest(process) + business_text


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus text exposition (keep it off the public internet: see the module docstring)."""
    return Response(exposition(current_app.extensions.get(EXTENSION)), mimetype=CONTENT_TYPE_LATEST.split(";")[0],
                    headers={"Content-Type": CONTENT_TYPE_LATEST, "Cache-Control": "no-store"})
