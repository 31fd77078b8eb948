"""Writing and reading the scheduler heartbeat (see :mod:`verify_service.ops.models`).

Every write here is an upsert in its own short transaction, so a second
scheduler writing at the same moment never conflicts on a primary key.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from verify_service.db import unit_of_work, upsert_insert
from verify_service.ops.models import LEADER, SchedulerHeartbeat, SchedulerJobRun

# A leader that has not beaten for this long is considered gone (/readyz alert).
STALE_AFTER = dt.timedelta(seconds=60)
# Rows of processes gone for this long are deleted by the leader's beat.
FORGET_AFTER = dt.timedelta(days=1)


def _upsert(db: Session, model: type, values: dict[str, Any], key: str) -> None:
    insert = upsert_insert(db, model).values(**values)
    changes = {name: value for name, value in values.items() if name != key}
    db.execute(insert.on_conflict_do_update(index_elements=[key], set_=changes))


def beat(sessions: sessionmaker[Session], instance_id: str, *, role: str, started_at: dt.datetime,
         now: dt.datetime) -> None:
    """Record that ``instance_id`` is alive in ``role``; a leader's beat also forgets long-gone processes.

    Raises: any database error (the caller decides whether it matters).
    """
    with unit_of_work(sessions) as db:
        _upsert(db, SchedulerHeartbeat, {"instance_id": instance_id, "role": role,
                                              "started_at": started_at, "last_beat_at": now}, "instance_id")
        if role == LEADER:
            db.execute(sa.delete(SchedulerHeartbeat).where(
                SchedulerHeartbeat.last_beat_at < now - FORGET_AFTER))


def forget(sessions: sessionmaker[Session], instance_id: str) -> None:
    """Remove the process's row on a clean shutdown. Raises: any database error."""
    with unit_of_work(sessions) as db:
        db.execute(sa.delete(SchedulerHeartbeat).where(SchedulerHeartbeat.instance_id == instance_id))


def job_started(sessions: sessionmaker[Session], job_id: str, instance_id: str, *, now: dt.datetime) -> None:
    """Mark the start of a run of ``job_id``. Raises: any database error."""
    with unit_of_work(sessions) as db:
        _upsert(db, SchedulerJobRun, {"job_id": job_id, "instance_id": instance_id, "last_started_at": now,
                                           "last_finished_at": None}, "job_id")


def job_finished(sessions: sessionmaker[Session], job_id: str, instance_id: str, *, started_at: dt.datetime,
                 now: dt.datetime, error: str | None) -> None:
    """Record how the run of ``job_id`` started at ``started_at`` ended. Raises: any database error."""
    values: dict[str, Any] = {"job_id": job_id, "instance_id": instance_id, "last_started_at": started_at,
                              "last_finished_at": now, "last_ok": error is None,
                              "last_error": None if error is None else error[:500]}
    if error is None:
        values["last_success_at"] = now
    with unit_of_work(sessions) as db:
        _upsert(db, SchedulerJobRun, values, "job_id")


@dataclasses.dataclass(frozen=True)
class SchedulerState:
    """What ``/readyz`` shows: the freshest leader (if any), every process, and every job's latest run."""

    leader: str | None
    leader_beat_at: dt.datetime | None
    instances: list[dict[str, Any]]
    jobs: dict[str, dict[str, Any]]

    @property
    def never_seen(self) -> bool:
        """No scheduler has recorded itself here: none ever ran (a fresh install, a test), or none runs now
        and none ever ran a job."""
        return not self.instances and not self.jobs

    def stale(self, now: dt.datetime) -> bool:
        """True when some scheduler has run here but no leader has beaten within :data:`STALE_AFTER`."""
        if self.never_seen:
            return False  # nothing to be stale: /readyz reports a missing scheduler on its own
        return self.leader_beat_at is None or now - self.leader_beat_at > STALE_AFTER


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def read_state(db: Session) -> SchedulerState:
    """The heartbeat as it stands. Raises: any database error."""
    rows = db.scalars(sa.select(SchedulerHeartbeat).order_by(SchedulerHeartbeat.last_beat_at.desc())).all()
    leader = next((row for row in rows if row.role == LEADER), None)
    runs = db.scalars(sa.select(SchedulerJobRun).order_by(SchedulerJobRun.job_id)).all()
    return SchedulerState(
        leader=leader.instance_id if leader else None,
        leader_beat_at=leader.last_beat_at if leader else None,
        instances=[{"instance_id": r.instance_id, "role": r.role, "started_at": _iso(r.started_at),
                    "last_beat_at": _iso(r.last_beat_at)} for r in rows],
        jobs={r.job_id: {"instance_id": r.instance_id, "last_started_at": _iso(r.last_started_at),
                         "last_finished_at": _iso(r.last_finished_at), "last_ok": r.last_ok,
                         "last_success_at": _iso(r.last_success_at), "last_error": r.last_error}
              for r in runs})
