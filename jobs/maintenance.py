"""Housekeeping jobs."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from flask import Flask

from jobs.runner import job_unit
from verify_service.accounts import deadlines
from verify_service.api import idempotency
from verify_service.calls import meetings
from verify_service.events import feed as events_feed, retention as events_retention
from verify_service.freelancer import services as freelancer
from verify_service.registry import KEY, Registry
from verify_service.review import retention
from verify_service.staff import services as staff
from verify_service.inbound import events as inbound

log = logging.getLogger("jobs")


def _purge(app: Flask, name: str, purge: Callable[..., int]) -> int:
    """One unit of work around ``purge(session, now=…)``; logs how much went."""
    with job_unit(app, name) as (db, registry):
        deleted = purge(db, now=registry.now())
    if deleted:
        log.info("job %s deleted %d rows", name, deleted)
    return deleted


def purge_idempotency_keys(app: Flask) -> int:
    """Forget Idempotency-Keys past their lifetime (batched, so a backlog never holds a long lock)."""
    return _purge(app, "purge_idempotency_keys", idempotency.purge_expired)


def purge_webhook_receipts(app: Flask) -> int:
    """Forget inbound webhook-ids older than the retention window (far past any sender's retries)."""
    return _purge(app, "purge_webhook_receipts", inbound.purge_receipts)


def prune_meet_creations(app: Flask) -> int:
    """Forget space creations older than an hour (the budget only looks at the last minute)."""
    return _purge(app, "prune_meet_creations", meetings.prune_creations)


def purge_freelancer_links(app: Flask) -> int:
    """Delete launch links and freelancer sessions that can no longer be used."""
    return _purge(app, "purge_freelancer_links", freelancer.purge_expired)


def purge_staff_sessions(app: Flask) -> int:
    """Delete staff sessions over for a day and sign-in throttle counters quiet for a day."""
    return _purge(app, "purge_staff_sessions", staff.purge_expired)


def purge_events(app: Flask) -> int:
    """Delete delivered events older than ``VERIFY_EVENT_RETENTION_DAYS`` (the events API's window).

    Batched, one transaction per batch (see verify_service/events/retention.py).
    """
    registry: Registry = app.extensions[KEY]
    started = time.monotonic()
    try:
        deleted = events_retention.purge_events(registry.sessions, now=registry.now(),
                                                retention=events_feed.retention_period(registry.settings))
    except Exception:
        log.exception("job purge_events failed after %.3fs", time.monotonic() - started)
        raise
    log.info("job purge_events done in %.3fs: %d events deleted", time.monotonic() - started, deleted)
    return deleted


def enforce_deadlines(app: Flask) -> int:
    """Place the verification_pending hold for requests whose deadline passed without a pass; returns how many."""
    with job_unit(app, "enforce_deadlines") as (db, registry):
        placed = deadlines.enforce_deadlines(db, now=registry.now())
    if placed:
        log.info("job enforce_deadlines placed %d verification_pending holds", len(placed))
    return len(placed)


def purge_personal_data(app: Flask) -> retention.RetentionReport:
    """Erase notes, ID evidence and Meet display names of calls that ended over ``retention_days`` ago.

    Batched, one transaction per batch (see verify_service/review/retention.py).
    """
    registry: Registry = app.extensions[KEY]
    started = time.monotonic()
    try:
        report = retention.purge_personal_data(
            registry.sessions, now=registry.now(), retention=retention.retention_period(registry.settings))
    except Exception:
        log.exception("job purge_personal_data failed after %.3fs", time.monotonic() - started)
        raise
    log.info("job purge_personal_data done in %.3fs: %d call sessions cleaned, %d ID documents deleted",
             time.monotonic() - started, report.sessions, report.documents)
    return report
