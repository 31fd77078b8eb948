"""Claims under concurrency, the same ID recorded at once on two accounts, idle claims (both backends).

Real threads and real connections: PostgreSQL serialises with row locks
(and an advisory lock per fingerprint), SQLite with BEGIN IMMEDIATE.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session, sessionmaker

from jobs import calls as call_jobs
from tests.conftest import PG_URL, FakeClock
from tests.support.concurrency import run_together
from tests.support.fake_meet import FakeMeetGateway
from verify_service.accounts import services
from verify_service.accounts.domain import RequestReason
from verify_service.accounts.models import Account
from verify_service.audit.models import AuditEntry
from verify_service.calls.models import CallSession, MeetingStatus
from verify_service.calls.state import SessionStatus
from verify_service.db import make_engine, unit_of_work
from verify_service.registry import Registry
from verify_service.review import claims, decisions, identity
from verify_service.review.errors import SessionAlreadyClaimed
from verify_service.staff.models import Role
from verify_service.staff.passwords import create_reviewer
from verify_service.webhooks.models import OutboxEvent

THREADS = 8
PEPPER = "pepper-" + "q" * 40


def reviewers(sessions: sessionmaker[Session], clock: FakeClock, count: int) -> list[int]:
    with unit_of_work(sessions) as session:
        return [create_reviewer(session, email=f"r{i}@example.com", display_name=f"R{i}", role=Role.REVIEWER,
                                password="correct horse battery", actor="test", now=clock()).id
                for i in range(count)]


def waiting_call(sessions: sessionmaker[Session], clock: FakeClock, account_id: str,
                 gateway: FakeMeetGateway | None = None) -> str:
    with unit_of_work(sessions) as session:
        services.upsert_account(session, account_id, services.Profile("Ana", f"{account_id}@example.com", "PT"),
                                actor="test", now=clock())
        request, _, _ = services.request_verification(session, account_id, reason=RequestReason.NEW_ACCOUNT,
                                                      deadline=None, place_hold=True, actor="test", now=clock())
        call = CallSession(account_id=account_id, verification_request_id=request.id, status=SessionStatus.WAITING,
                           created_at=clock(), updated_at=clock())
        if gateway is not None:
            space = gateway.create_space(host=gateway.hosts[0])
            call.meet_space, call.meet_uri, call.meet_host = space.name, space.meeting_uri, gateway.hosts[0]
            call.meet_status = MeetingStatus.READY
        session.add(call)
        session.flush()
        return call.id


def test_eight_reviewers_claiming_one_session_at_once_exactly_one_wins(sessions, clock) -> None:
    gateway = FakeMeetGateway()
    call_id = waiting_call(sessions, clock, "acc-1", gateway)
    ids = reviewers(sessions, clock, THREADS)

    def claimer(reviewer_id: int) -> Callable[[], object]:
        return lambda: claims.take_session(sessions, gateway, call_id, reviewer_id=reviewer_id, now=clock()).id

    results = run_together([claimer(i) for i in ids])
    winners = [ids[i] for i, result in enumerate(results) if result == call_id]
    losers = [result for result in results if isinstance(result, SessionAlreadyClaimed)]
    assert len(winners) == 1 and len(losers) == THREADS - 1, results
    with unit_of_work(sessions, write=False) as session:
        call = session.get_one(CallSession, call_id)
        assert (call.status, call.claimed_by_id) == (SessionStatus.IN_PROGRESS, winners[0])
        claimed = session.scalar(sa.select(sa.func.count()).select_from(AuditEntry)
                                 .where(AuditEntry.action == "session.claimed"))
    assert claimed == 1
    assert list(gateway.spaces[call.meet_space].members) == ["r%d@example.com" % ids.index(winners[0])]


def test_one_document_recorded_on_two_new_accounts_at_once_is_still_reported(sessions, clock) -> None:
    ids = reviewers(sessions, clock, 2)
    rounds = 4  # a race: several rounds make a missing lock show reliably

    def recorder(reviewer_id: int, call_id: str, form: identity.DocumentForm) -> Callable[[], object]:
        def task() -> object:
            with unit_of_work(sessions) as session:
                return identity.record_document(session, call_id, form, reviewer_id=reviewer_id, pepper=PEPPER,
                                                now=clock()).reported
        return task

    for n in range(rounds):
        calls = [waiting_call(sessions, clock, f"acc-{n}-{i}") for i in range(2)]
        for reviewer_id, call_id in zip(ids, calls):
            with unit_of_work(sessions) as session:
                decisions.claim_session(session, call_id, reviewer_id=reviewer_id, now=clock())
        form = identity.DocumentForm.parse({"doc_type": "passport", "issuing_country": "PT",
                                            "document_number": f"Q7W8E9R{n}"})
        results = run_together([recorder(r, c, form) for r, c in zip(ids, calls)])
        assert [r for r in results if isinstance(r, Exception)] == []
        # Serialised on the fingerprint: the later of the two saw the other, and reported the pair.
        assert sorted(results) in ([(), (f"acc-{n}-0",)], [(), (f"acc-{n}-1",)]), (n, results)
    with unit_of_work(sessions, write=False) as session:
        reported = session.scalars(sa.select(OutboxEvent.type).where(
            OutboxEvent.type == "verification.duplicate_identity_suspected")).all()
    assert len(reported) == rounds


# ---------------------------------------------------------------- idle claims

@pytest.fixture
def claimed(sessions, clock) -> str:
    [reviewer_id] = reviewers(sessions, clock, 1)
    call_id = waiting_call(sessions, clock, "acc-1")
    with unit_of_work(sessions) as session:
        decisions.claim_session(session, call_id, reviewer_id=reviewer_id, now=clock())
    return call_id


def release_idle(sessions, clock, minutes: float = 20) -> list[str]:
    with unit_of_work(sessions) as session:
        return claims.release_idle_claims(session, idle=dt.timedelta(minutes=minutes), now=clock())


def test_a_claim_idle_past_the_limit_goes_back_to_the_queue(sessions, clock, claimed) -> None:
    clock.advance(minutes=19)
    assert release_idle(sessions, clock) == []
    clock.advance(minutes=2)
    assert release_idle(sessions, clock) == [claimed]
    with unit_of_work(sessions, write=False) as session:
        call = session.get_one(CallSession, claimed)
        # Back in the queue without a claimer; the call itself stays in progress (never back to waiting).
        assert (call.status, call.claimed_by_id, call.claim_active_at) == (SessionStatus.IN_PROGRESS, None, None)
        entry = session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "session.released")).one()
    assert (entry.actor, entry.details["reason"]) == ("system:idle-claims", "idle")
    assert release_idle(sessions, clock) == []  # nothing left to release


def test_activity_and_presence_in_the_call_keep_a_claim(sessions, clock, claimed) -> None:
    with unit_of_work(sessions, write=False) as session:
        reviewer_id = session.get_one(CallSession, claimed).claimed_by_id
    clock.advance(minutes=15)
    with unit_of_work(sessions) as session:
        claims.note_activity(session, claimed, reviewer_id=reviewer_id, now=clock())
        claims.note_activity(session, claimed, reviewer_id=reviewer_id + 1, now=clock())  # not the claimer: ignored
    clock.advance(minutes=10)
    assert release_idle(sessions, clock) == []  # active 10 minutes ago
    with unit_of_work(sessions) as session:  # the reviewer joined the Meet call and is still in it
        session.get_one(CallSession, claimed).reviewer_joined_at = clock()
    clock.advance(minutes=60)
    assert release_idle(sessions, clock) == []
    with unit_of_work(sessions) as session:  # they left long ago
        session.get_one(CallSession, claimed).reviewer_left_at = clock() - dt.timedelta(minutes=30)
    assert release_idle(sessions, clock) == [claimed]


def test_the_job_releases_idle_claims(app: Flask, registry: Registry, clock: FakeClock) -> None:
    registry.meet = FakeMeetGateway()
    [reviewer_id] = reviewers(registry.sessions, clock, 1)
    call_id = waiting_call(registry.sessions, clock, "acc-1")
    with unit_of_work(registry.sessions) as session:
        decisions.claim_session(session, call_id, reviewer_id=reviewer_id, now=clock())
    clock.advance(minutes=registry.settings.claim_idle_minutes + 1)
    assert call_jobs.release_idle_claims(app) == 1
    assert call_jobs.release_idle_claims(app) == 0


# Row locks are PostgreSQL's (SQLite serialises whole write transactions): this one runs there only.
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_an_account_someone_is_working_on_is_skipped_until_the_next_run(backend, sessions, clock, claimed) -> None:
    clock.advance(minutes=30)
    engine = make_engine(PG_URL)
    try:
        with engine.connect() as other:
            with other.begin():
                other.execute(sa.select(Account.id).where(Account.id == "acc-1").with_for_update())
                assert release_idle(sessions, clock) == []  # not blocked, not released
        assert release_idle(sessions, clock) == [claimed]
    finally:
        engine.dispose()
