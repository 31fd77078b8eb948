"""The job scheduler (APScheduler 3.11) and every schedule, registered in one place.

Jobs are thin: one unit of work, one service call, one commit, logged. Run
them on their own with ``verify-service scheduler``; ``make run`` starts the
same scheduler inside the web process.
"""

from __future__ import annotations

from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from flask import Flask

from jobs import calls, catalog, maintenance, outbox

# Late runs within a minute still run; a backlog of runs collapses into one;
# never two runs of one job at once.
JOB_DEFAULTS: dict[str, Any] = {"misfire_grace_time": 60, "coalesce": True, "max_instances": 1}


def create_scheduler(*, background: bool) -> BaseScheduler:
    cls = BackgroundScheduler if background else BlockingScheduler
    return cls(job_defaults=JOB_DEFAULTS, timezone="UTC")


def register_jobs(scheduler: BaseScheduler, app: Flask) -> None:
    """Every schedule of the service."""
    scheduler.add_job(outbox.deliver_outbox, "interval", seconds=2, args=[app],
                      id="deliver_outbox", replace_existing=True)
    scheduler.add_job(calls.end_requested_conferences, "interval", seconds=30, args=[app],
                      id="end_requested_conferences", replace_existing=True)
    scheduler.add_job(calls.prepare_queued_meetings, "interval", seconds=15, args=[app],
                      id="prepare_queued_meetings", replace_existing=True)
    scheduler.add_job(calls.sync_attendance, "interval", seconds=30, args=[app],
                      id="sync_attendance", replace_existing=True)
    scheduler.add_job(maintenance.prune_meet_creations, "interval", hours=1, args=[app],
                      id="prune_meet_creations", replace_existing=True)
    scheduler.add_job(maintenance.purge_freelancer_links, "interval", hours=1, args=[app],
                      id="purge_freelancer_links", replace_existing=True)
    scheduler.add_job(maintenance.purge_idempotency_keys, "interval", minutes=30, args=[app],
                      id="purge_idempotency_keys", replace_existing=True)
    scheduler.add_job(maintenance.purge_webhook_receipts, "interval", hours=1, args=[app],
                      id="purge_webhook_receipts", replace_existing=True)
    # At a fixed time of day, so frequent restarts never postpone it.
    scheduler.add_job(catalog.refresh_release_catalog, "cron", hour=4, minute=17, args=[app],
                      id="refresh_release_catalog", replace_existing=True)
