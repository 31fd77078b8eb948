"""The leads' numbers: the queue now, today's waits and handling, decisions, and a 30-day series.

Days are UTC days. The rows of the window are fetched and the statistics
computed here rather than in SQL, which keeps them identical on SQLite and
PostgreSQL (at this scale a month is a few thousand rows).

Definitions:

* *wait* — from when the freelancer joined the queue until a reviewer took
  the call up (``started_at``, else ``claimed_at``). The queue is joined at
  ``created_at``; a booked call is not waiting before its appointment, so its
  wait counts from ``scheduled_for`` when that is later. A wait belongs to the
  day the call was taken up.
* *median* — the middle value (the mean of the two middle ones for an even
  count); *90th percentile* — nearest rank: the smallest wait that at least
  90 % of the waits do not exceed.
* *handling time* — from taking the call up to the reviewer's decision
  (``OutcomeRecord.decided_at − started_at``), for decisions made that day.
* *decisions* — outcome rows by the day they were decided; a fail is split by
  its second review (awaiting, confirmed, overturned).
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import math
import statistics
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session

from verify_service.calls.models import CallSession, OutcomeRecord
from verify_service.calls.state import Outcome, SessionStatus
from verify_service.staff.models import not_builtin

SERIES_DAYS = 30
DECISIONS = ("passed", "passed, overturned in quality review", "failed, confirmed", "failed, overturned",
             "failed, awaiting second review", "inconclusive", "no_show")


@dataclasses.dataclass(frozen=True)
class DayPoint:
    day: dt.date
    decisions: int
    median_wait: dt.timedelta | None


@dataclasses.dataclass(frozen=True)
class Count:
    label: str
    today: int
    period: int


@dataclasses.dataclass(frozen=True)
class Metrics:
    day: dt.date
    waiting_now: int
    waits_today: int
    median_wait: dt.timedelta | None
    p90_wait: dt.timedelta | None
    handled_today: int
    average_handling: dt.timedelta | None
    decisions: list[Count]
    reasons: list[Count] | None  # None while outcomes carry no reason codes
    series: list[DayPoint]

    @property
    def decisions_today(self) -> int:
        return sum(count.today for count in self.decisions)


def median(values: Sequence[dt.timedelta]) -> dt.timedelta | None:
    return statistics.median(sorted(values)) if values else None


def percentile(values: Sequence[dt.timedelta], fraction: float) -> dt.timedelta | None:
    """Nearest-rank percentile (``fraction`` in (0, 1]); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(fraction * len(ordered))) - 1]


def mean(values: Sequence[dt.timedelta]) -> dt.timedelta | None:
    return sum(values, dt.timedelta()) / len(values) if values else None


def _waits(db: Session, since: dt.datetime, until: dt.datetime) -> list[tuple[dt.date, dt.timedelta]]:
    """(day taken up, wait) of every call taken up in [since, until)."""
    picked = sa.func.coalesce(CallSession.started_at, CallSession.claimed_at)
    rows = db.execute(sa.select(CallSession.created_at, CallSession.scheduled_for, CallSession.started_at,
                                     CallSession.claimed_at)
                           .where(picked >= since, picked < until, not_builtin(CallSession.claimed_by_id))).all()
    waits = []
    for created_at, scheduled_for, started_at, claimed_at in rows:
        taken = started_at or claimed_at
        joined = max(created_at, scheduled_for) if scheduled_for is not None else created_at
        waits.append((taken.date(), max(taken - joined, dt.timedelta())))
    return waits


def decision_label(outcome: OutcomeRecord) -> str:
    if outcome.result is Outcome.PASSED and outcome.qa_decision == "overturned":
        return "passed, overturned in quality review"
    if outcome.result is not Outcome.FAILED:
        return outcome.result.value
    return {"confirmed": "failed, confirmed", "overturned": "failed, overturned"}.get(
        outcome.second_decision or "", "failed, awaiting second review")


def _counts(labels_by_day: list[tuple[dt.date, list[str]]], today: dt.date, fixed: Sequence[str]) -> list[Count]:
    period: collections.Counter[str] = collections.Counter()
    on_day: collections.Counter[str] = collections.Counter()
    for day, labels in labels_by_day:
        period.update(labels)
        if day == today:
            on_day.update(labels)
    extra = sorted(set(period) - set(fixed))
    return [Count(label, on_day[label], period[label]) for label in [*fixed, *extra]]


def lead_metrics(db: Session, *, now: dt.datetime, days: int = SERIES_DAYS) -> Metrics:
    """The metrics page's numbers for the UTC day of ``now`` and the ``days`` days ending with it."""
    today = now.astimezone(dt.timezone.utc).date()
    day_start = dt.datetime.combine(today, dt.time(), tzinfo=dt.timezone.utc)
    since = day_start - dt.timedelta(days=days - 1)
    until = day_start + dt.timedelta(days=1)
    waits = _waits(db, since, until)
    decided = db.execute(sa.select(OutcomeRecord, CallSession.started_at)
                              .join(CallSession, CallSession.id == OutcomeRecord.call_session_id)
                              .where(OutcomeRecord.decided_at >= since, OutcomeRecord.decided_at < until,
                                     not_builtin(OutcomeRecord.decided_by_id))).all()
    today_waits = [wait for day, wait in waits if day == today]
    handling = [o.decided_at - started for o, started in decided
                if o.decided_at.date() == today and started is not None and o.decided_at >= started]
    has_reasons = hasattr(OutcomeRecord, "reason_codes")  # added by migration 0007
    reasons = [(o.decided_at.date(), [str(c) for c in (getattr(o, "reason_codes", None) or [])]) for o, _ in decided]
    waits_by_day: dict[dt.date, list[dt.timedelta]] = collections.defaultdict(list)
    for day, wait in waits:
        waits_by_day[day].append(wait)
    decisions_by_day = collections.Counter(o.decided_at.date() for o, _ in decided)
    series = [DayPoint(d, decisions_by_day[d], median(waits_by_day[d]))
              for d in (since.date() + dt.timedelta(days=i) for i in range(days))]
    waiting = db.scalar(sa.select(sa.func.count()).select_from(CallSession)
                             .where(CallSession.status == SessionStatus.WAITING)) or 0
    return Metrics(
        day=today, waiting_now=waiting, waits_today=len(today_waits), median_wait=median(today_waits),
        p90_wait=percentile(today_waits, 0.9), handled_today=len(handling), average_handling=mean(handling),
        decisions=_counts([(o.decided_at.date(), [decision_label(o)]) for o, _ in decided], today, DECISIONS),
        reasons=_counts(reasons, today, ()) if has_reasons else None, series=series)


def minutes(value: dt.timedelta | None) -> str:
    """A duration for people: "4 min 30 s", "–" for none."""
    if value is None:
        return "–"
    total = round(value.total_seconds())
    if total < 60:
        return f"{total} s"
    mins, secs = divmod(total, 60)
    if mins >= 60:
        return f"{mins // 60} h {mins % 60} min"
    return f"{mins} min {secs} s" if secs else f"{mins} min"
