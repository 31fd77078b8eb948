"""verify_session_wait_seconds: one observation per claim that stands, from when the freelancer began to wait."""

from __future__ import annotations

import datetime as dt

import pytest
from prometheus_client import REGISTRY
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import FakeClock
from tests.integration.test_review_claims import reviewers, waiting_call
from tests.support.fake_meet import FakeMeetGateway
from verify_service.calls.models import CallSession
from verify_service.calls.state import SessionStatus
from verify_service.db import unit_of_work
from verify_service.review import claims


def waits() -> tuple[float, float, float, float]:
    """(count, sum, observations ≤ 60 s, observations ≤ 120 s) so far."""
    def value(suffix: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(f"verify_session_wait_seconds_{suffix}", labels) or 0.0

    return value("count"), value("sum"), value("bucket", le="60.0"), value("bucket", le="120.0")


def delta(before: tuple[float, ...]) -> tuple[float, ...]:
    """The change since ``before``, rounded: the registry's running sum is a float shared with earlier tests."""
    return tuple(round(now - then, 6) for now, then in zip(waits(), before))


def edit(sessions: sessionmaker[Session], call_id: str, **values: object) -> None:
    with unit_of_work(sessions) as session:
        call = session.get_one(CallSession, call_id)
        for name, value in values.items():
            setattr(call, name, value)


def test_a_claim_observes_the_wait_since_the_meeting_was_ready_once(sessions, clock: FakeClock) -> None:
    gateway = FakeMeetGateway()
    reviewer_id, = reviewers(sessions, clock, 1)
    call_id = waiting_call(sessions, clock, "acc-wait", gateway)
    edit(sessions, call_id, meet_ready_at=clock() + dt.timedelta(seconds=30))  # Meet's budget held it 30 s
    before = waits()
    clock.advance(seconds=120)
    claims.take_session(sessions, gateway, call_id, reviewer_id=reviewer_id, now=clock())
    assert delta(before) == (1, 90, 0, 1)
    clock.advance(seconds=5)
    claims.take_session(sessions, gateway, call_id, reviewer_id=reviewer_id, now=clock())  # a second click
    assert delta(before) == (1, 90, 0, 1)


def test_a_booked_call_waits_from_its_time_not_from_the_booking(sessions, clock: FakeClock) -> None:
    gateway = FakeMeetGateway()
    reviewer_id, = reviewers(sessions, clock, 1)
    call_id = waiting_call(sessions, clock, "acc-booked", gateway)
    edit(sessions, call_id, status=SessionStatus.SCHEDULED, scheduled_for=clock() + dt.timedelta(hours=3))
    before = waits()
    clock.advance(hours=3, seconds=40)
    claims.take_session(sessions, gateway, call_id, reviewer_id=reviewer_id, now=clock())
    assert delta(before) == (1, 40, 1, 1)


def test_a_claim_meet_refuses_is_not_observed(sessions, clock: FakeClock) -> None:
    gateway = FakeMeetGateway()
    reviewer_id, = reviewers(sessions, clock, 1)
    call_id = waiting_call(sessions, clock, "acc-refused", gateway)
    before = waits()
    clock.advance(seconds=45)
    gateway.fail_next()
    with pytest.raises(claims.CohostFailed):
        claims.take_session(sessions, gateway, call_id, reviewer_id=reviewer_id, now=clock())
    assert delta(before) == (0, 0, 0, 0)  # the session went back to the queue: still waiting
    clock.advance(seconds=15)
    claims.take_session(sessions, gateway, call_id, reviewer_id=reviewer_id, now=clock())
    assert delta(before) == (1, 60, 1, 1)
