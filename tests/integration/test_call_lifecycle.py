"""Every call ends exactly once, the right way, and is announced (both backends).

Each test here is one of the paths that went wrong where features meet:
cancel x claim, claim release x attendance, the booked call a reviewer
claims first, a call everybody left, a late second review x the wait
estimate, a disabled reviewer's claims.
"""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from flask import Flask

from jobs import calls as call_jobs
from tests.conftest import Api, FakeClock
from tests.integration.test_evidence import gateway, rita  # noqa: F401 (fixtures)
from tests.support.fake_meet import FakeMeetGateway
from tests.support.review_desk import attend, events, load_call, record_with_evidence, waiting
from tests.support.staff import staff_member
from verify_service.accounts.zones import UTC
from verify_service.audit.models import AuditEntry
from verify_service.calls.models import CallSession
from verify_service.calls.state import EndReason, Outcome, SessionStatus
from verify_service.db import unit_of_work
from verify_service.freelancer import journey
from verify_service.freelancer.presenters import live_status
from verify_service.leads import staffing
from verify_service.registry import Registry
from verify_service.review import claims, decisions
from verify_service.review.errors import SessionNotClaimable
from verify_service.staff.models import Reviewer, Role


def claim(registry: Registry, call_id: str, reviewer: Reviewer) -> None:
    with unit_of_work(registry.sessions) as session:
        decisions.claim_session(session, call_id, reviewer_id=reviewer.id, now=registry.now())


def sync(app: Flask) -> int:
    return call_jobs.sync_attendance(app)


def session_events(registry: Registry, call_id: str, event_type: str) -> list[dict]:
    return [e.data for e in events(registry, event_type) if e.data["session"]["id"] == call_id]


def audited(registry: Registry, action: str) -> list[AuditEntry]:
    with registry.sessions() as session:
        return list(session.scalars(sa.select(AuditEntry).where(AuditEntry.action == action)))


# ---------------------------------------------------------------- canceling x claiming

def test_a_freelancer_cannot_cancel_a_call_a_reviewer_has_claimed(
        api: Api, registry: Registry, gateway: FakeMeetGateway, rita: Reviewer) -> None:
    call_id = waiting(api, registry, gateway, "acc-1")
    claim(registry, call_id, rita)
    with pytest.raises(journey.CannotCancel) as error:
        journey.cancel_call(registry.sessions, gateway, "acc-1", call_id, settings=registry.settings,
                            now=registry.now())
    assert (error.value.status, error.value.code) == (409, "session_not_cancelable")
    assert "a reviewer has taken up your call" in error.value.detail
    call = load_call(registry, call_id)
    assert (call.status, call.claimed_by_id) == (SessionStatus.IN_PROGRESS, rita.id)
    assert session_events(registry, call_id, "verification.session.canceled") == []


def test_a_freelancer_leaves_the_queue_of_a_waiting_call_announced_and_audited(
        api: Api, registry: Registry, gateway: FakeMeetGateway) -> None:
    call_id = waiting(api, registry, gateway, "acc-1")
    done = journey.cancel_call(registry.sessions, gateway, "acc-1", call_id, settings=registry.settings,
                               now=registry.now())
    assert done.booking is False
    call = load_call(registry, call_id)
    assert (call.status, call.end_reason, call.ended_at) == (SessionStatus.CANCELED, EndReason.FREELANCER,
                                                            registry.now())
    assert call.conference_end_requested_at == registry.now()  # its Meet conference is ended by the job
    [canceled] = session_events(registry, call_id, "verification.session.canceled")
    assert (canceled["by"], canceled["session"]["status"]) == ("freelancer", "canceled")
    assert [e.subject_id for e in audited(registry, "call_session.left_queue")] == [call_id]
    with pytest.raises(journey.CannotCancel):  # once over, for good
        journey.cancel_call(registry.sessions, gateway, "acc-1", call_id, settings=registry.settings,
                            now=registry.now())


def test_another_freelancers_call_cannot_be_canceled(api: Api, registry: Registry, gateway: FakeMeetGateway) -> None:
    call_id = waiting(api, registry, gateway, "acc-1")
    waiting(api, registry, gateway, "acc-2")
    with pytest.raises(journey.CallSessionNotFound):
        journey.cancel_call(registry.sessions, gateway, "acc-2", call_id, settings=registry.settings,
                            now=registry.now())
    assert load_call(registry, call_id).status is SessionStatus.WAITING


# ---------------------------------------------------------------- started: once, at the first of claim or join

def test_a_booked_call_a_reviewer_claims_first_is_announced_as_started_once(
        app: Flask, api: Api, registry: Registry, gateway: FakeMeetGateway, clock: FakeClock, rita: Reviewer) -> None:
    from verify_service.calls import booking
    assert api.put_account("acc-1").status_code == 201
    assert api.request_verification("acc-1").status_code == 201
    start = booking.booking_window(now=clock(), settings=registry.settings).first
    call_id = booking.book_slot(registry.sessions, gateway, "acc-1", start=start, settings=registry.settings,
                                now=clock(), tz=dt.timezone.utc)
    clock.current = start - dt.timedelta(minutes=5)  # the reviewer is early
    claim(registry, call_id, rita)
    [started] = session_events(registry, call_id, "verification.session.started")
    assert started["session"]["status"] == "in_progress" and started["session"]["scheduled_for"]
    clock.current = start + dt.timedelta(minutes=1)
    attend(registry, call_id, minutes_ago=0.5)
    sync(app)
    sync(app)
    assert len(session_events(registry, call_id, "verification.session.started")) == 1
    assert load_call(registry, call_id).freelancer_joined_at is not None


def test_a_released_claim_leaves_a_freelancer_in_the_meeting_in_the_call_and_started_is_not_sent_again(
        app: Flask, api: Api, registry: Registry, gateway: FakeMeetGateway, clock: FakeClock, rita: Reviewer) -> None:
    call_id = waiting(api, registry, gateway, "acc-1")
    attend(registry, call_id, minutes_ago=1)
    sync(app)  # the freelancer joined first: in progress, announced
    claim(registry, call_id, rita)
    assert len(session_events(registry, call_id, "verification.session.started")) == 1
    clock.advance(minutes=21)  # the reviewer never joined: the claim goes idle and back to the queue
    assert call_jobs.release_idle_claims(app) == 1
    call = load_call(registry, call_id)
    assert (call.status, call.claimed_by_id) == (SessionStatus.IN_PROGRESS, None)
    with app.test_request_context():
        with registry.sessions() as session:
            shown = live_status(session, session.get_one(CallSession, call_id), now=registry.now(),
                                settings=registry.settings, zone=UTC)
    assert (shown["phase"], shown["title"]) == ("in_call", "You are in the call")
    sync(app)
    sync(app)
    assert len(session_events(registry, call_id, "verification.session.started")) == 1
    claim(registry, call_id, staff_member(registry, email="bo@example.com"))  # the next reviewer takes it up
    assert len(session_events(registry, call_id, "verification.session.started")) == 1


def test_a_released_call_nobody_joined_tells_the_freelancer_it_is_ready_again(
        app: Flask, api: Api, registry: Registry, gateway: FakeMeetGateway, rita: Reviewer) -> None:
    call_id = waiting(api, registry, gateway, "acc-1")
    claim(registry, call_id, rita)
    with unit_of_work(registry.sessions) as session:
        decisions.release_session(session, call_id, reviewer_id=rita.id, now=registry.now())
    with app.test_request_context(), registry.sessions() as session:
        shown = live_status(session, session.get_one(CallSession, call_id), now=registry.now(),
                            settings=registry.settings, zone=UTC)
    assert (shown["status"], shown["title"]) == ("in_progress", "Your call is ready")
    assert shown["meet_uri"] is not None


# ---------------------------------------------------------------- every call ends: abandoned

def test_a_call_the_freelancer_joined_and_left_before_any_claim_ends_as_abandoned(
        app: Flask, api: Api, registry: Registry, gateway: FakeMeetGateway, clock: FakeClock) -> None:
    call_id = waiting(api, registry, gateway, "acc-1")
    attend(registry, call_id, minutes_ago=2, left_minutes_ago=1)
    sync(app)
    assert load_call(registry, call_id).status is SessionStatus.IN_PROGRESS
    clock.advance(minutes=18)  # 19 minutes since they left
    sync(app)
    assert load_call(registry, call_id).status is SessionStatus.IN_PROGRESS
    clock.advance(minutes=2)
    sync(app)
    call = load_call(registry, call_id)
    assert (call.status, call.end_reason, call.ended_at) == (SessionStatus.EXPIRED, EndReason.ABANDONED, clock())
    assert call.conference_end_requested_at == clock()
    [expired] = session_events(registry, call_id, "verification.session.expired")
    assert (expired["reason"], expired["session"]["status"]) == ("abandoned", "expired")
    # The freelancer may start again: the abandoned call is over.
    with registry.sessions() as session:
        assert journey.active_session(session, "acc-1") is None


def test_a_call_is_not_abandoned_while_its_reviewer_works_on_it_or_someone_is_in_it(
        app: Flask, api: Api, registry: Registry, gateway: FakeMeetGateway, clock: FakeClock, rita: Reviewer) -> None:
    registry.settings = registry.settings.replace(abandoned_call_minutes=10)
    busy = waiting(api, registry, gateway, "acc-1")
    attend(registry, busy, reviewer=rita, minutes_ago=30, left_minutes_ago=25)
    claim(registry, busy, rita)
    present = waiting(api, registry, gateway, "acc-2")
    attend(registry, present, minutes_ago=60)  # still connected
    for _ in range(3):
        clock.advance(minutes=4)
        with unit_of_work(registry.sessions) as session:  # the reviewer keeps the call page open
            claims.note_activity(session, busy, reviewer_id=rita.id, now=clock())
        sync(app)
    assert [load_call(registry, c).status for c in (busy, present)] == [SessionStatus.IN_PROGRESS] * 2
    clock.advance(minutes=11)  # the reviewer stopped working on it
    sync(app)
    assert load_call(registry, busy).status is SessionStatus.EXPIRED
    assert load_call(registry, present).status is SessionStatus.IN_PROGRESS


def test_nobody_joining_in_time_expires_a_waiting_call_as_not_joined(
        app: Flask, api: Api, registry: Registry, gateway: FakeMeetGateway, clock: FakeClock) -> None:
    call_id = waiting(api, registry, gateway, "acc-1")
    clock.advance(minutes=registry.settings.session_ttl_minutes)
    sync(app)
    call = load_call(registry, call_id)
    assert (call.status, call.end_reason) == (SessionStatus.EXPIRED, EndReason.NOT_JOINED)
    [expired] = session_events(registry, call_id, "verification.session.expired")
    assert expired["reason"] == "not_joined"


# ---------------------------------------------------------------- ended_at and the wait estimate

def test_a_fail_confirmed_the_next_day_ends_the_call_at_the_first_decision(
        api: Api, registry: Registry, gateway: FakeMeetGateway, clock: FakeClock, rita: Reviewer) -> None:
    lead = staff_member(registry, role=Role.LEAD, email="lena@example.com")
    call_id = waiting(api, registry, gateway, "acc-1")
    claim(registry, call_id, rita)
    clock.advance(minutes=6)
    outcome = record_with_evidence(registry.sessions, call_id, rita.id, Outcome.FAILED, clock())
    decided = clock()
    clock.advance(hours=20)
    with unit_of_work(registry.sessions) as session:
        decisions.second_review(session, outcome.id, lead_id=lead.id, decision="confirm", notes=None, now=clock())
    call = load_call(registry, call_id)
    assert (call.status, call.ended_at) == (SessionStatus.COMPLETED, decided)
    with registry.sessions() as session:
        assert journey.average_handling(session, now=clock()) == dt.timedelta(minutes=6)  # not 20 hours


# ---------------------------------------------------------------- claims

def test_disabling_a_reviewer_releases_their_claimed_calls_at_once(
        api: Api, registry: Registry, gateway: FakeMeetGateway, rita: Reviewer) -> None:
    lead = staff_member(registry, role=Role.LEAD, email="lena@example.com")
    first, second = waiting(api, registry, gateway, "acc-1"), waiting(api, registry, gateway, "acc-2")
    claim(registry, first, rita)
    claim(registry, second, rita)
    with unit_of_work(registry.sessions) as session:
        by = session.get_one(Reviewer, lead.id)
        assert staffing.set_active(session, rita.id, active=False, by=by, actor=f"reviewer:{lead.id}",
                                   now=registry.now())
    for call_id in (first, second):
        call = load_call(registry, call_id)
        assert (call.status, call.claimed_by_id) == (SessionStatus.IN_PROGRESS, None)
    released = audited(registry, "session.released")
    assert sorted(e.subject_id for e in released) == sorted((first, second))
    assert {e.details["reason"] for e in released} == {"reviewer_disabled"}
    disabled = audited(registry, "reviewer.disabled")[-1]
    assert disabled.details["calls_released"] == 2


def test_claiming_again_a_call_one_decided_says_so(api: Api, registry: Registry, gateway: FakeMeetGateway,
                                                   rita: Reviewer) -> None:
    call_id = waiting(api, registry, gateway, "acc-1")
    claim(registry, call_id, rita)
    record_with_evidence(registry.sessions, call_id, rita.id, Outcome.INCONCLUSIVE, registry.now())
    with pytest.raises(SessionNotClaimable) as error:
        claim(registry, call_id, rita)
    assert "already decided: inconclusive, by you at 09:00 UTC" in error.value.detail
    assert "claimed by reviewer" not in error.value.detail
    other = staff_member(registry, email="bo@example.com")
    with pytest.raises(SessionNotClaimable) as error:
        claim(registry, call_id, other)
    assert "by another reviewer" in error.value.detail
