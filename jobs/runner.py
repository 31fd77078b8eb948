"""The shape every job shares: one unit of work, logged with its duration; and how each run is recorded."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from flask import Flask
from sqlalchemy.orm import Session

from jobs.metrics import JOB_DURATION, JOB_RUNS
from verify_service.db import unit_of_work
from verify_service.observability.logging import bind_request_id
from verify_service.ops import heartbeat
from verify_service.registry import KEY, Registry

log = logging.getLogger("jobs")

# The instance id the app's job runs are recorded under (set by jobs/leader.py).
INSTANCE_KEY = "verify_service.scheduler_instance"


@contextlib.contextmanager
def job_unit(app: Flask, name: str) -> Iterator[tuple[Session, Registry]]:
    """Open the job's one transaction; commit at the end, roll back and log on error.

    Raises: whatever the block raises (after rolling back).
    """
    registry: Registry = app.extensions[KEY]
    started = time.monotonic()
    try:
        with unit_of_work(registry.sessions) as db:
            yield db, registry
    except Exception:
        log.exception("job %s failed after %.3fs", name, time.monotonic() - started)
        raise
    log.info("job %s done in %.3fs", name, time.monotonic() - started)


def _record(what: str, write: Callable[[], None]) -> None:
    """Write to the heartbeat; a failure is logged, never raised (the job matters more than its record)."""
    try:
        write()
    except Exception:  # any database trouble: the job still runs, /readyz shows a stale record
        log.warning("could not record %s in the scheduler heartbeat", what, exc_info=True)


def run_recorded(job: Callable[[Flask], Any], app: Flask, guard: Callable[[], bool] | None = None) -> Any:
    """Run ``job(app)`` as the scheduler does: leader check, heartbeat record, metrics, a run id.

    Every log line of the run carries a fresh run id (as ``request_id``) and
    ``job``, so one run's lines can be found together.
    ``guard`` (the leader's lock check) runs first; when it says no, the run is
    skipped (counted as ``skipped``) so a scheduler that just lost its lock never
    acts.

    Raises: whatever the job raises (after recording it; APScheduler logs it).
    """
    with bind_request_id(job=job.__name__):
        return _run_recorded(job, app, guard)


def _run_recorded(job: Callable[[Flask], Any], app: Flask, guard: Callable[[], bool] | None) -> Any:
    name = job.__name__
    if guard is not None and not guard():
        JOB_RUNS.labels(job=name, outcome="skipped").inc()
        log.warning("job %s skipped: this scheduler no longer holds the leader lock", name)
        return None
    registry: Registry = app.extensions[KEY]
    instance = str(app.extensions.get(INSTANCE_KEY, "unknown"))
    started_at, started = registry.now(), time.monotonic()
    _record(f"the start of {name}", lambda: heartbeat.job_started(registry.sessions, name, instance, now=started_at))
    error: str | None = None
    try:
        return job(app)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        JOB_DURATION.labels(job=name).observe(time.monotonic() - started)
        JOB_RUNS.labels(job=name, outcome="ok" if error is None else "error").inc()
        _record(f"the end of {name}", lambda: heartbeat.job_finished(
            registry.sessions, name, instance, started_at=started_at, now=registry.now(), error=error))
