"""Call-session jobs."""

from __future__ import annotations

import datetime as dt
import logging

from flask import Flask

from integrations.google_meet import MeetConfigurationError, MeetError
from jobs.runner import job_unit
from verify_service.calls import attendance, meetings, reconciliation, reminders, scheduling, services
from verify_service.calls.services import ConferenceEnding
from verify_service.db import unit_of_work
from verify_service.meet_events import subscriptions
from verify_service.registry import KEY, Registry
from verify_service.settings import Settings
from verify_service.review import claims

log = logging.getLogger("jobs")

# Sessions re-applied from their stored events per transaction (their rows stay locked for it).
REAPPLY_BATCH = 100


def due_limit(settings: Settings) -> int:
    """Sessions one attendance run takes: with events most are only re-applied (no Meet read), so more fit."""
    return 2000 if settings.meet_events else 500


def end_requested_conferences(app: Flask) -> ConferenceEnding:
    """End the Meet conferences of canceled sessions (e.g. the account closed); failures wait for the next run.

    Raises:
        MeetConfigurationError: the configured Meet backend is not available
            (logged by the runner; nothing is changed).
    """
    registry: Registry = app.extensions[KEY]
    try:
        result = services.end_requested_conferences(registry.sessions, registry.meet_gateway(), now=registry.now())
    except MeetConfigurationError as exc:
        registry.note_meet(str(exc))  # /readyz shows it
        log.error("Meet is misconfigured; conferences wait to be ended: %s", exc)
        raise
    if result.ended or result.failed:
        log.info("ended %d Meet conferences; %d failed and will be retried", result.ended, result.failed)
    return result


# The two jobs below call Google between their transactions (none stays open
# during a call), so they are not a single unit of work; each step is.

def prepare_queued_meetings(app: Flask) -> int:
    """Create the meetings queued by Meet's creation budget, then their pending invites.

    A host user's configuration error is noted against that host for /readyz
    (and cleared by a space created as it); the other hosts create the
    queued meetings meanwhile.
    """
    registry: Registry = app.extensions[KEY]
    try:
        gateway, settings, now = registry.meet_gateway(), registry.settings, registry.now()
        ready = meetings.prepare_queued(registry.sessions, gateway, settings=settings, now=now,
                                        on_host=registry.note_meet_host)
        invited = scheduling.send_pending_invites(registry.sessions, gateway, settings=settings, now=now)
    except MeetConfigurationError as exc:
        registry.note_meet_error(exc)  # /readyz shows it; queued sessions wait for the fix
        log.error("Meet is misconfigured: %s", exc)
        return 0
    registry.note_meet(None)
    if ready or invited:
        log.info("job prepare_queued_meetings: %d meetings created, %d invites sent", ready, invited)
    return ready


def sync_attendance(app: Flask) -> int:
    """Read attendance for active sessions (and those ended within the hour); returns how many were read.

    With Meet's events configured this is reconciliation (``attendance.plan_reconciliation``): only
    sessions quiet for ``VERIFY_ATTENDANCE_RECONCILE_SECONDS``, or whose host has no live subscription,
    are read; the others are re-applied from what their events stored, reading nothing.

    A configuration error met acting as one host user (suspended, delegation
    revoked) is noted against that host for /readyz, and that host's other
    sessions wait for the next run (Meet is not asked again as it now); the
    other hosts' sessions are still read. A read that works as a host clears
    its problem.
    """
    registry: Registry = app.extensions[KEY]
    gateway, now, settings = registry.meet_gateway(), registry.now(), registry.settings
    timing = attendance.timing(settings)
    with unit_of_work(registry.sessions, write=False) as db:
        due = attendance.sessions_to_sync(db, now=now, limit=due_limit(settings))
        hosts = meetings.hosts_of(db, due)
        if settings.meet_events:  # polling reconciles: most sessions are re-applied from their events
            plan = reconciliation.plan_reconciliation(db, due, live_hosts=subscriptions.live_hosts(db, now),
                                                  settings=settings, now=now)
            due = plan.read
    if settings.meet_events:
        for start in range(0, len(plan.reapply), REAPPLY_BATCH):
            with unit_of_work(registry.sessions) as db:
                attendance.reevaluate_many(db, plan.reapply[start:start + REAPPLY_BATCH], now=now, **timing)
    failing: set[str] = set()
    synced = 0
    for call_session_id in due:
        host = hosts.get(call_session_id)
        if host is not None and host in failing:
            continue
        try:
            attendance.sync_attendance(registry.sessions, gateway, call_session_id, now=now, **timing)
            synced += 1
        except MeetConfigurationError as exc:
            if host is None:  # no host's credentials involved: nothing to isolate
                registry.note_meet(str(exc))
                log.error("Meet is misconfigured; attendance of call session %s is not read: %s",
                          call_session_id, exc)
                continue
            failing.add(host)
            registry.note_meet_host(host, str(exc))  # /readyz names the host
            log.error("Meet is misconfigured for host %s; its sessions' attendance is not read: %s", host, exc)
            continue
        except MeetError as exc:  # one session's trouble must not stop the others
            log.warning("attendance of call session %s could not be read: %s", call_session_id, exc)
            continue
        if host is not None:
            registry.note_meet_host(host, None)
    return synced


def send_appointment_reminders(app: Flask) -> int:
    """Put the due appointment reminders in the outbox (deliver_outbox sends them); returns how many."""
    with job_unit(app, "send_appointment_reminders") as (db, registry):
        sent = reminders.send_due_reminders(db, settings=registry.settings, now=registry.now())
    if sent:
        log.info("job send_appointment_reminders: %d reminders enqueued", sent)
    return sent


def release_idle_claims(app: Flask) -> int:
    """Give claims idle for ``claim_idle_minutes`` back to the queue; returns how many."""
    with job_unit(app, "release_idle_claims") as (db, registry):
        idle = dt.timedelta(minutes=registry.settings.claim_idle_minutes)
        released = claims.release_idle_claims(db, idle=idle, now=registry.now())
    if released:
        log.info("job release_idle_claims: %d idle claims back in the queue", len(released))
    return len(released)
