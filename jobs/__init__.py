"""The job scheduler (APScheduler 3.11) and every schedule, registered in one place.

Jobs are thin: one unit of work, one service call, one commit, logged. Run
them on their own with ``verify-service scheduler``; ``make run`` starts the
same scheduler inside the web process. Either way the scheduler only runs
while its process leads (``jobs/leader.py``: a PostgreSQL advisory lock).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from flask import Flask

from jobs import audit, calls, catalog, invites, maintenance, meet_events, outbox, shifts
from jobs.runner import run_recorded
from verify_service.registry import KEY
from verify_service.settings import Settings

# Late runs within a minute still run; a backlog of runs collapses into one;
# never two runs of one job at once.
JOB_DEFAULTS: dict[str, Any] = {"misfire_grace_time": 60, "coalesce": True, "max_instances": 1}


def create_scheduler(*, background: bool) -> BaseScheduler:
    cls = BackgroundScheduler if background else BlockingScheduler
    return cls(job_defaults=JOB_DEFAULTS, timezone="UTC")


Schedule = tuple[Callable[[Flask], Any], str, dict[str, int]]

# Every schedule of the service: (job, trigger, trigger arguments).
SCHEDULES: tuple[Schedule, ...] = (
    (outbox.deliver_outbox, "interval", {"seconds": 2}),
    (calls.prepare_queued_meetings, "interval", {"seconds": 15}),
    (calls.sync_attendance, "interval", {"seconds": 30}),
    (calls.end_requested_conferences, "interval", {"seconds": 30}),
    (calls.send_appointment_reminders, "interval", {"minutes": 1}),
    (invites.repair_invites, "interval", {"minutes": 1}),
    (calls.release_idle_claims, "interval", {"minutes": 1}),
    (maintenance.enforce_deadlines, "interval", {"minutes": 1}),
    (maintenance.purge_idempotency_keys, "interval", {"minutes": 30}),
    (maintenance.purge_webhook_receipts, "interval", {"hours": 1}),
    (maintenance.purge_freelancer_links, "interval", {"hours": 1}),
    (maintenance.purge_staff_sessions, "interval", {"hours": 1}),
    (maintenance.prune_meet_creations, "interval", {"hours": 1}),
    (maintenance.purge_events, "interval", {"hours": 1}),  # delivered events past VERIFY_EVENT_RETENTION_DAYS
    (audit.checkpoint_audit_chain, "interval", {"hours": 1}),  # a signed head, anchored outside the database
    # At a fixed time of day, so frequent restarts never postpone it.
    (catalog.refresh_release_catalog, "cron", {"hour": 4, "minute": 17}),
    (shifts.materialise_shifts, "cron", {"hour": 3, "minute": 41}),  # 14 days ahead: a missed day is harmless
    (maintenance.purge_personal_data, "cron", {"hour": 2, "minute": 23}),  # VERIFY_RETENTION_DAYS after decisions
)

# Only while Meet events are configured (VERIFY_MEET_EVENTS_TOPIC): without them no subscription is kept and
# no event receipt is written.
MEET_EVENT_SCHEDULES: tuple[Schedule, ...] = (
    (meet_events.keep_meet_subscriptions, "interval", {"minutes": 10}),  # renewed a day before they end
    (meet_events.drain_meet_events, "interval", {"seconds": 5}),  # what a push left pending (Meet unreadable)
    (meet_events.purge_meet_event_receipts, "cron", {"hour": 3, "minute": 53}),  # past Pub/Sub's 7-day redelivery
)


def schedules(settings: Settings) -> tuple[Schedule, ...]:
    """The schedules these settings run: :data:`SCHEDULES`, and :data:`MEET_EVENT_SCHEDULES` with Meet events."""
    return SCHEDULES + (MEET_EVENT_SCHEDULES if settings.meet_events else ())


def register_jobs(scheduler: BaseScheduler, app: Flask, guard: Callable[[], bool] | None = None, *,
                  catch_up: bool = False) -> None:
    """Register every schedule of :func:`schedules` for the app's settings; a job's id is its function's name.

    Each run goes through :func:`jobs.runner.run_recorded` (heartbeat record,
    metrics), which first asks ``guard`` — the leader's lock check — and skips
    the run when it answers no. With ``catch_up`` every interval job runs as
    soon as the scheduler starts, then on its interval: a process that has just
    taken the lead (or just started) does the work waiting since the last run
    of a leader — deliveries, attendance, meetings — at once, not an interval
    later. Jobs at a time of day keep their time.
    """
    for job, trigger, when in schedules(app.extensions[KEY].settings):
        first = {"next_run_time": dt.datetime.now(dt.timezone.utc)} if catch_up and trigger == "interval" else {}
        scheduler.add_job(run_recorded, trigger, args=[job, app, guard], id=job.__name__, name=job.__name__,
                          replace_existing=True, **when, **first)
