"""Reconciliation: with Meet's events on, which sessions the attendance job still reads from Meet.

Events carry attendance; polling only catches what they missed (README, "Real-time attendance").
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session

from verify_service.calls.models import CallSession
from verify_service.settings import Settings

# Meet reads a full read of one call costs: conference records, participants, and each participant's
# sessions (two people): what the reconciliation budget counts in.
READS_PER_CALL = 4
# The share of the Meet read quota reconciliation may spend; the rest is the events' own reads.
RECONCILE_SHARE = 0.5


@dataclasses.dataclass(frozen=True)
class Plan:
    """Which due sessions the attendance job reads from Meet, and which it re-applies from what is stored."""

    read: list[str]
    reapply: list[str]


def plan_reconciliation(db: Session, due: list[str], *, live_hosts: set[str], settings: Settings,
                        now: dt.datetime, run_seconds: float = 30.0) -> Plan:
    """With Meet's events on: a session is read only when its host has no live subscription (then it is
    polled as without events), or when it has gone ``VERIFY_ATTENDANCE_RECONCILE_SECONDS`` with no event
    and no read — a lost event is caught then; within each host's share of the read quota per run,
    longest-quiet first (``due`` comes in that order). Every other session is re-applied from the
    stored attendance, reading nothing: that is how time-based consequences (expiry, abandonment,
    the no-show suggestion) still come on time."""
    if not due:
        return Plan([], [])
    rows = db.execute(sa.select(CallSession.id, CallSession.meet_host, CallSession.meet_space,
                                CallSession.meet_event_at, CallSession.attendance_synced_at,
                                CallSession.meet_ready_at, CallSession.created_at)
                      .where(CallSession.id.in_(due))).all()
    by_id = {row.id: row for row in rows}
    quiet_for = dt.timedelta(seconds=settings.attendance_reconcile_seconds)
    per_host = max(1, int(settings.meet_read_quota_per_user * RECONCILE_SHARE * run_seconds / 60 / READS_PER_CALL))
    hosts = max(1, len(settings.meet_host_users))
    in_all = max(1, int(min(settings.meet_read_quota_per_user * hosts, settings.meet_read_quota_per_project)
                        * RECONCILE_SHARE * run_seconds / 60 / READS_PER_CALL))
    spent: dict[str, int] = {}
    read, reapply = [], []
    for call_id in due:
        row = by_id[call_id]
        if not row.meet_space or not row.meet_host or row.meet_host not in live_hosts:
            read.append(call_id)  # nothing to read (a booked call's time), or no events for this host: poll
            continue
        last = max(t for t in (row.meet_event_at, row.attendance_synced_at, row.meet_ready_at, row.created_at)
                   if t is not None)
        if now - last >= quiet_for and spent.get(row.meet_host, 0) < per_host and sum(spent.values()) < in_all:
            spent[row.meet_host] = spent.get(row.meet_host, 0) + 1
            read.append(call_id)
        else:
            reapply.append(call_id)
    return Plan(read, reapply)
