"""Every job run by two schedulers at once, on PostgreSQL: neither effect is doubled (issue 8).

A lost leadership lock, or a web process and a scheduler, can run one job
twice at the same moment. Each test runs the job function in two threads
against one app and database (``run_together``), for several rounds moved by
the FakeClock, and asserts that every effect happened exactly once.
"""

from __future__ import annotations

import collections
import datetime as dt
import threading
import time
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from flask import Flask

from integrations.google_meet import ConferenceAttendance, Participant, ParticipantSession
from jobs import calls as call_jobs
from jobs import maintenance
from jobs.shifts import materialise_shifts
from tests.conftest import FakeClock
from tests.integration.test_deadline_and_retention_jobs import (
    add_account,
    attendance,
    decided_call,
    ended_call,
    personal_data,
)
from tests.integration.test_jobs import SEEDS
from tests.integration.test_review_claims import waiting_call
from tests.support.concurrency import run_together
from tests.support.fake_meet import FakeMeetGateway
from tests.support.staff import staff_member
from verify_service.audit.models import AuditEntry
from verify_service.calls.models import CallParticipant, CallSession
from verify_service.calls.reminders import REMINDER_EVENT
from verify_service.calls.state import SessionStatus
from verify_service.db import unit_of_work
from verify_service.leads import shifts
from verify_service.registry import Registry
from verify_service.staff.models import ReviewerShift
from verify_service.webhooks.models import OutboxEvent

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
ACCOUNTS = 6


def race(app: Flask, job: Callable[[Flask], object]) -> list[object]:
    """One round: ``job`` started by two schedulers at the same moment; both results."""
    results = run_together([lambda: job(app)] * 2)
    assert not [r for r in results if isinstance(r, Exception)], results
    return results


def events(registry: Registry, event_type: str) -> collections.Counter[str]:
    """How many ``event_type`` events each account has in the outbox."""
    with unit_of_work(registry.sessions, write=False) as session:
        return collections.Counter(session.scalars(sa.select(OutboxEvent.account_id)
                                                   .where(OutboxEvent.type == event_type)))


def calls(registry: Registry) -> dict[str, CallSession]:
    with unit_of_work(registry.sessions, write=False) as session:
        rows = session.scalars(sa.select(CallSession)).all()
        session.expunge_all()
        return {row.id: row for row in rows}


def audit_count(registry: Registry) -> int:
    with unit_of_work(registry.sessions, write=False) as session:
        return session.scalar(sa.select(sa.func.count()).select_from(AuditEntry)) or 0


# ---------------------------------------------------------------- reminders

def booked_call(registry: Registry, account_id: str, start: dt.datetime) -> str:
    add_account(registry, account_id)
    with unit_of_work(registry.sessions) as session:
        call = CallSession(account_id=account_id, status=SessionStatus.SCHEDULED, scheduled_for=start,
                           meet_uri=f"https://meet.example/{account_id}", created_at=registry.now(),
                           updated_at=registry.now())
        session.add(call)
        session.flush()
        return call.id


def test_two_schedulers_send_each_reminder_once(backend, app: Flask, registry: Registry, clock: FakeClock) -> None:
    start = clock() + dt.timedelta(days=2)
    booked = {booked_call(registry, f"acc-{n}", start + dt.timedelta(minutes=n)): f"acc-{n}"
              for n in range(ACCOUNTS)}
    sent = []
    for before in (1440, 15):  # the settings' reminder_minutes
        clock.current = start - dt.timedelta(minutes=before)
        for _ in range(3):
            sent += race(app, call_jobs.send_appointment_reminders)
            clock.advance(seconds=20)
        clock.advance(minutes=ACCOUNTS)  # every call's reminder is due now
        for _ in range(2):
            sent += race(app, call_jobs.send_appointment_reminders)
    assert sum(sent) == 2 * ACCOUNTS  # type: ignore[arg-type]
    with unit_of_work(registry.sessions, write=False) as session:
        payloads = session.scalars(sa.select(OutboxEvent.data).where(OutboxEvent.type == REMINDER_EVENT)).all()
    reminded = collections.Counter((p["session"]["id"], p["minutes_before"]) for p in payloads)
    assert reminded == {(call_id, m): 1 for call_id in booked for m in (1440, 15)}
    assert all(row.reminders_sent == 2 for row in calls(registry).values())


# ---------------------------------------------------------------- attendance

def joined(space: str, at: dt.datetime) -> ConferenceAttendance:
    """The freelancer (signed in) and an anonymous guest are in ``space``'s conference since ``at``."""
    record = f"conferenceRecords/{space.split('/')[-1]}"
    people = (Participant(f"{record}/participants/f", "signed_in", f"users/{space}", "Ana Lima",
                          (ParticipantSession(at, None),)),
              Participant(f"{record}/participants/a", "anonymous", None, "Guest", (ParticipantSession(at, None),)))
    return ConferenceAttendance(record, at, None, people)


def test_two_schedulers_syncing_attendance_start_each_session_once(backend, app: Flask, registry: Registry,
                                                                   clock: FakeClock) -> None:
    registry.meet = gateway = FakeMeetGateway()
    ids = [waiting_call(registry.sessions, clock, f"acc-{n}", gateway) for n in range(ACCOUNTS)]
    rows = calls(registry)
    clock.advance(minutes=2)
    for call_id in ids:
        gateway.add_attendance(rows[call_id].meet_space, joined(rows[call_id].meet_space, clock()))
    started_at = clock.advance(minutes=1)
    for _ in range(3):
        assert race(app, call_jobs.sync_attendance) == [ACCOUNTS, ACCOUNTS]
        clock.advance(minutes=1)
    rows = calls(registry)
    assert {rows[i].status for i in ids} == {SessionStatus.IN_PROGRESS}
    assert {rows[i].started_at for i in ids} == {started_at}  # one transition, at the first run
    assert events(registry, "verification.session.started") == {f"acc-{n}": 1 for n in range(ACCOUNTS)}
    with unit_of_work(registry.sessions, write=False) as session:
        participants = collections.Counter(session.scalars(sa.select(CallParticipant.call_session_id)))
    assert participants == {call_id: 2 for call_id in ids}


def test_two_schedulers_expire_each_abandoned_session_once(backend, app: Flask, registry: Registry,
                                                           clock: FakeClock) -> None:
    registry.meet = gateway = FakeMeetGateway()
    waiting = [waiting_call(registry.sessions, clock, f"acc-{n}", gateway) for n in range(ACCOUNTS)]
    booked = booked_call(registry, "acc-booked", clock())  # booked, no meeting, nobody came
    ttl = dt.timedelta(minutes=registry.settings.session_ttl_minutes)
    clock.advance(minutes=ttl.total_seconds() / 60 - 1)
    race(app, call_jobs.sync_attendance)
    assert {row.status for row in calls(registry).values()} == {SessionStatus.WAITING, SessionStatus.SCHEDULED}
    expired_at = clock.advance(minutes=1)
    for _ in range(3):
        race(app, call_jobs.sync_attendance)
        clock.advance(minutes=1)
    rows = calls(registry)
    assert {(row.status, row.ended_at) for row in rows.values()} == {(SessionStatus.EXPIRED, expired_at)}
    assert [rows[i].conference_end_requested_at for i in waiting] == [expired_at] * ACCOUNTS
    assert rows[booked].conference_end_requested_at is None  # no meeting, nothing to end
    expired = {f"acc-{n}": 1 for n in range(ACCOUNTS)} | {"acc-booked": 1}
    assert events(registry, "verification.session.expired") == expired


# ---------------------------------------------------------------- ending conferences

def test_two_schedulers_end_each_conference_once(backend, app: Flask, registry: Registry, clock: FakeClock) -> None:
    registry.meet = gateway = FakeMeetGateway()
    ids = [waiting_call(registry.sessions, clock, f"acc-{n}", gateway) for n in range(ACCOUNTS)]
    spaces = [row.meet_space for row in calls(registry).values()]
    for space in spaces:
        gateway.start_conference(space)
    requested_at = clock.advance(minutes=5)
    with unit_of_work(registry.sessions) as session:
        session.execute(sa.update(CallSession).values(status=SessionStatus.CANCELED,
                                                      conference_end_requested_at=requested_at))
    ended = []
    for _ in range(3):
        ended += race(app, call_jobs.end_requested_conferences)
        clock.advance(seconds=30)
    assert sum(result.ended for result in ended) == ACCOUNTS  # type: ignore[attr-defined]
    assert collections.Counter(gateway.end_requests) == {space: 1 for space in spaces}  # Meet asked once each
    assert sorted(gateway.ended) == sorted(spaces)
    rows = calls(registry)
    assert {(rows[i].conference_end_requested_at, rows[i].conference_ended_at) for i in ids} == {
        (requested_at, requested_at)}


# ---------------------------------------------------------------- retention

def test_two_schedulers_purge_each_call_once(backend, app: Flask, registry: Registry, clock: FakeClock,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from verify_service.review import retention
    monkeypatch.setitem(retention.purge_personal_data.__kwdefaults__, "batch", 2)  # batches interleave
    add_account(registry)
    old = [decided_call(registry, "acc-1", clock() - dt.timedelta(days=91 + n), tag=f"t{n}")
           for n in range(3 * ACCOUNTS)]
    audit_before = audit_count(registry)
    reports = []
    for _ in range(3):
        reports += race(app, maintenance.purge_personal_data)
        clock.advance(days=1)
    assert sum(r.sessions for r in reports) == len(old)  # type: ignore[attr-defined]
    assert sum(r.documents for r in reports) == len(old)  # type: ignore[attr-defined]
    assert [personal_data(registry, call_id) for call_id in old] == [(None, 0, [None])] * len(old)
    assert audit_count(registry) == audit_before  # the audit log is left as it is


def test_two_schedulers_purge_each_ended_call_once_decided_or_not(backend, app: Flask, registry: Registry,
                                                                  clock: FakeClock,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from verify_service.review import retention
    monkeypatch.setitem(retention.purge_personal_data.__kwdefaults__, "batch", 2)  # batches interleave
    add_account(registry)
    decided = [decided_call(registry, "acc-1", clock() - dt.timedelta(days=91 + n), tag=f"d{n}")
               for n in range(ACCOUNTS)]
    undecided = [ended_call(registry, "acc-1", status, clock() - dt.timedelta(days=91 + n, hours=1),
                            tag=f"{status.value}-{n}")
                 for n in range(ACCOUNTS) for status in (SessionStatus.EXPIRED, SessionStatus.CANCELED)]
    reports = []
    for _ in range(3):
        reports += race(app, maintenance.purge_personal_data)
        clock.advance(days=1)
    assert sum(r.sessions for r in reports) == len(decided) + len(undecided)  # type: ignore[attr-defined]
    assert sum(r.documents for r in reports) == len(decided)  # type: ignore[attr-defined]
    assert [personal_data(registry, call_id) for call_id in decided] == [(None, 0, [None])] * len(decided)
    assert {row[0] for call_id in undecided for row in attendance(registry, call_id)} == {None}


def test_a_call_purged_while_a_claim_was_running_is_not_counted_twice(backend, app: Flask, registry: Registry,
                                                                     clock: FakeClock,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The window the re-check under the lock closes, made deterministic.

    The slow run's claim takes its snapshot, then waits (``pg_sleep`` in its condition); meanwhile the
    other run purges the call and commits; the slow run then locks the call, free again and unchanged.
    """
    from verify_service.review import retention
    holds_personal_data = retention._holds_personal_data
    slow = "slow-purge"

    def slowed() -> sa.ColumnElement[bool]:
        if threading.current_thread().name != slow:
            return holds_personal_data()
        return sa.and_(holds_personal_data(), sa.func.pg_sleep(1.0).is_not(None))

    monkeypatch.setattr(retention, "_holds_personal_data", slowed)
    add_account(registry)
    call_id = ended_call(registry, "acc-1", SessionStatus.EXPIRED, clock() - dt.timedelta(days=91), tag="x")
    cutoff = clock() - dt.timedelta(days=90)
    reports: list[retention.RetentionReport] = []

    def slow_purge() -> None:
        with unit_of_work(registry.sessions) as session:
            reports.append(retention.purge_batch(session, cutoff=cutoff))

    thread = threading.Thread(target=slow_purge, name=slow)
    thread.start()
    deadline = time.monotonic() + 10
    asleep = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event = 'PgSleep'"
    with registry.engine.connect() as connection:  # wait until the slow claim is asleep, its snapshot taken
        while not connection.exec_driver_sql(asleep).scalar_one():
            assert time.monotonic() < deadline, "the slow claim never started"
            time.sleep(0.02)
    with unit_of_work(registry.sessions) as session:
        fast = retention.purge_batch(session, cutoff=cutoff)
    thread.join(20)
    assert fast == retention.RetentionReport(1, 0)
    assert reports == [retention.RetentionReport(0, 0)]  # claimed, re-checked, found clean: not counted
    assert [row[0] for row in attendance(registry, call_id)] == [None, None]


# ---------------------------------------------------------------- shifts

def test_two_schedulers_materialise_each_shift_once(backend, app: Flask, registry: Registry,
                                                    clock: FakeClock) -> None:
    for n in range(ACCOUNTS):
        reviewer = staff_member(registry, email=f"r{n}@example.com")
        with unit_of_work(registry.sessions) as session:
            plan = shifts.parse_plan(str(reviewer.id), str(n), "09:00", "17:00", "Europe/Berlin")
            shifts.add_recurring_shift(session, plan, actor="test", now=clock())
    added = []
    for _ in range(3):
        clock.advance(days=7)
        added += [report.added for report in race(app, materialise_shifts)]  # type: ignore[attr-defined]
    assert sum(added) == 3 * ACCOUNTS  # a week further each round: one more occurrence per weekly shift
    with unit_of_work(registry.sessions, write=False) as session:
        rows = session.execute(sa.select(ReviewerShift.recurring_shift_id, ReviewerShift.starts_at)).all()
    assert len(rows) == len(set(rows)) == 5 * ACCOUNTS  # two weeks ahead at the start, three more weeks


# ---------------------------------------------------------------- the purges

@pytest.mark.parametrize("name", sorted(SEEDS))
def test_two_schedulers_purging_count_each_row_once(backend, app: Flask, registry: Registry, clock: FakeClock,
                                                    name: str) -> None:
    job = getattr(maintenance, name)
    expired, kept = SEEDS[name](registry, clock)
    deleted = []
    for _ in range(3):
        deleted += race(app, job)
    assert sum(deleted) == expired  # type: ignore[arg-type]
    clock.advance(days=2)  # what was kept goes too, once
    assert sum(race(app, job)) == kept  # type: ignore[arg-type]
