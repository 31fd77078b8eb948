"""Booking changes and their calendar invites (both backends): the daily limits, the audit, the invite job.

What is checked here: a canceled booking is no call opened and a move is no
new call, but both are booking changes (``booking_changes_per_day``); every
booking, move and cancel is audited; the invite of a booked call follows the
booking however Calendar behaves (``calls/invites.py``): recreated when
Google lost it, retried with growing pauses while Google fails, given up once
the call's time is past, and pushed once however many pushes race.
"""

from __future__ import annotations

import collections
import datetime as dt
import functools
import threading

import pytest
import sqlalchemy as sa

from integrations.google_meet import MeetError, calendar_event_id
from tests.conftest import make_settings
from tests.integration.test_booking import UTC, add_account, at
from tests.support.concurrency import run_together
from tests.support.fake_meet import FakeMeetGateway
from verify_service.accounts import services
from verify_service.accounts.domain import RequestReason
from verify_service.audit.models import AuditEntry
from verify_service.calls import booking, invites, lifecycle
from verify_service.calls.invites import Pushed
from verify_service.calls.models import CallSession
from verify_service.calls.state import EndReason, SessionStatus
from verify_service.db import unit_of_work
from verify_service.freelancer import journey
from verify_service.webhooks.models import OutboxEvent

ACCOUNT = "acc-1"
CANCELED_EVENT = "verification.session.canceled"


@pytest.fixture
def settings(database_url, tmp_path):
    """The defaults: daily_session_limit 3, booking_changes_per_day 10, capacity 2, 7 days of slots."""
    return make_settings(database_url, tmp_path)


@pytest.fixture
def gateway() -> FakeMeetGateway:
    return FakeMeetGateway()


@pytest.fixture
def freelancer(sessions, clock) -> str:
    """An account asked to verify (so it may open calls through the journey's checks)."""
    add_account(sessions, clock, ACCOUNT)
    with unit_of_work(sessions) as session:
        services.request_verification(session, ACCOUNT, reason=RequestReason.NEW_ACCOUNT, deadline=None,
                                      place_hold=False, actor="t", now=clock())
    return ACCOUNT


# ---------------------------------------------------------------- the freelancer's actions, as the pages take them

def book(sessions, gateway, clock, settings, start: dt.datetime) -> str:
    """Book as the page does: the journey's check_may_open admits the booking."""
    return booking.book_slot(sessions, gateway, ACCOUNT, start=start, settings=settings, now=clock(), tz=UTC,
                             admit=functools.partial(journey.check_may_open, settings=settings, now=clock()))


def move(sessions, gateway, clock, settings, call_id: str, start: dt.datetime) -> Pushed:
    return booking.reschedule_booking(sessions, gateway, ACCOUNT, call_id, start=start, settings=settings,
                                      now=clock(), tz=UTC)


def cancel(sessions, gateway, clock, settings, call_id: str) -> journey.Canceled:
    return journey.cancel_call(sessions, gateway, ACCOUNT, call_id, settings=settings, now=clock())


def start(sessions, gateway, clock, settings) -> str:
    call_id, _ = journey.start_call(sessions, gateway, ACCOUNT, settings=settings, now=clock())
    return call_id


def repair(sessions, gateway, clock, settings) -> dict[Pushed, int]:
    return invites.repair_invites(sessions, gateway, settings=settings, now=clock())


# ---------------------------------------------------------------- reading the state

def call_row(sessions, call_id: str) -> CallSession:
    with unit_of_work(sessions, write=False) as session:
        row = session.get_one(CallSession, call_id)
        session.expunge(row)
        return row


def call_count(sessions) -> int:
    with unit_of_work(sessions, write=False) as session:
        return session.scalar(sa.select(sa.func.count()).select_from(CallSession)) or 0


def opened(sessions, clock) -> int:
    with unit_of_work(sessions, write=False) as session:
        return len(journey.calls_opened(session, ACCOUNT, now=clock()))


def audit(sessions, *actions: str) -> list[tuple[str, str | None, dict]]:
    """(action, subject_id, details) of the account's audit entries with these actions, in order."""
    with unit_of_work(sessions, write=False) as session:
        rows = session.execute(sa.select(AuditEntry.action, AuditEntry.subject_id, AuditEntry.details, AuditEntry.actor)
                               .where(AuditEntry.account_id == ACCOUNT, AuditEntry.action.in_(actions))
                               .order_by(AuditEntry.seq)).all()
    assert {row.actor for row in rows} <= {"freelancer"}
    return [(row.action, row.subject_id, row.details) for row in rows]


def canceled_events(sessions) -> list[dict]:
    with unit_of_work(sessions, write=False) as session:
        return list(session.scalars(sa.select(OutboxEvent.data).where(OutboxEvent.type == CANCELED_EVENT)
                                    .order_by(OutboxEvent.id)))


def iso(value: dt.datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def expire(sessions, clock, call_id: str) -> None:
    """The booked call's time came and nobody joined (what the deadline job does)."""
    with unit_of_work(sessions) as session:
        account = services.lock_account(session, ACCOUNT)
        call = session.get_one(CallSession, call_id)
        lifecycle.expire(session, account, call, reason=EndReason.NOT_JOINED, now=clock())


# ---------------------------------------------------------------- the daily limit on calls opened

def test_canceled_bookings_are_no_calls_but_kept_bookings_and_started_calls_are(sessions, gateway, clock, settings,
                                                                                 freelancer) -> None:
    assert settings.daily_session_limit == 3
    for n in range(3):
        call_id = book(sessions, gateway, clock, settings, at(23, 10 + n))
        assert cancel(sessions, gateway, clock, settings, call_id) == journey.Canceled(True, Pushed.DONE)
        clock.advance(minutes=5)
    assert opened(sessions, clock) == 0  # before this change: 3, and the freelancer locked out for 24 hours

    # Still free to book (and the booking is kept: it counts) ...
    kept = book(sessions, gateway, clock, settings, at(22, 10))
    assert opened(sessions, clock) == 1
    clock.current = at(22, 10, 31)
    expire(sessions, clock, kept)  # nobody came: still a call opened
    assert opened(sessions, clock) == 1
    # ... and to start calls (each counts, left queue or not).
    for expected in (2, 3):
        call_id = start(sessions, gateway, clock, settings)
        assert cancel(sessions, gateway, clock, settings, call_id) == journey.Canceled(False, Pushed.DONE)
        assert opened(sessions, clock) == expected
    calls_before = call_count(sessions)

    with pytest.raises(journey.DailyLimitReached) as refused:
        start(sessions, gateway, clock, settings)
    assert (refused.value.code, refused.value.status) == ("daily_session_limit", 429)
    with pytest.raises(journey.DailyLimitReached):
        book(sessions, gateway, clock, settings, at(23, 12))
    assert call_count(sessions) == calls_before == 6


def test_a_reschedule_is_no_new_call(sessions, gateway, clock, settings, freelancer) -> None:
    call_id = book(sessions, gateway, clock, settings, at(23, 10))
    for hour in (11, 12, 13):  # three moves with a daily limit of three calls
        assert move(sessions, gateway, clock, settings, call_id, at(23, hour)) is Pushed.DONE
        clock.advance(minutes=1)
    row = call_row(sessions, call_id)
    assert (row.status, row.scheduled_for) == (SessionStatus.SCHEDULED, at(23, 13))
    assert call_count(sessions) == 1 and opened(sessions, clock) == 1
    assert gateway.invites[row.calendar_event_id].start == at(23, 13)
    # The booking is kept, and the freelancer still has calls left: cancel and book another time.
    cancel(sessions, gateway, clock, settings, call_id)
    assert opened(sessions, clock) == 0
    again = book(sessions, gateway, clock, settings, at(23, 14))
    assert call_row(sessions, again).status is SessionStatus.SCHEDULED and opened(sessions, clock) == 1


# ---------------------------------------------------------------- the daily limit on booking changes

def snapshot(sessions, gateway) -> tuple:
    """Everything a refused booking change could have changed."""
    with unit_of_work(sessions, write=False) as session:
        calls = sorted((c.id, c.status, c.scheduled_for, c.invite_pending)
                       for c in session.scalars(sa.select(CallSession)))
        audited = session.scalar(sa.select(sa.func.count()).select_from(AuditEntry)) or 0
        events = session.scalar(sa.select(sa.func.count()).select_from(OutboxEvent)) or 0
    return calls, audited, events, {k: (v.start, v.end) for k, v in gateway.invites.items()}


@pytest.mark.parametrize("fourth", ["book", "move"])
def test_the_fourth_booking_change_in_24_hours_is_refused(sessions, gateway, clock, settings, freelancer,
                                                          fourth: str) -> None:
    settings = settings.replace(booking_changes_per_day=3)
    call_id = book(sessions, gateway, clock, settings, at(24, 10))                # 1
    move(sessions, gateway, clock, settings, call_id, at(24, 11))                 # 2
    if fourth == "book":
        cancel(sessions, gateway, clock, settings, call_id)                       # 3
    else:
        move(sessions, gateway, clock, settings, call_id, at(24, 12))             # 3

    def change() -> object:
        if fourth == "book":
            return book(sessions, gateway, clock, settings, at(24, 13))
        if fourth == "move":
            return move(sessions, gateway, clock, settings, call_id, at(24, 13))
        return cancel(sessions, gateway, clock, settings, call_id)

    before = snapshot(sessions, gateway)
    for later in (0, 60, 23 * 60 + 59):  # minutes after the three changes
        clock.current = at(22, 9) + dt.timedelta(minutes=later)
        with pytest.raises(booking.BookingChangesLimit) as refused:
            change()
        assert (refused.value.code, refused.value.status) == ("booking_changes_limit", 429)
        assert "3 times" in refused.value.detail
        assert snapshot(sessions, gateway) == before  # nothing changed, nothing audited

    clock.current = at(23, 9)  # 24 hours after the three changes
    change()
    after = snapshot(sessions, gateway)
    assert after != before
    if fourth == "book":
        assert call_count(sessions) == 2
    else:
        assert call_row(sessions, call_id).scheduled_for == at(24, 13)


def test_canceling_a_booking_is_never_refused_but_counts_as_a_change(sessions, gateway, clock, settings,
                                                                     freelancer) -> None:
    settings = settings.replace(booking_changes_per_day=3)
    call_id = book(sessions, gateway, clock, settings, at(24, 10))                # 1
    move(sessions, gateway, clock, settings, call_id, at(24, 11))                 # 2
    move(sessions, gateway, clock, settings, call_id, at(24, 12))                 # 3
    cancel(sessions, gateway, clock, settings, call_id)                           # 4: still allowed
    assert call_row(sessions, call_id).status is SessionStatus.CANCELED
    with pytest.raises(booking.BookingChangesLimit) as refused:
        book(sessions, gateway, clock, settings, at(24, 13))
    assert "4 times" in refused.value.detail


def test_leaving_the_queue_is_no_booking_change(sessions, gateway, clock, settings, freelancer) -> None:
    settings = settings.replace(booking_changes_per_day=1)
    call_id = start(sessions, gateway, clock, settings)
    assert cancel(sessions, gateway, clock, settings, call_id).booking is False
    book(sessions, gateway, clock, settings, at(23, 10))  # the one booking change of the day


# ---------------------------------------------------------------- the audit

def test_each_booking_change_and_leaving_the_queue_are_audited(sessions, gateway, clock, settings,
                                                                freelancer) -> None:
    booked = book(sessions, gateway, clock, settings, at(23, 10))
    clock.advance(minutes=1)
    move(sessions, gateway, clock, settings, booked, at(23, 11))
    clock.advance(minutes=1)
    cancel(sessions, gateway, clock, settings, booked)
    clock.advance(minutes=1)
    waiting = start(sessions, gateway, clock, settings)
    cancel(sessions, gateway, clock, settings, waiting)

    assert audit(sessions, *booking.BOOKING_CHANGES, "call_session.started", "call_session.left_queue") == [
        ("call_session.booked", booked, {"scheduled_for": iso(at(23, 10))}),
        ("call_session.rescheduled", booked, {"scheduled_for": iso(at(23, 11))}),
        ("call_session.booking_canceled", booked, {"scheduled_for": iso(at(23, 11))}),
        ("call_session.started", waiting, {"attempt": 2}),
        ("call_session.left_queue", waiting, {"attempt": 2}),
    ]
    with unit_of_work(sessions, write=False) as session:
        times = session.scalars(sa.select(AuditEntry.occurred_at).where(
            AuditEntry.action.in_(booking.BOOKING_CHANGES)).order_by(AuditEntry.seq)).all()
    assert times == [at(22, 9), at(22, 9, 1), at(22, 9, 2)]
    # Both cancels are announced as the freelancer's.
    assert [(e["session"]["id"], e["by"]) for e in canceled_events(sessions)] == [
        (booked, "freelancer"), (waiting, "freelancer")]
    assert [call_row(sessions, i).end_reason for i in (booked, waiting)] == [EndReason.FREELANCER] * 2


# ---------------------------------------------------------------- the invite: deleted on Google's side

def test_a_move_recreates_the_invite_deleted_on_googles_side(sessions, gateway, clock, settings, freelancer) -> None:
    call_id = book(sessions, gateway, clock, settings, at(23, 10))
    row = call_row(sessions, call_id)
    original = row.calendar_event_id
    assert original == calendar_event_id(call_id) and original in gateway.invites
    gateway.cancel_invite(original, host=row.meet_host)  # the host deleted it in Google Calendar

    assert move(sessions, gateway, clock, settings, call_id, at(23, 12)) is Pushed.DONE
    row = call_row(sessions, call_id)
    assert row.scheduled_for == at(23, 12) and row.status is SessionStatus.SCHEDULED  # the move stands
    assert row.calendar_event_id == invites.recreated_id(original) == f"{original}r1"
    assert row.invite_pending is None and row.invite_retry_at is None and row.invite_error is None
    assert set(gateway.invites) == {row.calendar_event_id}
    event = gateway.invites[row.calendar_event_id]
    assert (event.start, event.end) == (at(23, 12), at(23, 12) + invites.CALL_LENGTH)
    assert event.meeting_uri == row.meet_uri and f"{ACCOUNT}@example.com" in event.attendees

    # Deleted again: the next move puts up the next id.
    gateway.cancel_invite(row.calendar_event_id, host=row.meet_host)
    assert move(sessions, gateway, clock, settings, call_id, at(23, 13)) is Pushed.DONE
    row = call_row(sessions, call_id)
    assert row.calendar_event_id == f"{original}r2"
    assert {k: v.start for k, v in gateway.invites.items()} == {f"{original}r2": at(23, 13)}


def test_canceling_a_booking_whose_invite_google_already_deleted_is_done(sessions, gateway, clock, settings,
                                                                         freelancer) -> None:
    call_id = book(sessions, gateway, clock, settings, at(23, 10))
    row = call_row(sessions, call_id)
    gateway.cancel_invite(row.calendar_event_id, host=row.meet_host)
    assert cancel(sessions, gateway, clock, settings, call_id) == journey.Canceled(True, Pushed.DONE)
    assert call_row(sessions, call_id).invite_pending is None and gateway.invites == {}


# ---------------------------------------------------------------- the invite: while Calendar fails

def test_a_cancel_stands_while_calendar_fails_and_the_job_deletes_the_invite_with_growing_pauses(
        sessions, gateway, clock, settings, freelancer) -> None:
    call_id = book(sessions, gateway, clock, settings, at(23, 10))
    event_id = call_row(sessions, call_id).calendar_event_id
    t0 = clock()
    gateway.fail_next(MeetError("calendar: HTTP 503"), times=3)

    done = cancel(sessions, gateway, clock, settings, call_id)
    assert done == journey.Canceled(booking=True, invite=Pushed.FAILED)
    row = call_row(sessions, call_id)
    assert (row.status, row.end_reason) == (SessionStatus.CANCELED, EndReason.FREELANCER)  # the cancel stands
    assert [(e["session"]["id"], e["by"]) for e in canceled_events(sessions)] == [(call_id, "freelancer")]
    assert event_id in gateway.invites  # still on the calendar
    assert (row.invite_pending, row.invite_attempts) == ("cancel", 1)
    assert row.invite_retry_at == t0 + dt.timedelta(minutes=1)
    assert "HTTP 503" in row.invite_error

    assert repair(sessions, gateway, clock, settings) == {}  # at the same time: the retry is not due
    assert event_id in gateway.invites

    clock.advance(minutes=1)
    assert repair(sessions, gateway, clock, settings) == {Pushed.FAILED: 1}
    row = call_row(sessions, call_id)
    assert (row.invite_pending, row.invite_attempts) == ("cancel", 2)
    assert row.invite_retry_at == clock() + dt.timedelta(minutes=5)  # a longer pause

    clock.advance(minutes=4, seconds=59)
    assert repair(sessions, gateway, clock, settings) == {}
    clock.advance(seconds=1)
    assert repair(sessions, gateway, clock, settings) == {Pushed.FAILED: 1}
    row = call_row(sessions, call_id)
    assert row.invite_attempts == 3 and row.invite_retry_at == clock() + dt.timedelta(minutes=15)
    assert event_id in gateway.invites

    clock.advance(minutes=15)
    assert repair(sessions, gateway, clock, settings) == {Pushed.DONE: 1}
    assert event_id not in gateway.invites
    row = call_row(sessions, call_id)
    assert (row.invite_pending, row.invite_retry_at, row.invite_error, row.invite_attempts) == (None, None, None, 0)

    clock.advance(minutes=1)
    gateway.fail_next(MeetError("would be called"))  # a later run must not call Google at all
    assert repair(sessions, gateway, clock, settings) == {}
    assert call_row(sessions, call_id).invite_pending is None
    assert call_row(sessions, call_id).status is SessionStatus.CANCELED


def test_a_move_while_calendar_fails_is_put_right_by_the_job(sessions, gateway, clock, settings, freelancer) -> None:
    call_id = book(sessions, gateway, clock, settings, at(23, 10))
    event_id = call_row(sessions, call_id).calendar_event_id
    gateway.fail_next(MeetError("calendar: timeout"))

    assert move(sessions, gateway, clock, settings, call_id, at(23, 12)) is Pushed.FAILED
    row = call_row(sessions, call_id)
    assert row.scheduled_for == at(23, 12) and row.invite_pending == "move"  # the move stands
    assert gateway.invites[event_id].start == at(23, 10)

    assert repair(sessions, gateway, clock, settings) == {}
    clock.advance(minutes=1)
    assert repair(sessions, gateway, clock, settings) == {Pushed.DONE: 1}
    event = gateway.invites[event_id]
    assert (event.start, event.end) == (at(23, 12), at(23, 12) + invites.CALL_LENGTH)
    row = call_row(sessions, call_id)
    assert row.invite_pending is None and row.calendar_event_id == event_id


def test_the_job_gives_up_once_the_booked_time_is_past(sessions, gateway, clock, settings, freelancer) -> None:
    booked_for = at(22, 11, 30)
    call_id = book(sessions, gateway, clock, settings, booked_for)
    event_id = call_row(sessions, call_id).calendar_event_id
    gateway.fail_next(MeetError("calendar: HTTP 500"), times=20)
    assert cancel(sessions, gateway, clock, settings, call_id).invite is Pushed.FAILED

    pauses = []
    while True:
        row = call_row(sessions, call_id)
        assert row.invite_pending == "cancel"
        pauses.append(row.invite_retry_at - clock())
        clock.current = row.invite_retry_at
        result = repair(sessions, gateway, clock, settings)
        if result != {Pushed.FAILED: 1}:
            break
        assert clock() < booked_for  # still trying while the invite matters
    # 1, 5, 15 minutes, then hourly (09:01, 09:06, 09:21, 10:21, 11:21), until the call's time has gone by.
    assert pauses == [dt.timedelta(minutes=m) for m in (1, 5, 15, 60, 60, 60)]
    assert clock() == at(22, 12, 21)
    assert result == {Pushed.GAVE_UP: 1}
    row = call_row(sessions, call_id)
    assert row.invite_pending is None and row.invite_retry_at is None
    assert row.status is SessionStatus.CANCELED
    clock.advance(hours=1)
    assert repair(sessions, gateway, clock, settings) == {}
    assert event_id in gateway.invites  # never deleted: Google never answered, and it no longer matters


# ---------------------------------------------------------------- the invite: pushes that race

class SlowCalendar(FakeMeetGateway):
    """Counts the Calendar calls; each move or delete takes a while (so a racing push finds it under way)."""

    def __init__(self) -> None:
        super().__init__()
        self.calendar_calls: collections.Counter[str] = collections.Counter()
        self._count_lock = threading.Lock()
        self.delay = 0.0

    def _called(self, name: str) -> None:
        with self._count_lock:
            self.calendar_calls[name] += 1
        if self.delay:
            threading.Event().wait(self.delay)

    def move_invite(self, event_id, start, end, *, host, send_updates="all") -> None:
        self._called("move")
        super().move_invite(event_id, start, end, host=host, send_updates=send_updates)

    def cancel_invite(self, event_id, *, host, send_updates="all") -> None:
        self._called("cancel")
        super().cancel_invite(event_id, host=host, send_updates=send_updates)


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
@pytest.mark.parametrize("kind", ["cancel", "move"])
@pytest.mark.parametrize("pusher", ["push_invite", "repair_invites"])
def test_two_pushes_of_one_pending_change_call_google_once(backend, sessions, clock, settings, freelancer,
                                                           kind: str, pusher: str) -> None:
    gateway = SlowCalendar()
    call_id = book(sessions, gateway, clock, settings, at(23, 10))
    event_id = call_row(sessions, call_id).calendar_event_id
    gateway.fail_next(MeetError("calendar: HTTP 503"))
    if kind == "cancel":
        assert cancel(sessions, gateway, clock, settings, call_id).invite is Pushed.FAILED
    else:
        assert move(sessions, gateway, clock, settings, call_id, at(23, 12)) is Pushed.FAILED
    assert call_row(sessions, call_id).invite_pending == kind
    gateway.calendar_calls.clear()
    clock.advance(minutes=1)  # the retry is due
    gateway.delay = 0.3

    if pusher == "push_invite":
        task = functools.partial(invites.push_invite, sessions, gateway, call_id, settings=settings, now=clock())
    else:
        task = functools.partial(repair, sessions, gateway, clock, settings)
    results = run_together([task, task])
    assert not [r for r in results if isinstance(r, Exception)], results

    assert gateway.calendar_calls == {kind: 1}  # Google asked once
    if pusher == "push_invite":
        assert sorted(results) == sorted([Pushed.DONE, Pushed.BUSY])
    else:
        assert sum(r.get(Pushed.DONE, 0) for r in results) == 1  # type: ignore[union-attr]
        assert not any(r.get(Pushed.FAILED) for r in results)  # type: ignore[union-attr]
    row = call_row(sessions, call_id)
    assert row.invite_pending is None and row.invite_retry_at is None
    if kind == "cancel":
        assert event_id not in gateway.invites
    else:
        assert gateway.invites[event_id].start == at(23, 12)


class HeldCalendar(FakeMeetGateway):
    """The first move to ``held`` waits at Google until released (a slow Calendar answer)."""

    def __init__(self, held: dt.datetime) -> None:
        super().__init__()
        self.held = held
        self.arrived, self.release = threading.Event(), threading.Event()

    def move_invite(self, event_id, start, end, *, host, send_updates="all") -> None:
        if start == self.held and not self.arrived.is_set():
            self.arrived.set()
            assert self.release.wait(20)
        super().move_invite(event_id, start, end, host=host, send_updates=send_updates)


@pytest.mark.parametrize("then", ["move", "cancel"])
def test_a_slow_push_overtaken_by_a_newer_change_leaves_the_calendar_right(sessions, clock, settings, freelancer,
                                                                          then: str) -> None:
    """A push still at Google when the freelancer changes the booking again: the calendar must end as booked.

    The first push (a move to 12:00) is slow; meanwhile the freelancer moves to 13:00 (or cancels), whose
    push finishes first. Whatever order Google applied them in, the calendar must end up matching the
    booking, or a change must still be pending for the job.
    """
    gateway = HeldCalendar(held=at(23, 12))
    call_id = book(sessions, gateway, clock, settings, at(23, 10))
    event_id = call_row(sessions, call_id).calendar_event_id
    first: list[object] = []
    slow = threading.Thread(target=lambda: first.append(move(sessions, gateway, clock, settings, call_id,
                                                             at(23, 12))))
    slow.start()
    assert gateway.arrived.wait(20), "the first push never reached Google"
    if then == "move":
        assert move(sessions, gateway, clock, settings, call_id, at(23, 13)) is Pushed.DONE
    else:
        assert cancel(sessions, gateway, clock, settings, call_id).invite is Pushed.DONE
    gateway.release.set()
    slow.join(20)
    assert first and not isinstance(first[0], Exception)

    # The job runs as it would, a while later.
    for _ in range(3):
        clock.advance(minutes=61)
        repair(sessions, gateway, clock, settings)
    row = call_row(sessions, call_id)
    if then == "move":
        assert row.scheduled_for == at(23, 13)
        assert {k: v.start for k, v in gateway.invites.items()} == {row.calendar_event_id: at(23, 13)}, (
            "the calendar shows the older time of the slow push, and nothing is pending to put it right")
    else:
        assert row.status is SessionStatus.CANCELED
        assert gateway.invites == {}, (
            f"the booking is canceled but {sorted(gateway.invites)} is on the calendar (first id {event_id}), "
            f"and nothing is pending (invite_pending={row.invite_pending!r})")
