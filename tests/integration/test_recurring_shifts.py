"""Weekly recurring shifts become concrete UTC shifts: DST-correct, idempotent, and they set booking capacity."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from jobs.shifts import materialise_shifts
from tests.conftest import FakeClock
from tests.support.staff import staff_member
from verify_service.calls import booking
from verify_service.db import unit_of_work
from verify_service.errors import InvalidInput
from verify_service.freelancer.journey import reviewers_working
from verify_service.leads import shifts
from verify_service.registry import Registry
from verify_service.staff.models import Reviewer, ReviewerShift, Role

UTC = dt.timezone.utc
BERLIN = "Europe/Berlin"
SATURDAY, SUNDAY, WEDNESDAY = 5, 6, 2
# Monday before the spring change: Berlin moves from CET (+1) to CEST (+2) on Sunday 2027-03-28 at 02:00.
BEFORE_SPRING = dt.datetime(2027, 3, 22, 8, 0, tzinfo=UTC)


def at(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


@pytest.fixture
def spring(clock: FakeClock) -> FakeClock:
    clock.current = BEFORE_SPRING
    return clock


def add(registry: Registry, reviewer_id: int, weekday: int, start: str, end: str, tz: str = BERLIN) -> int:
    with unit_of_work(registry.sessions) as session:
        plan = shifts.parse_plan(str(reviewer_id), str(weekday), start, end, tz)
        return shifts.add_recurring_shift(session, plan, actor="test", now=registry.now()).id


def rows(registry: Registry, recurring_id: int | None = None) -> list[tuple[dt.datetime, dt.datetime]]:
    with registry.sessions() as session:
        stmt = sa.select(ReviewerShift.starts_at, ReviewerShift.ends_at).order_by(ReviewerShift.starts_at)
        if recurring_id is not None:
            stmt = stmt.where(ReviewerShift.recurring_shift_id == recurring_id)
        return [tuple(row) for row in session.execute(stmt)]


def test_local_hours_hold_across_the_spring_change_in_berlin(registry: Registry, spring: FakeClock) -> None:
    ana = staff_member(registry, email="ana@example.com")
    day = add(registry, ana.id, SATURDAY, "09:00", "17:00")
    assert rows(registry, day) == [
        (at(2027, 3, 27, 8), at(2027, 3, 27, 16)),   # CET: 09:00 local is 08:00 UTC
        (at(2027, 4, 3, 7), at(2027, 4, 3, 15)),     # CEST: 09:00 local is 07:00 UTC
    ]


def test_a_night_shift_over_the_change_is_an_hour_shorter(registry: Registry, spring: FakeClock) -> None:
    ana = staff_member(registry, email="ana@example.com")
    night = add(registry, ana.id, SATURDAY, "22:00", "06:00")
    bo = staff_member(registry, email="bo@example.com")
    early = add(registry, bo.id, SUNDAY, "00:30", "03:00")  # 02:00–03:00 does not exist that night
    assert rows(registry, night) == [
        (at(2027, 3, 27, 21), at(2027, 3, 28, 4)),   # 22:00 CET → 06:00 CEST: 7 hours
        (at(2027, 4, 3, 20), at(2027, 4, 4, 4)),     # 8 hours
    ]
    assert rows(registry, early)[0] == (at(2027, 3, 27, 23, 30), at(2027, 3, 28, 1))  # 1.5 hours of wall clock


def test_the_autumn_change_makes_a_night_shift_an_hour_longer(registry: Registry, clock: FakeClock) -> None:
    clock.current = at(2026, 10, 19, 8)  # Berlin goes back from CEST to CET on Sunday 2026-10-25 at 03:00
    ana = staff_member(registry, email="ana@example.com")
    night = add(registry, ana.id, SATURDAY, "22:00", "06:00")
    assert rows(registry, night)[0] == (at(2026, 10, 24, 20), at(2026, 10, 25, 5))  # 9 hours


def test_materialising_again_changes_nothing_and_the_job_extends_the_horizon(app, registry: Registry,
                                                                             spring: FakeClock) -> None:
    ana = staff_member(registry, email="ana@example.com")
    add(registry, ana.id, SATURDAY, "09:00", "17:00")
    with registry.sessions() as session:
        before = session.execute(sa.select(ReviewerShift.id, ReviewerShift.starts_at).order_by(ReviewerShift.id)).all()
    report = materialise_shifts(app)
    assert (report.added, report.removed) == (0, 0)
    with registry.sessions() as session:
        assert session.execute(sa.select(ReviewerShift.id, ReviewerShift.starts_at)
                               .order_by(ReviewerShift.id)).all() == before
    spring.advance(days=7)
    report = materialise_shifts(app)
    assert (report.added, report.removed) == (1, 0)
    assert [start for start, _ in rows(registry)] == [at(2027, 3, 27, 8), at(2027, 4, 3, 7), at(2027, 4, 10, 7)]


def test_editing_replaces_coming_rows_and_removing_keeps_the_past(registry: Registry, spring: FakeClock) -> None:
    ana = staff_member(registry, email="ana@example.com")
    weekly = add(registry, ana.id, SATURDAY, "09:00", "17:00")
    spring.current = at(2027, 3, 28, 12)  # the first Saturday is over
    with unit_of_work(registry.sessions) as session:
        plan = shifts.parse_plan(str(ana.id), str(SATURDAY), "10:00", "18:00", BERLIN)
        shifts.change_recurring_shift(session, weekly, plan, actor="test", now=registry.now())
    assert rows(registry, weekly) == [
        (at(2027, 3, 27, 8), at(2027, 3, 27, 16)),   # past: as it was
        (at(2027, 4, 3, 8), at(2027, 4, 3, 16)),     # replaced: 10:00 CEST
        (at(2027, 4, 10, 8), at(2027, 4, 10, 16)),
    ]
    with unit_of_work(registry.sessions) as session:
        assert shifts.remove_recurring_shift(session, weekly, actor="test", now=registry.now()) == 2
    assert rows(registry) == [(at(2027, 3, 27, 8), at(2027, 3, 27, 16))]
    assert rows(registry, weekly) == []  # unlinked


def test_weekly_shifts_set_booking_capacity_and_who_is_working(registry: Registry, spring: FakeClock) -> None:
    for email in ("ana@example.com", "bo@example.com"):
        add(registry, staff_member(registry, email=email).id, WEDNESDAY, "10:00", "12:00")  # 09:00–11:00 UTC
    with registry.sessions() as session:
        slots = booking.available_slots(session, now=registry.now(), settings=registry.settings, tz=UTC)
        assert reviewers_working(session, now=at(2027, 3, 24, 10)) == 2
        assert reviewers_working(session, now=at(2027, 3, 24, 11)) == 0
    assert [(slot.start, slot.remaining) for slot in slots] == [
        (at(2027, 3, 24, 9) + dt.timedelta(minutes=15 * i), 2) for i in range(8)]


def test_overlaps_bad_zones_and_overlong_shifts_are_refused(registry: Registry, spring: FakeClock) -> None:
    ana = staff_member(registry, email="ana@example.com")
    add(registry, ana.id, SATURDAY, "22:00", "06:00")
    with pytest.raises(shifts.ShiftOverlap):
        add(registry, ana.id, SUNDAY, "05:00", "09:00")  # the Saturday night shift runs until 06:00
    add(registry, ana.id, SUNDAY, "06:00", "09:00")  # touching is fine
    for weekday, start, end, tz, field in [(SATURDAY, "09:00", "22:00", BERLIN, "end"),
                                           (SATURDAY, "09:00", "09:00", BERLIN, "end"),
                                           (SATURDAY, "9am", "17:00", BERLIN, "start"),
                                           (7, "09:00", "17:00", BERLIN, "weekday"),
                                           (SATURDAY, "09:00", "17:00", "Mars/Olympus", "time_zone")]:
        with pytest.raises(InvalidInput) as refused:
            add(registry, ana.id, weekday, start, end, tz)
        assert refused.value.errors[0].field == field
    disabled = staff_member(registry, role=Role.LEAD, email="gone@example.com")
    with registry.sessions.begin() as session:
        session.get_one(Reviewer, disabled.id).active = False
    with pytest.raises(InvalidInput):
        add(registry, disabled.id, SATURDAY, "09:00", "17:00")
    assert len(rows(registry)) == 4  # only the two accepted weekly shifts, twice each


def test_a_shift_zone_is_checked_and_named_as_the_freelancer_pages_name_it() -> None:
    assert str(shifts.zone(" Asia/Calcutta ")) == "Asia/Kolkata"  # the canonical spelling (accounts/zones.py)
    assert str(shifts.zone("Europe/Berlin")) == "Europe/Berlin"
    for nonsense in ("", "Mars/Olympus", "localtime", "x" * 65):
        with pytest.raises(InvalidInput, match="is not a time zone name such as Europe/Berlin") as refused:
            shifts.zone(nonsense)
        assert refused.value.errors[0].field == "time_zone"
