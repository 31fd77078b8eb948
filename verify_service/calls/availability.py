"""Who reviews calls now, and when the next shift starts: the one reading of the reviewer shifts the pages put in words.

It reads the concrete shifts booking capacity reads (:func:`booking.shift_rows`,
over the booking window), so the pages cannot promise what booking does not
offer: while no shift is set there, booking offers
``settings.booking_default_capacity`` at every slot and the pages may say
reviewers are available around the clock; once shifts are set, they say who
is on now and until when, or when the next shift starts. Only active
reviewers' shifts take calls.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable

from sqlalchemy.orm import Session

from verify_service.calls import booking
from verify_service.settings import Settings

_INSTANT = dt.timedelta(microseconds=1)


@dataclasses.dataclass(frozen=True)
class Availability:
    around_the_clock: bool          # no shift is set: the default capacity applies at any time
    on_now: frozenset[int]          # the active reviewers on shift now
    until: dt.datetime | None       # while someone is on: when the shifts running now (and joining on) end
    next_start: dt.datetime | None  # while nobody is on: when the next shift starts (None: none planned)

    @property
    def reviewers_on(self) -> bool:
        return self.around_the_clock or bool(self.on_now)


def _on(rows: Iterable[booking.ShiftRow], now: dt.datetime) -> frozenset[int]:
    return frozenset(row.reviewer_id for row in rows if row.active and row.starts_at <= now < row.ends_at)


def _coverage_end(rows: list[booking.ShiftRow], now: dt.datetime) -> dt.datetime:
    """When the active shifts running at ``now``, and those following on without a gap, are over."""
    end = now
    for row in rows:  # soonest start first
        if row.starts_at > end:
            break
        if row.active:
            end = max(end, row.ends_at)
    return end


def on_shift(db: Session, *, now: dt.datetime) -> frozenset[int]:
    """The active reviewers on shift at ``now``."""
    return _on(booking.shift_rows(db, now, now + _INSTANT), now)


def availability(db: Session, *, now: dt.datetime, settings: Settings) -> Availability:
    """Who is on now and until when, or when the next shift starts, as of ``now`` (one query)."""
    rows = booking.shift_rows(db, now, booking.booking_window(now=now, settings=settings).end)
    if not rows:
        return Availability(around_the_clock=True, on_now=frozenset(), until=None, next_start=None)
    on_now = _on(rows, now)
    if on_now:
        return Availability(around_the_clock=False, on_now=on_now, until=_coverage_end(rows, now), next_start=None)
    upcoming = [row.starts_at for row in rows if row.active and row.starts_at > now]
    return Availability(around_the_clock=False, on_now=on_now, until=None, next_start=min(upcoming, default=None))
