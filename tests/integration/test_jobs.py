"""The scheduler's job set and the idempotency-key purge."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from jobs import JOB_DEFAULTS, create_scheduler, maintenance, register_jobs
from verify_service.api.models import IdempotencyKey

# The complete job set so far; a new job must be added here on purpose.
EXPECTED_JOBS = {"deliver_outbox", "end_requested_conferences", "prepare_queued_meetings", "sync_attendance",
                 "purge_idempotency_keys", "purge_webhook_receipts", "prune_meet_creations", "purge_freelancer_links",
                 "purge_staff_sessions",
                 "refresh_release_catalog", "send_appointment_reminders", "release_idle_claims",
                 "materialise_shifts",
                 "enforce_deadlines", "purge_personal_data"}


def test_register_jobs_registers_every_schedule_with_safe_defaults(app) -> None:
    scheduler = create_scheduler(background=True)
    register_jobs(scheduler, app)
    scheduler.start(paused=True)  # job defaults are applied when the scheduler starts
    try:
        jobs = {job.id: job for job in scheduler.get_jobs()}
        assert set(jobs) == EXPECTED_JOBS
        for job in jobs.values():
            assert job.coalesce is True
            assert job.max_instances == 1
            assert job.misfire_grace_time == JOB_DEFAULTS["misfire_grace_time"]
    finally:
        scheduler.shutdown(wait=False)


def test_purge_removes_only_expired_keys(app, registry, clock) -> None:
    now = clock()
    with registry.sessions.begin() as session:
        for i, expires in enumerate([now - dt.timedelta(seconds=1), now, now + dt.timedelta(hours=1)]):
            session.add(IdempotencyKey(scope="POST /x", key=f"k{i}", request_hash="h", status_code=201,
                                       response_body={}, response_headers={}, created_at=now, expires_at=expires))
    assert maintenance.purge_idempotency_keys(app) == 2
    with registry.sessions() as session:
        assert session.scalars(sa.select(IdempotencyKey.key)).all() == ["k2"]
    assert maintenance.purge_idempotency_keys(app) == 0
