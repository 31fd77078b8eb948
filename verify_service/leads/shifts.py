"""Weekly recurring shifts, and turning them into concrete reviewer shifts (UTC) for the next days.

Leads plan shifts as "every Tuesday 09:00–17:00 Europe/Berlin". Booking
capacity and the freelancer's wait estimate read concrete
:class:`~verify_service.staff.models.ReviewerShift` rows, so
:func:`materialise` keeps, for every recurring shift, one row per occurrence
that has not ended yet and starts within :data:`HORIZON`. Local times are
converted with :mod:`zoneinfo` day by day, so a shift keeps its wall-clock
hours across daylight-saving changes (its UTC instants move instead).

Materialising is idempotent: it compares the wanted occurrences with the
rows already there and only adds the missing and deletes the stale ones, so
re-running it changes nothing, and editing a recurring shift replaces its
current and future rows. Rows that have ended are history and never touched.
Each recurring shift's row is locked first (PostgreSQL ``FOR UPDATE``; SQLite
writers are serialised by ``BEGIN IMMEDIATE``), so the daily job and a lead's
edit never both insert the same occurrence.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import zoneinfo
from collections.abc import Collection, Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session

from verify_service.accounts import zones
from verify_service.audit.services import record
from verify_service.db import for_update
from verify_service.errors import Conflict, InvalidInput, NotFound
from verify_service.staff.models import HUMAN, RecurringShift, Reviewer, ReviewerShift

HORIZON = dt.timedelta(days=14)
MAX_SHIFT = dt.timedelta(hours=12)
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_DAY = dt.timedelta(days=1)


class RecurringShiftNotFound(NotFound):
    code = "recurring_shift_not_found"
    title = "No such weekly shift"


class ShiftOverlap(Conflict):
    code = "shift_overlap"
    title = "The reviewer already has a shift at that time"


@dataclasses.dataclass(frozen=True)
class ShiftPlan:
    """What a lead asks for: every ``weekday`` from ``start`` to ``end`` local time in ``time_zone``."""

    reviewer_id: int
    weekday: int
    start: dt.time
    end: dt.time
    time_zone: str


@dataclasses.dataclass
class MaterialiseReport:
    added: int = 0
    removed: int = 0


# ---------------------------------------------------------------- parsing and checking

def zone(name: str) -> zoneinfo.ZoneInfo:
    """The IANA zone ``name``, under its canonical name (``accounts/zones.py``: Asia/Calcutta is Asia/Kolkata).

    Raises:
        InvalidInput: not a time zone name this system knows (field ``time_zone``).
    """
    try:
        return zones.canonical_zone(name)
    except InvalidInput as exc:
        raise InvalidInput.for_field("time_zone", f"{name.strip()!r} is not a time zone name such as "
                                                  "Europe/Berlin") from exc


def parse_plan(reviewer_id: str, weekday: str, start: str, end: str, time_zone: str) -> ShiftPlan:
    """A plan from form fields (``HH:MM`` times, weekday 0 = Monday).

    Raises:
        InvalidInput: a field cannot be read, or the shift is empty or longer than 12 hours.
    """
    try:
        reviewer = int(reviewer_id)
    except ValueError as exc:
        raise InvalidInput.for_field("reviewer_id", "choose a reviewer") from exc
    if weekday not in {str(i) for i in range(7)}:
        raise InvalidInput.for_field("weekday", "choose a day of the week")
    times = []
    for name, value in (("start", start), ("end", end)):
        try:
            times.append(dt.time.fromisoformat(value.strip()).replace(second=0, microsecond=0, tzinfo=None))
        except ValueError as exc:
            raise InvalidInput.for_field(name, "give a time as HH:MM, e.g. 09:00") from exc
    plan = ShiftPlan(reviewer, int(weekday), times[0], times[1], str(zone(time_zone)))
    length = nominal_length(plan.start, plan.end)
    if length == dt.timedelta(0):
        raise InvalidInput.for_field("end", "must differ from the start")
    if length > MAX_SHIFT:
        raise InvalidInput.for_field("end", "a shift lasts at most 12 hours")
    return plan


def nominal_length(start: dt.time, end: dt.time) -> dt.timedelta:
    """Wall-clock length; an end at or before the start is on the next day."""
    minutes = (end.hour * 60 + end.minute) - (start.hour * 60 + start.minute)
    return dt.timedelta(minutes=minutes % (24 * 60))


def crosses_midnight(shift: RecurringShift) -> bool:
    return shift.end_time <= shift.start_time


# ---------------------------------------------------------------- occurrences

def occurrence(day: dt.date, start: dt.time, end: dt.time, tz: zoneinfo.ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """The UTC interval of a shift starting on local ``day``.

    A local time that does not exist (the hour skipped in spring) is read with
    the offset before the change (PEP 495, ``fold=0``), an ambiguous one (the
    hour repeated in autumn) as its first occurrence.
    """
    end_day = day if end > start else day + _DAY
    starts = dt.datetime.combine(day, start, tzinfo=tz).astimezone(dt.timezone.utc)
    ends = dt.datetime.combine(end_day, end, tzinfo=tz).astimezone(dt.timezone.utc)
    return starts, ends


def occurrences(weekday: int, start: dt.time, end: dt.time, time_zone: str, *, since: dt.datetime,
                until: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
    """UTC intervals of the weekly shift that end after ``since`` and start before ``until``, in order."""
    tz = zoneinfo.ZoneInfo(time_zone)
    day = since.astimezone(tz).date() - _DAY  # last night's shift may still be running
    last = until.astimezone(tz).date()
    found = []
    while day <= last:
        if day.weekday() == weekday:
            starts, ends = occurrence(day, start, end, tz)
            # A shift inside the skipped spring hour can come out empty: there is nothing to staff.
            if ends > starts and ends > since and starts < until:
                found.append((starts, ends))
        day += _DAY
    return found


def _wanted(shift: RecurringShift | ShiftPlan, now: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
    if isinstance(shift, RecurringShift):
        return occurrences(shift.weekday, shift.start_time, shift.end_time, shift.time_zone, since=now,
                           until=now + HORIZON)
    return occurrences(shift.weekday, shift.start, shift.end, shift.time_zone, since=now, until=now + HORIZON)


# ---------------------------------------------------------------- materialising

def _sync(db: Session, shift: RecurringShift, *, now: dt.datetime) -> MaterialiseReport:
    wanted = set(_wanted(shift, now))
    rows = db.scalars(sa.select(ReviewerShift).where(ReviewerShift.recurring_shift_id == shift.id,
                                                          ReviewerShift.ends_at > now)).all()
    report = MaterialiseReport()
    for row in rows:
        key = (row.starts_at, row.ends_at)
        if key in wanted and row.reviewer_id == shift.reviewer_id:
            wanted.discard(key)
        else:
            db.delete(row)
            report.removed += 1
    for starts, ends in sorted(wanted):
        db.add(ReviewerShift(reviewer_id=shift.reviewer_id, starts_at=starts, ends_at=ends,
                                  created_by=f"recurring_shift:{shift.id}", created_at=now,
                                  recurring_shift_id=shift.id))
        report.added += 1
    db.flush()
    return report


def materialise(db: Session, *, now: dt.datetime, shift_ids: Collection[int] | None = None) -> MaterialiseReport:
    """Bring the concrete shifts of every (or the given) recurring shift up to date for :data:`HORIZON`."""
    stmt = sa.select(RecurringShift).order_by(RecurringShift.id)
    if shift_ids is not None:
        stmt = stmt.where(RecurringShift.id.in_(list(shift_ids)))
    total = MaterialiseReport()
    for shift in db.scalars(for_update(db, stmt)).all():
        report = _sync(db, shift, now=now)
        total.added += report.added
        total.removed += report.removed
    return total


# ---------------------------------------------------------------- what leads do

def _check(db: Session, plan: ShiftPlan, *, now: dt.datetime, other_than: int | None = None) -> None:
    """Raises: InvalidInput (no such active reviewer), ShiftOverlap (another weekly shift of theirs overlaps)."""
    # A built-in identity (simulations) is never on shift: it is no reviewer a lead can plan.
    reviewer = db.execute(for_update(db, sa.select(Reviewer).where(Reviewer.id == plan.reviewer_id, HUMAN))
                               ).scalar_one_or_none()
    if reviewer is None or not reviewer.active:
        raise InvalidInput.for_field("reviewer_id", "is not an active reviewer")
    others = db.scalars(sa.select(RecurringShift).where(RecurringShift.reviewer_id == plan.reviewer_id,
                                                             RecurringShift.id != (other_than or 0))).all()
    mine = _wanted(plan, now)
    for other in others:
        for starts, ends in _wanted(other, now):
            if any(s < ends and e > starts for s, e in mine):
                raise ShiftOverlap(f"it overlaps their {describe(other)} shift")


def _details(shift: RecurringShift) -> dict[str, object]:
    return {"reviewer_id": shift.reviewer_id, "weekday": shift.weekday, "start": shift.start_time.strftime("%H:%M"),
            "end": shift.end_time.strftime("%H:%M"), "time_zone": shift.time_zone}


def describe(shift: RecurringShift) -> str:
    """E.g. "Tuesday 22:00–06:00 (Europe/Berlin)"."""
    return (f"{WEEKDAYS[shift.weekday]} {shift.start_time:%H:%M}–{shift.end_time:%H:%M} ({shift.time_zone})")


def add_recurring_shift(db: Session, plan: ShiftPlan, *, actor: str, now: dt.datetime) -> RecurringShift:
    """Add a weekly shift and materialise it at once.

    Raises:
        InvalidInput: the reviewer is unknown or disabled.
        ShiftOverlap: it overlaps another weekly shift of the same reviewer.
    """
    _check(db, plan, now=now)
    shift = RecurringShift(reviewer_id=plan.reviewer_id, weekday=plan.weekday, start_time=plan.start,
                           end_time=plan.end, time_zone=plan.time_zone, created_by=actor, created_at=now)
    db.add(shift)
    db.flush()
    record(db, actor=actor, action="recurring_shift.added", subject_type="recurring_shift",
           subject_id=str(shift.id), details=_details(shift), now=now)
    materialise(db, now=now, shift_ids=[shift.id])
    return shift


def get_recurring_shift(db: Session, shift_id: int) -> RecurringShift:
    """Raises: RecurringShiftNotFound."""
    shift = db.get(RecurringShift, shift_id)
    if shift is None:
        raise RecurringShiftNotFound(f"no weekly shift with id {shift_id}")
    return shift


def change_recurring_shift(db: Session, shift_id: int, plan: ShiftPlan, *, actor: str,
                           now: dt.datetime) -> RecurringShift:
    """Change a weekly shift's day, hours or zone (not its reviewer); its current and future rows are replaced.

    Raises:
        RecurringShiftNotFound; InvalidInput (another reviewer named); ShiftOverlap.
    """
    shift = get_recurring_shift(db, shift_id)
    if plan.reviewer_id != shift.reviewer_id:
        raise InvalidInput.for_field("reviewer_id", "a weekly shift stays with its reviewer: add a new one instead")
    _check(db, plan, now=now, other_than=shift.id)
    before = _details(shift)
    shift.weekday, shift.start_time, shift.end_time = plan.weekday, plan.start, plan.end
    shift.time_zone = plan.time_zone
    db.flush()
    record(db, actor=actor, action="recurring_shift.changed", subject_type="recurring_shift",
           subject_id=str(shift.id), details={"before": before, "after": _details(shift)}, now=now)
    materialise(db, now=now, shift_ids=[shift.id])
    return shift


def remove_recurring_shift(db: Session, shift_id: int, *, actor: str, now: dt.datetime) -> int:
    """Remove a weekly shift and its current and future rows (ended ones stay, unlinked). Returns rows removed.

    Calls already booked stay booked.

    Raises: RecurringShiftNotFound.
    """
    shift = db.execute(for_update(db, sa.select(RecurringShift).where(RecurringShift.id == shift_id))
                            ).scalar_one_or_none()
    if shift is None:
        raise RecurringShiftNotFound(f"no weekly shift with id {shift_id}")
    details = _details(shift)
    removed = db.execute(sa.delete(ReviewerShift).where(ReviewerShift.recurring_shift_id == shift_id,
                                                             ReviewerShift.ends_at > now)).rowcount or 0
    # The ended rows keep their times, unlinked (as ON DELETE SET NULL would; said here so no backend differs).
    db.execute(sa.update(ReviewerShift).where(ReviewerShift.recurring_shift_id == shift_id)
                    .values(recurring_shift_id=None))
    db.delete(shift)
    db.flush()
    record(db, actor=actor, action="recurring_shift.removed", subject_type="recurring_shift",
           subject_id=str(shift_id), details={**details, "rows_removed": removed}, now=now)
    return removed


@dataclasses.dataclass(frozen=True)
class ReviewerPlan:
    reviewer: Reviewer
    shifts: list[RecurringShift]
    next_shift: ReviewerShift | None

    @property
    def time_zone(self) -> str | None:
        """The reviewer's zone as their weekly shifts give it (the latest one's), if any."""
        return max(self.shifts, key=lambda s: s.created_at).time_zone if self.shifts else None


def plans(db: Session, *, now: dt.datetime) -> Sequence[ReviewerPlan]:
    """Every reviewer (active first) with their weekly shifts and their next concrete shift."""
    reviewers = db.scalars(sa.select(Reviewer).where(HUMAN).order_by(Reviewer.active.desc(), Reviewer.display_name,
                                                             Reviewer.id)).all()
    by_reviewer: dict[int, list[RecurringShift]] = {}
    for shift in db.scalars(sa.select(RecurringShift).order_by(
            RecurringShift.weekday, RecurringShift.start_time, RecurringShift.id)):
        by_reviewer.setdefault(shift.reviewer_id, []).append(shift)
    upcoming: dict[int, ReviewerShift] = {}
    for row in db.scalars(sa.select(ReviewerShift).where(ReviewerShift.ends_at > now)
                               .order_by(ReviewerShift.starts_at.desc())):
        upcoming[row.reviewer_id] = row  # descending: the earliest one wins
    return [ReviewerPlan(r, by_reviewer.get(r.id, []), upcoming.get(r.id)) for r in reviewers]
