"""Booking appointments: slots and their capacity (reviewer shifts), booking and moving, reminders (both backends)."""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from integrations.google_meet import MeetConfigurationError, calendar_event_id
from jobs.calls import send_appointment_reminders
from tests.conftest import make_settings
from tests.support.fake_meet import FakeMeetGateway
from verify_service.accounts import services
from verify_service.accounts.errors import AccountClosed
from verify_service.closure import close_account
from verify_service.accounts.domain import RequestReason
from verify_service.accounts.models import Account
from verify_service.calls import booking, meetings, scheduling
from verify_service.calls.reminders import send_due_reminders
from verify_service.calls.booking import SlotFull
from verify_service.calls.errors import CallSessionNotFound
from verify_service.calls.models import CallSession, MeetingStatus
from verify_service.calls.state import SessionStatus
from verify_service.db import unit_of_work
from verify_service.errors import Conflict, InvalidInput
from verify_service.freelancer import journey
from verify_service.staff.models import Reviewer, ReviewerShift, Role
from verify_service.webhooks.models import OutboxEvent

UTC = dt.timezone.utc
NEW_YORK = ZoneInfo("America/New_York")
MINUTES_15 = dt.timedelta(minutes=15)


@pytest.fixture
def settings(database_url, tmp_path):
    return make_settings(database_url, tmp_path, booking_default_capacity=2, booking_days=7,
                         reminder_minutes=(1440, 15))


@pytest.fixture
def gateway() -> FakeMeetGateway:
    return FakeMeetGateway()


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    """A UTC time in November 2026 (the clock starts on the 22nd at 09:00 UTC)."""
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def add_account(sessions, clock, account_id: str = "acc-1", timezone: str | None = None) -> str:
    with unit_of_work(sessions) as session:
        services.upsert_account(session, account_id, services.Profile("Ana", f"{account_id}@example.com", "PT",
                                                                      timezone=timezone),
                                actor="t", now=clock())
    return account_id


def add_reviewer(sessions, clock, email: str, *, active: bool = True) -> int:
    with unit_of_work(sessions) as session:
        reviewer = Reviewer(email=email, display_name=email.split("@")[0], role=Role.REVIEWER, password_hash="x",
                            active=active, created_at=clock())
        session.add(reviewer)
        session.flush()
        return reviewer.id


def add_shift(sessions, clock, reviewer_id: int, starts_at: dt.datetime, ends_at: dt.datetime) -> int:
    """A concrete shift, as materialising a lead's weekly shift stores it (leads/shifts.py)."""
    with unit_of_work(sessions) as session:
        shift = ReviewerShift(reviewer_id=reviewer_id, starts_at=starts_at, ends_at=ends_at, created_by="lead:1",
                              created_at=clock())
        session.add(shift)
        session.flush()
        return shift.id


def slots(sessions, clock, settings, tz=UTC) -> list[booking.Slot]:
    with unit_of_work(sessions, write=False) as session:
        return booking.available_slots(session, now=clock(), settings=settings, tz=tz)


def remaining(found: list[booking.Slot]) -> dict[dt.datetime, int]:
    return {slot.start: slot.remaining for slot in found}


def book(sessions, gateway, clock, settings, account_id: str, start: dt.datetime) -> str:
    return booking.book_slot(sessions, gateway, account_id, start=start, settings=settings, now=clock(), tz=UTC)


def cancel(sessions, gateway, clock, settings, account_id: str, call_id: str) -> None:
    """The freelancer gives the booked time back."""
    journey.cancel_call(sessions, gateway, account_id, call_id, settings=settings, now=clock())


def call_count(sessions) -> int:
    with unit_of_work(sessions, write=False) as session:
        return session.scalar(sa.select(sa.func.count()).select_from(CallSession))


# ---------------------------------------------------------------- slots and capacity

def test_without_shifts_every_slot_takes_the_default_capacity(sessions, clock, settings) -> None:
    clock.current = at(22, 9, 7)
    found = slots(sessions, clock, settings)
    # From the first quarter hour at least 30 minutes away, for 7 days.
    assert found[0].start == at(22, 9, 45)
    assert found[-1].start == at(29, 9, 30)
    assert len(found) == 7 * 24 * 4
    assert all(slot.remaining == 2 for slot in found)
    assert all(b.start - a.start == MINUTES_15 for a, b in zip(found, found[1:]))
    assert found[0].start.tzinfo is not None and found[0].start.utcoffset() == dt.timedelta(0)

    no_capacity = make_settings(settings.database_url, settings.instance_dir, booking_default_capacity=0)
    assert slots(sessions, clock, no_capacity) == []


def test_shifts_decide_capacity_once_any_overlaps_the_window(sessions, clock, settings) -> None:
    rita = add_reviewer(sessions, clock, "rita@corp.example")
    sam = add_reviewer(sessions, clock, "sam@corp.example")
    tom = add_reviewer(sessions, clock, "tom@corp.example")
    gone = add_reviewer(sessions, clock, "gone@corp.example")
    # A shift beyond the booking window does not switch booking to shifts.
    add_shift(sessions, clock, rita, at(30, 10), at(30, 12))
    assert set(remaining(slots(sessions, clock, settings)).values()) == {2}

    add_shift(sessions, clock, rita, at(23, 10), at(23, 12))
    add_shift(sessions, clock, sam, at(23, 11), at(23, 13))
    add_shift(sessions, clock, tom, at(23, 14, 10), at(23, 14, 35))   # covers 14:15-14:30 only
    add_shift(sessions, clock, gone, at(23, 8), at(23, 20))
    with unit_of_work(sessions) as session:
        session.get_one(Reviewer, gone).active = False

    expected = {at(23, 10) + i * MINUTES_15: 1 for i in range(4)}
    expected |= {at(23, 11) + i * MINUTES_15: 2 for i in range(4)}
    expected |= {at(23, 12) + i * MINUTES_15: 1 for i in range(4)}
    expected[at(23, 14, 15)] = 1
    assert remaining(slots(sessions, clock, settings)) == expected


def test_available_slots_costs_two_queries(sessions, engine, clock, settings, gateway) -> None:
    add_account(sessions, clock)
    book(sessions, gateway, clock, settings, "acc-1", at(23, 10))
    rita = add_reviewer(sessions, clock, "rita@corp.example")
    for day in (23, 24, 25):
        add_shift(sessions, clock, rita, at(day, 9), at(day, 17))
    statements: list[str] = []

    def count(conn, cursor, statement, *args) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        found = slots(sessions, clock, settings)
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    assert len(found) == 3 * 8 * 4 - 1
    assert len(statements) == 2


def test_booked_slots_lose_places_and_vanish_when_full(sessions, clock, settings, gateway) -> None:
    for account_id in ("acc-1", "acc-2", "acc-3"):
        add_account(sessions, clock, account_id)
    start = at(23, 10)
    first = book(sessions, gateway, clock, settings, "acc-1", start)
    assert remaining(slots(sessions, clock, settings))[start] == 1
    book(sessions, gateway, clock, settings, "acc-2", start)
    assert start not in remaining(slots(sessions, clock, settings))
    assert remaining(slots(sessions, clock, settings))[start + MINUTES_15] == 2

    with pytest.raises(SlotFull) as raised:
        book(sessions, gateway, clock, settings, "acc-3", start)
    assert raised.value.code == "slot_full" and raised.value.status == 409
    assert call_count(sessions) == 2

    # The booking is a real scheduled call: meeting, invite.
    with unit_of_work(sessions, write=False) as session:
        call = session.get_one(CallSession, first)
        assert (call.status, call.scheduled_for, call.reminders_sent) == (SessionStatus.SCHEDULED, start, 0)
        assert call.meet_uri is not None
    assert gateway.invites[calendar_event_id(first)].start == start

    # A canceled booking gives its place back.
    cancel(sessions, gateway, clock, settings, "acc-1", first)
    assert remaining(slots(sessions, clock, settings))[start] == 1
    book(sessions, gateway, clock, settings, "acc-3", start)


def test_a_call_off_the_grid_takes_a_place_in_its_slot(sessions, clock, settings) -> None:
    add_account(sessions, clock)
    with unit_of_work(sessions) as session:  # booking only offers the grid, but a stored call may be off it
        session.add(CallSession(account_id="acc-1", status=SessionStatus.SCHEDULED, scheduled_for=at(23, 10, 5),
                                created_at=clock(), updated_at=clock()))
    assert remaining(slots(sessions, clock, settings))[at(23, 10)] == 1


@pytest.mark.parametrize("start, message", [
    (at(23, 10, 7), "quarter hour"),
    (at(23, 10, 0) + dt.timedelta(seconds=1), "quarter hour"),
    (at(22, 8), "too soon"),            # the past
    (at(22, 9, 15), "too soon"),        # under 30 minutes away
    (at(29, 9, 30), "too far"),         # the window is [09:30 on the 22nd, 09:30 on the 29th)
], ids=["off-boundary", "seconds", "past", "too-soon", "beyond-window"])
def test_bad_times_are_refused_and_nothing_changes(sessions, clock, settings, gateway, start, message) -> None:
    add_account(sessions, clock)
    with pytest.raises(InvalidInput) as raised:
        book(sessions, gateway, clock, settings, "acc-1", start)
    assert [e.field for e in raised.value.errors] == ["start"]
    assert message in raised.value.detail
    assert call_count(sessions) == 0
    assert gateway.spaces == {} and gateway.invites == {}


def test_the_edges_of_the_window_are_bookable(sessions, clock, settings, gateway) -> None:
    add_account(sessions, clock)
    book(sessions, gateway, clock, settings, "acc-1", at(22, 9, 30))
    book(sessions, gateway, clock, settings, "acc-1", at(29, 9, 15))
    assert call_count(sessions) == 2


def test_a_naive_start_is_local_time(sessions, clock, settings, gateway) -> None:
    add_account(sessions, clock)
    call_id = booking.book_slot(sessions, gateway, "acc-1", start=dt.datetime(2026, 11, 23, 5, 0),
                                settings=settings, now=clock(), tz=NEW_YORK)
    with unit_of_work(sessions, write=False) as session:
        assert session.get_one(CallSession, call_id).scheduled_for == at(23, 10)


def test_with_shifts_a_slot_nobody_covers_is_full(sessions, clock, settings, gateway) -> None:
    add_account(sessions, clock)
    rita = add_reviewer(sessions, clock, "rita@corp.example")
    add_shift(sessions, clock, rita, at(23, 10), at(23, 11))
    with pytest.raises(SlotFull):
        book(sessions, gateway, clock, settings, "acc-1", at(23, 12))
    book(sessions, gateway, clock, settings, "acc-1", at(23, 10))
    with pytest.raises(SlotFull):
        book(sessions, gateway, clock, settings, "acc-1", at(23, 10))


def test_admit_runs_under_the_lock_and_links_the_request(sessions, clock, settings, gateway) -> None:
    add_account(sessions, clock)
    with unit_of_work(sessions) as session:
        request, _, _ = services.request_verification(session, "acc-1", reason=RequestReason.NEW_ACCOUNT,
                                                      deadline=None, place_hold=False, actor="t", now=clock())
    seen: list[str] = []

    def refuse(session, account) -> str | None:
        seen.append(account.id)
        raise Conflict("not now")

    with pytest.raises(Conflict):
        booking.book_slot(sessions, gateway, "acc-1", start=at(23, 10), settings=settings, now=clock(), tz=UTC,
                          admit=refuse)
    assert seen == ["acc-1"] and call_count(sessions) == 0
    ids = [booking.book_slot(sessions, gateway, "acc-1", start=at(23, 10 + i), settings=settings, now=clock(),
                             tz=UTC, admit=lambda session, account: request.id) for i in range(2)]
    with unit_of_work(sessions, write=False) as session:
        calls = [session.get_one(CallSession, call_id) for call_id in ids]
        assert [(c.verification_request_id, c.attempt) for c in calls] == [(request.id, 1), (request.id, 2)]


def test_a_booking_survives_a_meet_misconfiguration(sessions, clock, settings, gateway) -> None:
    add_account(sessions, clock)
    gateway.fail_next(MeetConfigurationError("delegation missing"))
    call_id = book(sessions, gateway, clock, settings, "acc-1", at(23, 10))
    with unit_of_work(sessions, write=False) as session:
        assert session.get_one(CallSession, call_id).meet_status is MeetingStatus.QUEUED
    assert meetings.prepare_queued(sessions, gateway, settings=settings, now=clock()) == 1
    assert scheduling.send_pending_invites(sessions, gateway, settings=settings, now=clock()) == 1
    assert gateway.invites[calendar_event_id(call_id)].start == at(23, 10)


def test_a_closed_account_cannot_book(sessions, clock, settings, gateway) -> None:
    add_account(sessions, clock)
    with unit_of_work(sessions) as session:
        close_account(session, "acc-1", actor="t", now=clock())
    with pytest.raises(AccountClosed):
        book(sessions, gateway, clock, settings, "acc-1", at(23, 10))
    assert call_count(sessions) == 0


def test_racing_freelancers_never_overbook(sessions, clock, settings, gateway) -> None:
    workers = 8
    for i in range(workers):
        add_account(sessions, clock, f"acc-{i}")
    start = at(23, 10)
    barrier = threading.Barrier(workers)

    def task(i: int) -> object:
        barrier.wait()
        try:
            return book(sessions, gateway, clock, settings, f"acc-{i}", start)
        except Exception as exc:  # asserted on below
            return exc

    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(task, range(workers)))
    assert sum(isinstance(r, str) for r in results) == 2
    assert sum(isinstance(r, SlotFull) for r in results) == workers - 2
    assert call_count(sessions) == 2


# ---------------------------------------------------------------- rescheduling

def test_reschedule_moves_the_booking_and_its_invite(sessions, clock, settings, gateway) -> None:
    for account_id in ("acc-1", "acc-2", "acc-3"):
        add_account(sessions, clock, account_id)
    call_id = book(sessions, gateway, clock, settings, "acc-1", at(23, 10))
    book(sessions, gateway, clock, settings, "acc-2", at(23, 11))
    book(sessions, gateway, clock, settings, "acc-3", at(23, 11))
    with unit_of_work(sessions) as session:
        session.get_one(CallSession, call_id).reminders_sent = 1

    def move(start: dt.datetime, account_id: str = "acc-1", call: str = call_id) -> None:
        booking.reschedule_booking(sessions, gateway, account_id, call, start=start, settings=settings,
                                   now=clock(), tz=UTC)

    with pytest.raises(SlotFull):
        move(at(23, 11))
    with pytest.raises(InvalidInput):
        move(at(23, 12, 5))
    with pytest.raises(CallSessionNotFound):
        move(at(23, 12), account_id="acc-2")   # not theirs
    with unit_of_work(sessions, write=False) as session:
        assert session.get_one(CallSession, call_id).scheduled_for == at(23, 10)

    move(at(23, 12))
    with unit_of_work(sessions, write=False) as session:
        call = session.get_one(CallSession, call_id)
        assert (call.scheduled_for, call.reminders_sent) == (at(23, 12), 0)
    assert gateway.invites[calendar_event_id(call_id)].start == at(23, 12)
    found = remaining(slots(sessions, clock, settings))
    assert (found[at(23, 10)], found[at(23, 12)]) == (2, 1)

    cancel(sessions, gateway, clock, settings, "acc-1", call_id)
    with pytest.raises(InvalidInput):
        move(at(23, 13))


# ---------------------------------------------------------------- time zones

def test_slots_are_grouped_by_local_day(sessions, clock, settings) -> None:
    found = slots(sessions, clock, settings, tz=NEW_YORK)  # 09:00 UTC is 04:00 in New York
    assert found[0].local_start == dt.datetime(2026, 11, 22, 4, 30, tzinfo=NEW_YORK)
    days = booking.group_by_day(found)
    assert [day for day, _ in days] == [dt.date(2026, 11, d) for d in range(22, 30)]
    first_day, second_day = days[0][1], days[1][1]
    # 04:45 UTC on the 23rd is still the 22nd in New York; 05:00 UTC starts the 23rd there.
    assert first_day[-1].start == at(23, 4, 45) and first_day[-1].local_start.hour == 23
    assert second_day[0].start == at(23, 5) and second_day[0].local_start.time() == dt.time(0, 0)
    assert len(second_day) == 96
    assert sum(len(day_slots) for _, day_slots in days) == len(found)
    # Grouped in UTC, the second day starts five hours earlier.
    assert booking.group_by_day(slots(sessions, clock, settings))[1][1][0].start == at(23, 0)


def test_quarter_hour_slots_stay_on_the_quarter_hour_in_odd_zones(sessions, clock, settings) -> None:
    found = slots(sessions, clock, settings, tz=ZoneInfo("Asia/Kathmandu"))  # UTC+05:45
    assert found[0].local_start.strftime("%H:%M") == "15:15"
    assert {slot.local_start.minute for slot in found} == {0, 15, 30, 45}


# ---------------------------------------------------------------- reminders

def run_reminders(sessions, settings, now: dt.datetime) -> int:
    with unit_of_work(sessions) as session:
        return send_due_reminders(session, settings=settings, now=now)


def reminders(sessions) -> list[dict]:
    with unit_of_work(sessions, write=False) as session:
        return [row.data for row in session.scalars(
            sa.select(OutboxEvent).where(OutboxEvent.type == "verification.appointment.reminder")
            .order_by(OutboxEvent.id))]


def test_a_reminder_states_the_time_in_the_profiles_zone_by_its_canonical_name(sessions, clock, settings,
                                                                             gateway) -> None:
    add_account(sessions, clock, timezone="Asia/Calcutta")
    call_id = book(sessions, gateway, clock, settings, "acc-1", at(24, 12))
    assert run_reminders(sessions, settings, at(24, 12) - MINUTES_15) == 1
    [sent] = reminders(sessions)
    assert sent["session"]["id"] == call_id
    assert sent["session"]["scheduled_for"] == "2026-11-24T12:00:00Z"
    assert sent["session"]["time_zone"] == "Asia/Kolkata"
    assert sent["session"]["local_time"] == "2026-11-24T17:30:00+05:30"


def test_reminders_go_24_hours_then_15_minutes_before_each_once(sessions, clock, settings, gateway) -> None:
    add_account(sessions, clock)
    start = at(24, 12)
    call_id = book(sessions, gateway, clock, settings, "acc-1", start)
    with unit_of_work(sessions, write=False) as session:
        version = session.get_one(Account, "acc-1").restrictions_version
        meet_uri = session.get_one(CallSession, call_id).meet_uri

    timeline = [
        (start - dt.timedelta(hours=24, minutes=1), 0), (start - dt.timedelta(hours=24), 1),
        (start - dt.timedelta(hours=23), 0), (start - dt.timedelta(minutes=15, seconds=1), 0),
        (start - MINUTES_15, 1), (start - dt.timedelta(minutes=10), 0), (start + MINUTES_15, 0),
    ]
    assert [run_reminders(sessions, settings, now) for now, _ in timeline] == [n for _, n in timeline]
    sent = reminders(sessions)
    assert [data["minutes_before"] for data in sent] == [1440, 15]
    # The profile names no zone: the reminder states the time in UTC only.
    assert sent[0]["session"] == {"id": call_id, "scheduled_for": "2026-11-24T12:00:00Z", "meet_uri": meet_uri,
                                  "time_zone": None, "local_time": None}
    assert sent[0]["account_id"] == "acc-1" and sent[1]["seq"] == sent[0]["seq"] + 1
    with unit_of_work(sessions, write=False) as session:
        assert session.get_one(CallSession, call_id).reminders_sent == 2
        assert session.get_one(Account, "acc-1").restrictions_version == version


def test_a_late_booking_gets_only_the_latest_due_reminder(sessions, clock, settings, gateway) -> None:
    add_account(sessions, clock)
    soon = book(sessions, gateway, clock, settings, "acc-1", at(22, 9, 45))
    assert run_reminders(sessions, settings, clock()) == 1  # 45 minutes ahead: only the day-before one is due
    assert run_reminders(sessions, settings, clock() + dt.timedelta(minutes=5)) == 0
    assert run_reminders(sessions, settings, clock() + dt.timedelta(minutes=31)) == 1
    assert [(d["session"]["id"], d["minutes_before"]) for d in reminders(sessions)] == [(soon, 1440), (soon, 15)]
    with unit_of_work(sessions, write=False) as session:
        assert session.get_one(CallSession, soon).reminders_sent == 2


def test_no_reminders_for_canceled_calls_or_closed_accounts(sessions, clock, settings, gateway) -> None:
    for account_id in ("acc-1", "acc-2", "acc-3"):
        add_account(sessions, clock, account_id)
    canceled = book(sessions, gateway, clock, settings, "acc-1", at(23, 8))
    book(sessions, gateway, clock, settings, "acc-2", at(23, 8))
    still_scheduled = book(sessions, gateway, clock, settings, "acc-3", at(23, 8, 15))
    cancel(sessions, gateway, clock, settings, "acc-1", canceled)
    with unit_of_work(sessions) as session:
        close_account(session, "acc-2", actor="t", now=clock())
        # A closed account whose call was somehow left scheduled gets no reminder either.
        session.get_one(Account, "acc-3").closed_at = clock()
    assert run_reminders(sessions, settings, clock()) == 0
    assert reminders(sessions) == []
    with unit_of_work(sessions, write=False) as session:
        assert session.get_one(CallSession, still_scheduled).status is SessionStatus.SCHEDULED


def test_reminders_already_sent_never_crowd_out_due_ones(sessions, clock, settings, gateway) -> None:
    for i in range(3):
        add_account(sessions, clock, f"acc-{i}")
    reminded = [book(sessions, gateway, clock, settings, f"acc-{i}", at(23, 5)) for i in range(2)]
    assert run_reminders(sessions, settings, clock()) == 2
    due = book(sessions, gateway, clock, settings, "acc-2", at(23, 6))
    with unit_of_work(sessions) as session:
        assert send_due_reminders(session, settings=settings, now=clock(), limit=1) == 1
    assert reminders(sessions)[-1]["session"]["id"] == due
    assert due not in reminded


def test_the_reminder_job(app, registry, clock, gateway) -> None:
    add_account(registry.sessions, clock)
    call_id = booking.book_slot(registry.sessions, gateway, "acc-1", start=at(23, 8), settings=registry.settings,
                                now=clock(), tz=UTC)
    assert send_appointment_reminders(app) == 1
    assert send_appointment_reminders(app) == 0
    assert [d["session"]["id"] for d in reminders(registry.sessions)] == [call_id]
