"""Appointments: the slots a freelancer may book, booking and moving them.

Reviewer shifts are planned in ``leads/shifts.py``; reminders are ``reminders.py``.

Slots are 15 minutes long and start on UTC quarter hours (every real time
zone's offset is a multiple of 15 minutes, so they are local quarter hours
too), from the first one at least 30 minutes away, for
``settings.booking_days`` days. How many calls a slot takes: once leads have
set any shift overlapping those days, the number of distinct active reviewers
whose shifts cover the whole slot (no shift, no slot); before that,
``settings.booking_default_capacity`` around the clock.

Booking checks the remaining capacity and inserts the session in *one*
transaction, with every booking of the same slot serialised: on PostgreSQL by
a transaction-scoped advisory lock on the slot (taken after the account lock),
on SQLite by the write transaction's ``BEGIN IMMEDIATE``. Two freelancers
racing for the last place therefore never both get it (a check in a
transaction of its own would leave a window for the race). After the insert
the meeting is prepared and the invite sent (``prepare_meeting``,
``send_invite``), outside any transaction.

Workflow (takes a sessionmaker: it calls Meet and Calendar between its
units): :func:`book_slot` and :func:`reschedule_booking` open their own
short units (``unit_of_work``), and the booking page calls them through
``pages.run_workflow`` with no transaction of its own open.

Booking changes (booking, moving, canceling a booking) are audited, and a
freelancer may make ``settings.booking_changes_per_day`` of them in any 24
hours (:func:`check_booking_changes`), apart from the limit on calls opened.
A cancel counts but is never refused: giving a time back is always allowed.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import logging
from collections.abc import Callable, Iterable, Iterator

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from integrations.google_meet import MeetConfigurationError, MeetGateway, calendar_event_id
from verify_service.accounts.domain import ensure_open
from verify_service.accounts.models import Account
from verify_service.accounts.services import lock_account
from verify_service.accounts.restrictions import isoformat
from verify_service.audit.models import AuditEntry
from verify_service.audit.services import record
from verify_service.calls import invites
from verify_service.calls.errors import CallSessionNotFound
from verify_service.calls.invites import Pushed
from verify_service.calls.lifecycle import INVITE_MOVE
from verify_service.calls.meetings import prepare_meeting
from verify_service.calls.models import CallSession, MeetingStatus
from verify_service.calls.scheduling import send_invite
from verify_service.calls.state import SessionStatus
from verify_service.db import for_update, unit_of_work, workflow
from verify_service.errors import Conflict, InvalidInput
from verify_service.staff.models import Reviewer, ReviewerShift
from verify_service.settings import Settings

log = logging.getLogger(__name__)

SLOT_LENGTH = dt.timedelta(minutes=15)
LEAD_TIME = dt.timedelta(minutes=30)     # the first bookable slot starts at least this far ahead
# First key of pg_advisory_xact_lock(int, int) for booking slots; the second is the slot's number.
SLOT_LOCK_NAMESPACE = 0x510
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


class SlotFull(Conflict):
    code = "slot_full"
    title = "That time is fully booked"


class BookingChangesLimit(Conflict):
    status = 429
    code = "booking_changes_limit"
    title = "Too many booking changes today"


# The audit actions that count as booking changes (see check_booking_changes).
BOOKED, RESCHEDULED, BOOKING_CANCELED = "call_session.booked", "call_session.rescheduled", "call_session.booking_canceled"
BOOKING_CHANGES = (BOOKED, RESCHEDULED, BOOKING_CANCELED)
CHANGES_WINDOW = dt.timedelta(hours=24)


# Called with the locked account before a booking: raises to refuse, returns the verification request's id.
Admit = Callable[[Session, Account], str | None]


@dataclasses.dataclass(frozen=True)
class Slot:
    start: dt.datetime        # UTC
    local_start: dt.datetime  # the same instant in the freelancer's time zone
    remaining: int            # calls the slot still takes

    @property
    def end(self) -> dt.datetime:
        return self.start + SLOT_LENGTH


@dataclasses.dataclass(frozen=True)
class Window:
    """The bookable slot starts: ``first`` up to (not including) ``end``."""

    first: dt.datetime
    end: dt.datetime

    def starts(self) -> Iterator[dt.datetime]:
        start = self.first
        while start < self.end:
            yield start
            start += SLOT_LENGTH


def _floor(value: dt.datetime) -> dt.datetime:
    return _EPOCH + ((value - _EPOCH) // SLOT_LENGTH) * SLOT_LENGTH


def _ceil(value: dt.datetime) -> dt.datetime:
    floor = _floor(value)
    return floor if floor == value else floor + SLOT_LENGTH


def booking_window(*, now: dt.datetime, settings: Settings) -> Window:
    first = _ceil(now + LEAD_TIME)
    return Window(first, first + dt.timedelta(days=settings.booking_days))


# ---------------------------------------------------------------- capacity

@dataclasses.dataclass(frozen=True)
class ShiftRow:
    reviewer_id: int
    starts_at: dt.datetime
    ends_at: dt.datetime
    active: bool  # the reviewer's account is enabled: only then does the shift take calls


def shift_rows(db: Session, since: dt.datetime, until: dt.datetime) -> list[ShiftRow]:
    """The concrete reviewer shifts that overlap ``since``–``until``, soonest first (one query)."""
    return [ShiftRow(*row) for row in db.execute(
        sa.select(ReviewerShift.reviewer_id, ReviewerShift.starts_at, ReviewerShift.ends_at, Reviewer.active)
        .join(Reviewer, Reviewer.id == ReviewerShift.reviewer_id)
        .where(ReviewerShift.starts_at < until, ReviewerShift.ends_at > since)
        .order_by(ReviewerShift.starts_at, ReviewerShift.id))]


def _shift_capacity(db: Session, window: Window) -> dict[dt.datetime, int] | None:
    """Active reviewers on shift for each slot start; None when no shift overlaps the window (one query)."""
    rows = shift_rows(db, window.first, window.end)
    if not rows:
        return None
    on_duty: dict[dt.datetime, set[int]] = collections.defaultdict(set)
    for row in rows:
        if not row.active:
            continue
        start = max(_ceil(row.starts_at), window.first)
        while start < window.end and start + SLOT_LENGTH <= row.ends_at:
            on_duty[start].add(row.reviewer_id)  # a set: overlapping shifts of one reviewer count once
            start += SLOT_LENGTH
    return {start: len(reviewers) for start, reviewers in on_duty.items()}


def _booked(db: Session, window: Window) -> collections.Counter[dt.datetime]:
    """Scheduled calls per slot start (one grouped query); a call off the grid counts in its slot."""
    rows = db.execute(
        sa.select(CallSession.scheduled_for, sa.func.count())
        .where(CallSession.status == SessionStatus.SCHEDULED,
               CallSession.scheduled_for >= window.first, CallSession.scheduled_for < window.end)
        .group_by(CallSession.scheduled_for)).all()
    booked: collections.Counter[dt.datetime] = collections.Counter()
    for scheduled_for, count in rows:
        booked[_floor(scheduled_for)] += count
    return booked


def available_slots(db: Session, *, now: dt.datetime, settings: Settings, tz: dt.tzinfo) -> list[Slot]:
    """The slots that still take a call, soonest first (two queries, whatever the window's length)."""
    window = booking_window(now=now, settings=settings)
    capacity = _shift_capacity(db, window)
    booked = _booked(db, window)
    slots = []
    for start in window.starts():
        total = settings.booking_default_capacity if capacity is None else capacity.get(start, 0)
        remaining = total - booked[start]
        if remaining > 0:
            slots.append(Slot(start, start.astimezone(tz), remaining))
    return slots


def group_by_day(slots: Iterable[Slot]) -> list[tuple[dt.date, list[Slot]]]:
    """Slots by the local day they start on, days and slots in order."""
    days: dict[dt.date, list[Slot]] = {}
    for slot in sorted(slots, key=lambda s: s.start):
        days.setdefault(slot.local_start.date(), []).append(slot)
    return sorted(days.items())


# ---------------------------------------------------------------- booking

def _validated_start(start: dt.datetime, *, now: dt.datetime, settings: Settings, tz: dt.tzinfo) -> dt.datetime:
    """``start`` in UTC; a naive value is a wall-clock time in ``tz``.

    Raises:
        InvalidInput: not on a quarter hour, too soon, or beyond the booking window.
    """
    if start.tzinfo is None:
        start = start.replace(tzinfo=tz)
    start = start.astimezone(dt.timezone.utc)
    local = start.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
    if _floor(start) != start:
        raise InvalidInput.for_field("start", f"{local} is not a slot: slots start on the quarter hour")
    window = booking_window(now=now, settings=settings)
    if start < window.first:
        raise InvalidInput.for_field("start", f"{local} is too soon: book at least 30 minutes ahead")
    if start >= window.end:
        raise InvalidInput.for_field("start", f"{local} is too far ahead: book within {settings.booking_days} days")
    return start


def _lock_slot(db: Session, start: dt.datetime) -> None:
    """Serialise every booking of the slot until the transaction ends (SQLite: BEGIN IMMEDIATE already does)."""
    if db.get_bind().dialect.name == "postgresql":
        number = int((start - _EPOCH) // SLOT_LENGTH)
        db.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.cast(SLOT_LOCK_NAMESPACE, sa.Integer),
                                                                sa.cast(number, sa.Integer))))


def check_booking_changes(db: Session, account_id: str, *, settings: Settings, now: dt.datetime) -> None:
    """Refuse one more booking change when the account made its daily share (the locked account's audit entries).

    Raises: BookingChangesLimit.
    """
    made = db.scalar(sa.select(sa.func.count()).select_from(AuditEntry).where(
        AuditEntry.account_id == account_id, AuditEntry.action.in_(BOOKING_CHANGES),
        AuditEntry.occurred_at > now - CHANGES_WINDOW)) or 0
    if made >= settings.booking_changes_per_day:
        raise BookingChangesLimit(f"you have booked, moved or canceled a call {made} times in the last 24 hours; "
                                  "please keep the time you have, or try again tomorrow")


def audit_booking_change(db: Session, action: str, call: CallSession, *, now: dt.datetime) -> None:
    record(db, actor="freelancer", action=action, account_id=call.account_id, subject_type="call_session",
           subject_id=call.id, details={"scheduled_for": isoformat(call.scheduled_for)}, now=now)


def _take_place(db: Session, start: dt.datetime, *, settings: Settings, now: dt.datetime,
                moving: str | None = None) -> None:
    """Make sure the slot takes one more call (``moving``: a call that is leaving its own slot).

    Raises: SlotFull.
    """
    _lock_slot(db, start)
    by_slot = _shift_capacity(db, booking_window(now=now, settings=settings))
    capacity = settings.booking_default_capacity if by_slot is None else by_slot.get(start, 0)
    taken = sa.select(sa.func.count()).select_from(CallSession).where(
        CallSession.status == SessionStatus.SCHEDULED,
        CallSession.scheduled_for >= start, CallSession.scheduled_for < start + SLOT_LENGTH)
    if moving is not None:
        taken = taken.where(CallSession.id != moving)
    if (db.scalar(taken) or 0) >= capacity:
        raise SlotFull("every place at that time is taken; please choose another time")


@workflow
def book_slot(sessions: sessionmaker[Session], gateway: MeetGateway, account_id: str, *, start: dt.datetime,
              settings: Settings, now: dt.datetime, tz: dt.tzinfo, admit: Admit | None = None,
              on_meet_problem: Callable[[MeetConfigurationError], None] | None = None) -> str:
    """Book the slot at ``start`` for the account; returns the new call session's id.

    ``tz`` (the freelancer's zone) reads a naive ``start`` and words the errors.
    ``admit`` (e.g. the freelancer journey's ``check_may_open``) runs with the
    account locked, in the booking's transaction: it may refuse by raising, and
    returns the verification request the call belongs to (or None).
    ``on_meet_problem`` hears of a Meet configuration error at once (the app's readiness).

    Raises:
        InvalidInput: ``start`` is not a bookable slot (nothing is written).
        SlotFull: the slot has no place left.
        BookingChangesLimit: the account made its booking changes for the day.
        AccountNotFound, AccountClosed; whatever ``admit`` raises. (A Meet configuration
        error is logged and the meeting queued.)
    """
    start = _validated_start(start, now=now, settings=settings, tz=tz)
    with unit_of_work(sessions) as db:
        account = lock_account(db, account_id)
        ensure_open(account)
        request_id = admit(db, account) if admit is not None else None
        check_booking_changes(db, account_id, settings=settings, now=now)
        _take_place(db, start, settings=settings, now=now)
        attempt = 1 if request_id is None else (db.scalar(sa.select(sa.func.count()).select_from(CallSession)
                                                .where(CallSession.verification_request_id == request_id)) or 0) + 1
        call = CallSession(account_id=account_id, verification_request_id=request_id, attempt=attempt,
                           status=SessionStatus.SCHEDULED, scheduled_for=start, created_at=now, updated_at=now)
        db.add(call)
        db.flush()
        call.calendar_event_id = calendar_event_id(call.id)
        audit_booking_change(db, BOOKED, call, now=now)
        call_id = call.id
    try:
        prepare_meeting(sessions, gateway, call_id, settings=settings, now=now)
    except MeetConfigurationError as exc:
        # The booking stands: queue its meeting, so the queue job creates it (and sends the invite) once
        # Meet is fixed; /readyz reports the problem meanwhile.
        log.error("Meet is misconfigured; the meeting of booked call %s is queued: %s", call_id, exc)
        if on_meet_problem is not None:
            on_meet_problem(exc)
        with unit_of_work(sessions) as db:
            call = db.get_one(CallSession, call_id)
            call.meet_status, call.meet_queued_at, call.meet_error = MeetingStatus.QUEUED, now, str(exc)[:500]
        return call_id
    send_invite(sessions, gateway, call_id, settings=settings, now=now)
    return call_id


@workflow
def reschedule_booking(sessions: sessionmaker[Session], gateway: MeetGateway, account_id: str,
                       call_session_id: str, *, start: dt.datetime, settings: Settings, now: dt.datetime,
                       tz: dt.tzinfo) -> Pushed:
    """Move the account's booked call to the slot at ``start``; returns how its invite fared.

    The new slot is claimed in one transaction as in :func:`book_slot`, and the
    move stands once it commits; then the invite is moved once (and by the
    ``repair_invites`` job until Google takes it: ``calls/invites.py``).
    Reminders start over. A move is no new call: only the booking-change limit applies.

    Raises:
        InvalidInput: ``start`` is not a bookable slot, or the call is no longer scheduled.
        SlotFull: the new slot has no place left.
        BookingChangesLimit: the account made its booking changes for the day.
        CallSessionNotFound: the account has no such call. AccountNotFound.
    """
    start = _validated_start(start, now=now, settings=settings, tz=tz)
    with unit_of_work(sessions) as db:
        lock_account(db, account_id)  # lock order: account, then the session, then the slot
        call = db.execute(for_update(db, sa.select(CallSession).where(
            CallSession.id == call_session_id, CallSession.account_id == account_id))).scalar_one_or_none()
        if call is None:
            raise CallSessionNotFound(f"no call session with id {call_session_id!r}")
        if call.status is not SessionStatus.SCHEDULED:
            raise InvalidInput.for_field("status", f"only a booked call can be moved (it is {call.status.value})")
        if call.scheduled_for == start:
            return Pushed.DONE
        check_booking_changes(db, account_id, settings=settings, now=now)
        _take_place(db, start, settings=settings, now=now, moving=call.id)
        call.scheduled_for, call.reminders_sent, call.updated_at = start, 0, now  # reminders start over
        if call.invite_sent_at is not None:
            invites.mark(call, INVITE_MOVE, now=now)
        audit_booking_change(db, RESCHEDULED, call, now=now)
    return invites.push_invite(sessions, gateway, call_session_id, settings=settings, now=now)

