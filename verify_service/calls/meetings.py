"""Meet meetings for call sessions: the creation budget, creating, queueing, members.

Google lets each host user create about 10 spaces a minute (100 a project).
Creations are charged to the host with the most room left in the last 60
seconds; when every host is spent the session is *queued* (the freelancer
sees it) and a job creates its meeting as soon as budget frees up.

No transaction stays open during a call to Google: the budget is reserved
and committed first, the space is created, then the result is stored.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from integrations.google_meet import MeetConfigurationError, MeetError, MeetGateway, MeetRateLimited
from verify_service.accounts.models import Account
from verify_service.calls.models import CallSession, MeetHost, MeetingStatus, MeetSpaceCreation
from verify_service.calls.state import SessionStatus
from verify_service.db import for_update, unit_of_work, upsert_insert
from verify_service.observability.metrics import record_meet_error
from verify_service.settings import Settings

log = logging.getLogger(__name__)

WINDOW = dt.timedelta(seconds=60)
SATURATION = dt.timedelta(seconds=60)  # after a 429, leave the host alone this long
# How long a creation may take (the adapter's retries included) before another process may try again.
CREATION_LEASE = dt.timedelta(minutes=2)


@dataclasses.dataclass(frozen=True)
class Budget:
    per_host: int
    per_project: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Budget:
        return cls(settings.meet_creates_per_minute, settings.meet_project_creates_per_minute)


def reserve_host(session: Session, hosts: Sequence[str], budget: Budget, *, now: dt.datetime) -> str | None:
    """Charge one space creation to the host with the most room; ``None`` when all are spent.

    The host rows are locked (in a fixed order) for the check-and-charge, so
    concurrent reservations never overspend a host.
    """
    session.execute(upsert_insert(session, MeetHost).values([{"email": h} for h in hosts]).on_conflict_do_nothing(index_elements=["email"]))
    rows = session.scalars(for_update(session, sa.select(MeetHost).where(MeetHost.email.in_(hosts))
                                      .order_by(MeetHost.email))).all()
    used = dict(session.execute(
        sa.select(MeetSpaceCreation.host, sa.func.count()).where(MeetSpaceCreation.created_at > now - WINDOW)
        .group_by(MeetSpaceCreation.host)).all())
    if sum(used.values()) >= budget.per_project:
        return None
    available = [row.email for row in rows
                 if used.get(row.email, 0) < budget.per_host
                 and (row.saturated_until is None or row.saturated_until <= now)]
    if not available:
        return None
    # Most room first; ties keep the configured order, which spreads creates evenly.
    host = min(available, key=lambda h: (used.get(h, 0), hosts.index(h)))
    session.add(MeetSpaceCreation(host=host, created_at=now))
    session.flush()
    return host


def mark_saturated(session: Session, host: str, *, now: dt.datetime) -> None:
    row = session.get(MeetHost, host)
    if row is not None:
        row.saturated_until = now + SATURATION


def prune_creations(session: Session, *, now: dt.datetime) -> int:
    """Forget creations older than an hour (only the last minute counts)."""
    result = session.execute(sa.delete(MeetSpaceCreation).where(MeetSpaceCreation.created_at < now - dt.timedelta(hours=1)))
    return result.rowcount or 0


@dataclasses.dataclass(frozen=True)
class Preparation:
    status: MeetingStatus
    meet_uri: str | None = None
    error: str | None = None
    in_progress: bool = False  # another process is creating the space right now


def prepare_meeting(sessions: sessionmaker[Session], gateway: MeetGateway, call_session_id: str, *,
                    settings: Settings, now: dt.datetime) -> Preparation:
    """Create the session's Meet space (freelancer added as a member), or queue it.

    Idempotent: a session whose meeting is ready is left alone, and so is one
    whose space another process is creating at this moment (its lease,
    ``meet_creating_until``, is taken in the same transaction that charges the
    budget), so racing schedulers or a scheduler and a web request never
    create two spaces for one session.

    Raises:
        MeetConfigurationError: Meet cannot work as configured (nothing is queued).
    """
    with unit_of_work(sessions) as session:
        call = session.execute(for_update(session, sa.select(CallSession).where(CallSession.id == call_session_id))
                               ).scalar_one()
        if call.meet_status is MeetingStatus.READY:
            return Preparation(MeetingStatus.READY, call.meet_uri)
        if call.meet_creating_until is not None and call.meet_creating_until > now:
            return Preparation(call.meet_status, in_progress=True)
        email = session.scalar(sa.select(Account.email).where(Account.id == call.account_id))
        host = reserve_host(session, gateway.hosts, Budget.from_settings(settings), now=now)
        if host is None:
            _queue(call, now)
            return Preparation(MeetingStatus.QUEUED)
        call.meet_creating_until = now + CREATION_LEASE
    try:
        space = gateway.create_space(host=host, access_type=settings.meet_access_type)  # type: ignore[arg-type]
        if email:
            gateway.add_member(space.name, email, host=host)
    except MeetRateLimited:
        record_meet_error("rate_limited")
        with unit_of_work(sessions) as session:
            mark_saturated(session, host, now=now)
            _queue(_release_lease(session, call_session_id), now)
        log.warning("Meet host %s is rate limited; call session %s queued", host, call_session_id)
        return Preparation(MeetingStatus.QUEUED)
    except MeetConfigurationError:
        with unit_of_work(sessions) as session:
            _release_lease(session, call_session_id)
        raise
    except MeetError as exc:
        record_meet_error("error")
        # Transient (the adapter already retried): keep it queued for the job to try again.
        with unit_of_work(sessions) as session:
            call = _release_lease(session, call_session_id)
            _queue(call, now)
            call.meet_error = str(exc)[:500]
        log.warning("creating the meeting of call session %s failed: %s; queued for retry", call_session_id, exc)
        return Preparation(MeetingStatus.QUEUED, error=str(exc))
    with unit_of_work(sessions) as session:
        call = _release_lease(session, call_session_id)
        call.meet_space, call.meet_uri, call.meet_code = space.name, space.meeting_uri, space.meeting_code
        call.meet_host = host
        call.meet_status = MeetingStatus.READY
        call.meet_ready_at = now
        call.meet_queued_at = None
        call.meet_error = None
        call.updated_at = now
    return Preparation(MeetingStatus.READY, space.meeting_uri)


def _release_lease(session: Session, call_session_id: str) -> CallSession:
    call = session.get_one(CallSession, call_session_id)
    call.meet_creating_until = None
    return call


def _queue(call: CallSession, now: dt.datetime) -> None:
    if call.meet_status is not MeetingStatus.QUEUED:
        call.meet_status = MeetingStatus.QUEUED
        call.meet_queued_at = now
        call.updated_at = now


# A session still without a meeting this long after it was opened lost its first attempt (the process
# stopped between the insert and the call to Meet): the queue job adopts it.
ORPHAN_AFTER = dt.timedelta(minutes=2)


def queued_sessions(session: Session, *, limit: int, now: dt.datetime | None = None) -> list[str]:
    """Ids of sessions waiting for a meeting, longest waiting first; with ``now``, orphans after them."""
    queued = list(session.scalars(
        sa.select(CallSession.id).where(CallSession.meet_status == MeetingStatus.QUEUED)
        .order_by(CallSession.meet_queued_at, CallSession.created_at, CallSession.id).limit(limit)))
    if now is None or len(queued) >= limit:
        return queued
    orphans = session.scalars(sa.select(CallSession.id).where(
        CallSession.meet_status == MeetingStatus.NONE,
        CallSession.status.in_((SessionStatus.WAITING, SessionStatus.SCHEDULED)),
        CallSession.created_at < now - ORPHAN_AFTER).order_by(CallSession.created_at).limit(limit - len(queued)))
    return queued + list(orphans)


def prepare_queued(sessions: sessionmaker[Session], gateway: MeetGateway, *, settings: Settings,
                   now: dt.datetime, limit: int = 100) -> int:
    """Create meetings for queued sessions while budget lasts; returns how many became ready."""
    with unit_of_work(sessions, write=False) as session:
        waiting = queued_sessions(session, limit=limit, now=now)
    ready = 0
    for call_session_id in waiting:
        result = prepare_meeting(sessions, gateway, call_session_id, settings=settings, now=now)
        if result.in_progress:
            continue  # another process is creating it
        if result.status is not MeetingStatus.READY:
            break  # budget spent (or Google unhappy): the rest keep their place in the queue
        ready += 1
    return ready


def queue_position(session: Session, call: CallSession) -> int | None:
    """1 for the next meeting to be created; None when the session is not queued."""
    if call.meet_status is not MeetingStatus.QUEUED or call.meet_queued_at is None:
        return None
    # The same order as queued_sessions(): queued time, then arrival, then id.
    ahead = session.scalar(sa.select(sa.func.count()).select_from(CallSession).where(
        CallSession.meet_status == MeetingStatus.QUEUED,
        sa.tuple_(CallSession.meet_queued_at, CallSession.created_at, CallSession.id)
        < sa.tuple_(call.meet_queued_at, call.created_at, call.id)))
    return (ahead or 0) + 1


def add_reviewer(gateway: MeetGateway, call: CallSession, reviewer_email: str) -> None:
    """Make the claiming reviewer a co-host of the session's space.

    Raises: MeetError (the claim should then be retried or released).
    """
    if call.meet_space is None or call.meet_host is None:
        raise MeetError(f"call session {call.id} has no meeting yet")
    gateway.add_member(call.meet_space, reviewer_email, host=call.meet_host, cohost=True)
