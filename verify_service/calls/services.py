"""Ending the Meet conferences of sessions that ended while their conference could be live.

Ending a conference is an outbound call, so it never happens inside the
request that ends a session: the ending marks the session
(``conference_end_requested_at``) and :func:`end_requested_conferences`, run
by a job, asks the Meet gateway and records ``conference_ended_at``. While a
run asks, it holds a lease on the session (``conference_ending_until``), so two
schedulers never both ask to end one conference.

Workflow (takes a sessionmaker: it calls Meet between its units): the lease,
the call, and the record of the answer are separate short units.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from integrations.google_meet import MeetError, MeetGateway
from verify_service.calls.models import CallSession
from verify_service.db import unit_of_work, workflow

log = logging.getLogger(__name__)

# How long a run holds a conference it is ending: well past a Meet call with its
# timeout and retries (about a minute at worst).
CLAIM = dt.timedelta(minutes=5)


@dataclasses.dataclass(frozen=True)
class ConferenceEnding:
    """What one run of :func:`end_requested_conferences` did."""

    ended: int = 0
    failed: int = 0


def _unleased(now: dt.datetime) -> sa.ColumnElement[bool]:
    return sa.or_(CallSession.conference_ending_until.is_(None), CallSession.conference_ending_until <= now)


def _requested(db: Session, *, now: dt.datetime, limit: int) -> list[tuple[str, str, str | None]]:
    """(session id, space, host) of the conferences waiting to be ended and not leased, oldest request first."""
    return [tuple(row) for row in db.execute(  # type: ignore[misc]
        sa.select(CallSession.id, CallSession.meet_space, CallSession.meet_host)
        .where(CallSession.conference_end_requested_at.is_not(None), CallSession.conference_ended_at.is_(None),
               CallSession.meet_space.is_not(None), _unleased(now))
        .order_by(CallSession.conference_end_requested_at, CallSession.id).limit(limit))]


@workflow
def _claim(sessions: sessionmaker[Session], call_session_id: str, *, now: dt.datetime, until: dt.datetime) -> bool:
    """Lease the ending of one conference to this run until ``until``; False when another run has it.

    A conditional update: of two schedulers that read the same row, one
    update matches (PostgreSQL re-checks the WHERE after the other's commit;
    SQLite serialises writers).
    """
    with unit_of_work(sessions) as db:
        return db.execute(sa.update(CallSession).where(
            CallSession.id == call_session_id, CallSession.conference_ended_at.is_(None), _unleased(now))
            .values(conference_ending_until=until)).rowcount == 1


@workflow
def _settle(sessions: sessionmaker[Session], call_session_id: str, *, claimed_until: dt.datetime,
            ended_at: dt.datetime | None) -> None:
    """Give the lease back; with ``ended_at``, record the conference as ended."""
    values: dict[str, object] = {"conference_ending_until": None}
    if ended_at is not None:
        values.update(conference_ended_at=ended_at, updated_at=ended_at)
    with unit_of_work(sessions) as db:
        db.execute(sa.update(CallSession).where(
            CallSession.id == call_session_id, CallSession.conference_ended_at.is_(None),
            CallSession.conference_ending_until == claimed_until).values(**values))


@workflow
def end_requested_conferences(sessions: sessionmaker[Session], gateway: MeetGateway, *, now: dt.datetime,
                              limit: int = 50) -> ConferenceEnding:
    """End the conferences of up to ``limit`` sessions marked for it, oldest request first.

    No transaction stays open while Meet is called (on SQLite that would hold
    the database's write lock). Instead each session is claimed first
    (:func:`_claim`, a lease for :data:`CLAIM`), so two schedulers racing never both
    ask Meet to end the same conference. A gateway failure is logged and the
    lease given back for the next run; a run that dies mid-call leaves its
    lease to lapse, and a later run asks Meet again (ending is idempotent).

    Raises nothing for gateway failures (``MeetError``); any other error propagates.
    """
    with unit_of_work(sessions, write=False) as db:
        requested = _requested(db, now=now, limit=limit)
    ended = failed = 0
    claimed_until = now + CLAIM
    for call_session_id, space, host in requested:
        if not _claim(sessions, call_session_id, now=now, until=claimed_until):
            continue  # another run is ending it (or has ended it)
        try:
            gateway.end_active_conference(space, host=host)
        except MeetError as exc:
            failed += 1
            log.warning("could not end the conference of call session %s (%s): %s; will retry",
                        call_session_id, space, exc)
            _settle(sessions, call_session_id, claimed_until=claimed_until, ended_at=None)
            continue
        _settle(sessions, call_session_id, claimed_until=claimed_until, ended_at=now)
        ended += 1
    return ConferenceEnding(ended=ended, failed=failed)
