"""Who is on shift now and when the next shift starts (calls/availability.py), as booking capacity reads the shifts."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.conftest import make_settings
from verify_service.calls import booking
from verify_service.calls.availability import availability, on_shift
from verify_service.db import unit_of_work
from verify_service.freelancer.journey import reviewers_working
from verify_service.staff.models import Reviewer, ReviewerShift, Role

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 11, 22, 9, 0, tzinfo=UTC)  # a Sunday


@pytest.fixture
def settings(database_url, tmp_path):
    return make_settings(database_url, tmp_path, booking_default_capacity=2, booking_days=7)


def reviewer(sessions, email: str, *, active: bool = True) -> int:
    with unit_of_work(sessions) as session:
        row = Reviewer(email=email, display_name=email.split("@")[0], role=Role.REVIEWER, password_hash="x",
                       active=active, created_at=NOW)
        session.add(row)
        session.flush()
        return row.id


def shift(sessions, reviewer_id: int, starts: dt.timedelta, hours: float) -> None:
    """A shift starting ``starts`` after NOW (negative: already running), ``hours`` long."""
    with unit_of_work(sessions) as session:
        session.add(ReviewerShift(reviewer_id=reviewer_id, starts_at=NOW + starts,
                                  ends_at=NOW + starts + dt.timedelta(hours=hours), created_by="test", created_at=NOW))


def read(sessions, settings, now: dt.datetime = NOW):
    with sessions() as session:
        return availability(session, now=now, settings=settings)


def test_without_shifts_the_default_capacity_applies_around_the_clock(sessions, settings) -> None:
    reviewer(sessions, "ana@example.com")
    on = read(sessions, settings)
    assert on.around_the_clock and on.reviewers_on
    assert (on.on_now, on.until, on.next_start) == (frozenset(), None, None)
    with sessions() as session:  # and booking agrees: every slot takes the default capacity
        slots = booking.available_slots(session, now=NOW, settings=settings, tz=UTC)
    assert slots and {slot.remaining for slot in slots} == {2}


def test_a_shift_now_says_who_is_on_and_until_when_following_shifts_that_join_on(sessions, settings) -> None:
    ana, bo = reviewer(sessions, "ana@example.com"), reviewer(sessions, "bo@example.com")
    shift(sessions, ana, -dt.timedelta(hours=1), 4)                    # 08:00–12:00
    shift(sessions, bo, dt.timedelta(hours=3), 3)                       # 12:00–15:00: joins on
    shift(sessions, ana, dt.timedelta(hours=7), 2)                      # 16:00–18:00: after a gap
    on = read(sessions, settings)
    assert not on.around_the_clock and on.reviewers_on
    assert on.on_now == {ana} and on.until == NOW + dt.timedelta(hours=6) and on.next_start is None
    with sessions() as session:
        assert on_shift(session, now=NOW) == {ana}
        assert reviewers_working(session, now=NOW) == 1


def test_only_a_future_shift_says_when_it_starts(sessions, settings) -> None:
    ana = reviewer(sessions, "ana@example.com")
    shift(sessions, ana, dt.timedelta(days=3, hours=13), 8)             # Wednesday 22:00 UTC
    on = read(sessions, settings)
    assert not on.around_the_clock and not on.reviewers_on
    assert on.on_now == frozenset() and on.until is None
    assert on.next_start == dt.datetime(2026, 11, 25, 22, 0, tzinfo=UTC)
    # The shift counts from its start, and not a moment after its end.
    assert read(sessions, settings, on.next_start).on_now == {ana}
    assert read(sessions, settings, on.next_start + dt.timedelta(hours=8)).on_now == frozenset()


def test_a_disabled_reviewers_shift_takes_no_calls_and_is_not_the_next_shift(sessions, settings) -> None:
    gone = reviewer(sessions, "gone@example.com", active=False)
    shift(sessions, gone, -dt.timedelta(hours=1), 4)
    shift(sessions, gone, dt.timedelta(days=1), 4)
    on = read(sessions, settings)
    # A shift is set (booking offers nothing then), yet nobody is on and no shift is coming.
    assert not on.around_the_clock and not on.reviewers_on
    assert (on.on_now, on.until, on.next_start) == (frozenset(), None, None)
