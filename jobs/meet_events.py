"""Meet events jobs: keeping the host users' Workspace Events subscriptions, applying events left pending,
forgetting old event receipts.

They are registered only while Meet events are configured (``VERIFY_MEET_EVENTS_TOPIC``; jobs/__init__.py).
"""

from __future__ import annotations

import logging

from flask import Flask

from integrations.google_meet import MeetConfigurationError
from integrations.meet_events import MeetEventsGateway
from jobs.runner import job_unit
from verify_service.meet_events import apply, subscriptions
from verify_service.registry import KEY, Registry

log = logging.getLogger("jobs")


def events_gateway(registry: Registry) -> MeetEventsGateway:
    """The app's Workspace Events gateway, built on first use (``integrations.make_meet_events_gateway``).

    Raises:
        MeetConfigurationError: the configured backend is not available.
    """
    return registry.meet_events_gateway()


def keep_meet_subscriptions(app: Flask) -> subscriptions.KeepResult:
    """Create, renew, reactivate or replace each host user's subscription (verify_service/meet_events/subscriptions.py).

    Calls Google between its transactions (a workflow), so it is not one unit of work. One host's failure is
    left on its row for /readyz and never stops the others.

    Raises:
        MeetConfigurationError: the events gateway cannot be built (left on every host's row first).
    """
    registry: Registry = app.extensions[KEY]
    settings, now = registry.settings, registry.now()
    hosts = subscriptions.configured_hosts(settings)
    try:
        gateway = events_gateway(registry)
    except MeetConfigurationError as exc:
        subscriptions.note_unavailable(registry.sessions, hosts, f"the Workspace Events gateway: {exc}", now=now)
        log.error("Meet events are misconfigured; no subscription is kept: %s", exc)
        raise
    result = subscriptions.keep_subscriptions(registry.sessions, gateway, hosts=hosts,
                                              topic=settings.meet_events_topic, now=now)
    if result.changed():
        log.info("job keep_meet_subscriptions: %d created, %d renewed, %d reactivated, %d recreated, %d failed, "
                 "%d removed", result.created, result.renewed, result.reactivated, result.recreated, result.failed,
                 result.removed)
    return result


def purge_meet_event_receipts(app: Flask) -> int:
    """Forget applied Meet events older than 8 days (Pub/Sub redelivers for at most 7)."""
    with job_unit(app, "purge_meet_event_receipts") as (db, registry):
        deleted = subscriptions.purge_receipts(db, now=registry.now())
    if deleted:
        log.info("job purge_meet_event_receipts deleted %d rows", deleted)
    return deleted


def drain_meet_events(app: Flask) -> int:
    """Apply Meet events still pending (a push whose Meet read failed, or one left behind a drain); how many.

    A push applies its event at once itself; this job only catches what that left, a batch a run.
    """
    registry: Registry = app.extensions[KEY]
    drained = apply.drain(registry.sessions, registry.meet_gateway(), settings=registry.settings, now=registry.now())
    if drained.hosts:
        subscriptions.keep_hosts_now(registry.sessions, events_gateway(registry), drained.hosts,
                                     settings=registry.settings, now=registry.now())
    done = sum(1 for applied in drained.results.values() if applied.result is not apply.Result.PENDING)
    if done:
        log.info("job drain_meet_events: %d events applied", done)
    return done
