"""The scheduler's job set and the housekeeping purges, driven by the FakeClock.

The ``seed_*`` helpers are shared with ``test_job_races.py``: each adds rows
on both sides of its purge's cut-off and returns how many the purge takes now
and how many it keeps (all of them go two days later).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from apscheduler.triggers.interval import IntervalTrigger

from jobs import JOB_DEFAULTS, create_scheduler, maintenance, register_jobs
from jobs import calls as call_jobs
from tests.conftest import FakeClock
from tests.integration.test_deadline_and_retention_jobs import add_account
from tests.integration.test_review_claims import waiting_call
from tests.support.fake_meet import FakeMeetGateway
from tests.support.staff import staff_member
from verify_service.api.models import IdempotencyKey
from verify_service.calls.models import CallSession, MeetHost, MeetSpaceCreation
from verify_service.calls.services import CLAIM
from verify_service.calls.state import SessionStatus
from verify_service.db import unit_of_work
from verify_service.freelancer.models import FreelancerSession, LaunchLink
from verify_service.registry import Registry
from verify_service.staff.models import SignInThrottle, Stage, StaffSession, ThrottleKind
from verify_service.inbound.models import InboundWebhookReceipt
EXPECTED_JOBS = {"deliver_outbox", "end_requested_conferences", "prepare_queued_meetings", "sync_attendance",
                 "repair_invites",
                 "purge_idempotency_keys", "purge_webhook_receipts", "prune_meet_creations", "purge_freelancer_links",
                 "purge_staff_sessions", "purge_events",
                 "refresh_release_catalog", "send_appointment_reminders", "release_idle_claims",
                 "materialise_shifts",
                 "enforce_deadlines", "purge_personal_data", "checkpoint_audit_chain"}


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


def test_a_new_leader_runs_the_interval_jobs_at_once_and_keeps_the_times_of_day(app) -> None:
    """The leader loop registers with ``catch_up``: the backlog a dead leader left is worked at once."""
    for catch_up in (False, True):
        scheduler = create_scheduler(background=True)
        register_jobs(scheduler, app, catch_up=catch_up)
        started = dt.datetime.now(dt.timezone.utc)
        scheduler.start(paused=True)
        try:
            for job in scheduler.get_jobs():
                due_in = (job.next_run_time - started).total_seconds()
                if isinstance(job.trigger, IntervalTrigger):
                    interval = job.trigger.interval.total_seconds()
                    assert (due_in < 1) if catch_up else (due_in >= interval - 1), (job.id, catch_up, due_in)
                else:  # a time of day: never moved
                    assert due_in > 1, job.id
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


# ---------------------------------------------------------------- seeds (also raced in test_job_races.py)

def count(registry: Registry, model: type) -> int:
    with registry.sessions() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(model)) or 0


def seed_idempotency_keys(registry: Registry, clock: FakeClock) -> tuple[int, int]:
    """Three keys expired (the last one this instant) and one that expires in an hour."""
    now = clock()
    lifetimes = [dt.timedelta(hours=-2), dt.timedelta(seconds=-1), dt.timedelta(0), dt.timedelta(hours=1)]
    with registry.sessions.begin() as session:
        for i, lifetime in enumerate(lifetimes):
            session.add(IdempotencyKey(scope="POST /x", key=f"k{i}", request_hash="h", status_code=201,
                                       response_body={}, response_headers={}, created_at=now - dt.timedelta(days=1),
                                       expires_at=now + lifetime))
    return 3, 1


def seed_webhook_receipts(registry: Registry, clock: FakeClock) -> tuple[int, int]:
    """Two receipts past the 30-day window and one exactly 30 days old (kept)."""
    now = clock()
    with registry.sessions.begin() as session:
        for i, age in enumerate([dt.timedelta(days=45), dt.timedelta(days=30, seconds=1), dt.timedelta(days=30)]):
            session.add(InboundWebhookReceipt(webhook_id=f"msg_{i}", type="account.upserted", received_at=now - age))
    return 2, 1


def seed_meet_creations(registry: Registry, clock: FakeClock) -> tuple[int, int]:
    """Four space creations over an hour old and one exactly an hour old (kept)."""
    now = clock()
    with registry.sessions.begin() as session:
        session.add(MeetHost(email="host-1@fake.example"))
        session.flush()
        for minutes in (600, 90, 61, 60.01, 60):
            session.add(MeetSpaceCreation(host="host-1@fake.example", created_at=now - dt.timedelta(minutes=minutes)))
    return 4, 1


def seed_freelancer_links(registry: Registry, clock: FakeClock) -> tuple[int, int]:
    """Links and sessions unusable for over a day (2 + 2), and one of each still kept for support questions."""
    add_account(registry, "acc-links")
    now, day = clock(), dt.timedelta(days=1)
    with registry.sessions.begin() as session:
        for i, expired in enumerate([now - 3 * day, now - day - dt.timedelta(seconds=1), now - day]):
            session.add(LaunchLink(token_hash=f"link-{i}".ljust(64, "0"), account_id="acc-links",
                                   created_at=expired - dt.timedelta(minutes=10), expires_at=expired))
        sessions = [(now - day - dt.timedelta(seconds=1), now - day - dt.timedelta(hours=1)),  # past its 8 hours
                    (now + day, now - day - dt.timedelta(minutes=31)),  # idle for over a day and its timeout
                    (now + day, now - day - dt.timedelta(minutes=29))]  # kept
        for i, (expires, seen) in enumerate(sessions):
            session.add(FreelancerSession(token_hash=f"session-{i}".ljust(64, "0"), account_id="acc-links",
                                          created_at=seen, last_seen_at=seen, expires_at=expires))
    return 4, 2


def seed_staff_sessions(registry: Registry, clock: FakeClock) -> tuple[int, int]:
    """Two staff sessions over for more than a day, one throttle counter quiet for a day; one of each kept."""
    reviewer = staff_member(registry)
    now, day = clock(), dt.timedelta(days=1)
    with registry.sessions.begin() as session:
        for i, (expires, revoked) in enumerate([(now - 2 * day, None), (now + day, now - day - dt.timedelta(
                seconds=1)), (now - day + dt.timedelta(seconds=1), None)]):
            session.add(StaffSession(token_hash=f"staff-{i}".ljust(64, "0"), reviewer_id=reviewer.id,
                                     stage=Stage.ACTIVE, created_at=now - 3 * day, last_seen_at=now - day,
                                     expires_at=expires, revoked_at=revoked))
        for i, failed in enumerate([now - 2 * day, now - dt.timedelta(hours=23)]):
            session.add(SignInThrottle(key_hash=f"throttle-{i}".ljust(64, "0"), kind=ThrottleKind.IP, failures=1,
                                       last_failure_at=failed))
    return 3, 2


SEEDS: dict[str, Callable[[Registry, FakeClock], tuple[int, int]]] = {
    "purge_idempotency_keys": seed_idempotency_keys,
    "purge_webhook_receipts": seed_webhook_receipts,
    "prune_meet_creations": seed_meet_creations,
    "purge_freelancer_links": seed_freelancer_links,
    "purge_staff_sessions": seed_staff_sessions,
}


# ---------------------------------------------------------------- the purges, by the clock

def test_meet_creations_are_forgotten_an_hour_after(app, registry, clock) -> None:
    assert maintenance.prune_meet_creations(app) == 0
    assert seed_meet_creations(registry, clock) == (4, 1)
    assert maintenance.prune_meet_creations(app) == 4
    assert count(registry, MeetSpaceCreation) == 1
    assert maintenance.prune_meet_creations(app) == 0
    clock.advance(seconds=1)
    assert maintenance.prune_meet_creations(app) == 1
    assert count(registry, MeetSpaceCreation) == 0


def test_launch_links_and_freelancer_sessions_go_a_day_after_they_stop_working(app, registry, clock) -> None:
    assert seed_freelancer_links(registry, clock) == (4, 2)
    assert maintenance.purge_freelancer_links(app) == 4
    assert (count(registry, LaunchLink), count(registry, FreelancerSession)) == (1, 1)
    assert maintenance.purge_freelancer_links(app) == 0
    clock.advance(seconds=1)  # the kept link's day is over; the kept session is still within its idle timeout
    assert maintenance.purge_freelancer_links(app) == 1
    assert (count(registry, LaunchLink), count(registry, FreelancerSession)) == (0, 1)
    clock.advance(minutes=2)
    assert maintenance.purge_freelancer_links(app) == 1
    assert count(registry, FreelancerSession) == 0


def test_each_purge_job_takes_exactly_what_is_past_its_cut_off(app, registry, clock) -> None:
    for name, seed in SEEDS.items():
        expired, kept = seed(registry, clock)
        job = getattr(maintenance, name)
        assert (name, job(app), job(app)) == (name, expired, 0)
        clock.advance(days=2)
        assert (name, job(app)) == (name, kept)



# ---------------------------------------------------------------- ending conferences

def test_a_conference_whose_run_died_mid_call_is_ended_once_its_claim_lapses(app, registry, clock) -> None:
    registry.meet = gateway = FakeMeetGateway()
    call_id = waiting_call(registry.sessions, clock, "acc-1", gateway)
    with unit_of_work(registry.sessions) as session:
        call = session.get_one(CallSession, call_id)
        gateway.start_conference(call.meet_space)
        call.status, call.conference_end_requested_at = SessionStatus.CANCELED, clock()
    requested_at = clock()
    gateway.fail_next(RuntimeError("the process died"), times=1)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError):
        call_jobs.end_requested_conferences(app)
    clock.advance(seconds=CLAIM.total_seconds() - 1)
    assert call_jobs.end_requested_conferences(app).ended == 0  # still claimed by the dead run
    assert len(gateway.end_requests) == 1
    clock.advance(seconds=1)
    assert call_jobs.end_requested_conferences(app).ended == 1
    assert call_jobs.end_requested_conferences(app).ended == 0
    assert gateway.ended == [gateway.end_requests[0]] and len(gateway.end_requests) == 2
    with registry.sessions() as session:
        call = session.get_one(CallSession, call_id)
        assert (call.conference_ended_at, call.conference_end_requested_at, call.conference_ending_until) == (
            clock(), requested_at, None)
