"""Meet meetings for call sessions: the creation budget, creating, queueing, members.

Google lets each host user create about 10 spaces a minute (100 a project).
Creations are charged to the host with the most room left in the last 60
seconds; a host Google rate-limits anyway is rested for a minute and the
next host is tried at once. When every host is spent the session is
*queued* (the freelancer sees it) and a job creates its meeting as soon as
budget frees up. Only open sessions (scheduled, waiting, in progress) get a
meeting or a place in the queue: the budget is never spent on a call that
was canceled or expired.

Workflow (takes a sessionmaker: it calls Meet between its units): no
transaction stays open during a call to Google. The budget is reserved and
committed first, the space is created, then the result is stored, each
database step a short unit of its own (``unit_of_work``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable, Collection, Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from integrations.google_meet import MeetConfigurationError, MeetError, MeetGateway, MeetingSpace, MeetRateLimited
from verify_service.accounts.models import Account
from verify_service.calls.models import CallSession, MeetHost, MeetingStatus, MeetSpaceCreation
from verify_service.calls.state import OPEN
from verify_service.db import for_update, unit_of_work, upsert_insert, workflow
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


def reserve_host(db: Session, hosts: Sequence[str], budget: Budget, *, now: dt.datetime,
                 exclude: Collection[str] = ()) -> str | None:
    """Charge one space creation to the host with the most room; ``None`` when all are spent.

    Hosts in ``exclude`` are never chosen (a rate-limited or failing host
    within one attempt). The host rows are locked (in a fixed order) for the
    check-and-charge, so concurrent reservations never overspend a host.
    """
    db.execute(upsert_insert(db, MeetHost).values([{"email": h} for h in hosts]).on_conflict_do_nothing(index_elements=["email"]))
    rows = db.scalars(for_update(db, sa.select(MeetHost).where(MeetHost.email.in_(hosts))
                                      .order_by(MeetHost.email))).all()
    used = dict(db.execute(
        sa.select(MeetSpaceCreation.host, sa.func.count()).where(MeetSpaceCreation.created_at > now - WINDOW)
        .group_by(MeetSpaceCreation.host)).all())
    if sum(used.values()) >= budget.per_project:
        return None
    available = [row.email for row in rows
                 if row.email not in exclude and used.get(row.email, 0) < budget.per_host
                 and (row.saturated_until is None or row.saturated_until <= now)]
    if not available:
        return None
    # Most room first; ties keep the configured order, which spreads creates evenly.
    host = min(available, key=lambda h: (used.get(h, 0), hosts.index(h)))
    db.add(MeetSpaceCreation(host=host, created_at=now))
    db.flush()
    return host


def mark_saturated(db: Session, host: str, *, now: dt.datetime) -> None:
    row = db.get(MeetHost, host)
    if row is not None:
        row.saturated_until = now + SATURATION


def prune_creations(db: Session, *, now: dt.datetime) -> int:
    """Forget creations older than an hour (only the last minute counts)."""
    result = db.execute(sa.delete(MeetSpaceCreation).where(MeetSpaceCreation.created_at < now - dt.timedelta(hours=1)))
    return result.rowcount or 0


@dataclasses.dataclass(frozen=True)
class Preparation:
    status: MeetingStatus
    meet_uri: str | None = None
    error: str | None = None
    in_progress: bool = False  # another process is creating the space right now
    ended: bool = False  # the session is no longer open (canceled, expired, decided): nothing was created
    host: str | None = None  # the host the meeting is on, or the one whose creation failed (``error``)


class HostMisconfigured(MeetConfigurationError):
    """A Meet configuration error met acting as one host user (e.g. suspended, or its delegation revoked).

    Still a :class:`MeetConfigurationError`, so callers that do not care which host need not change;
    ``host`` lets readiness name the host user to fix.
    """

    def __init__(self, host: str, error: MeetConfigurationError) -> None:
        super().__init__(str(error))
        self.host = host


@workflow
def prepare_meeting(sessions: sessionmaker[Session], gateway: MeetGateway, call_session_id: str, *,
                    settings: Settings, now: dt.datetime, avoid: Collection[str] = ()) -> Preparation:
    """Create the session's Meet space (freelancer added as a member), or queue it.

    Only an open session (scheduled, waiting, in progress) gets a meeting: any
    other is left alone, nothing charged, and leaves the queue if it was in it.
    A session canceled while its space is being created still gets the space
    stored (nobody is sent to it).

    Idempotent: a session whose meeting is ready is left alone, and so is one
    whose space another process is creating at this moment (its lease,
    ``meet_creating_until``, is taken in the same transaction that charges the
    budget), so racing schedulers or a scheduler and a web request never
    create two spaces for one session.

    A host that answers "rate limited" is rested for :data:`SATURATION` and
    the next host with budget is tried at once, with a reservation of its own;
    the session is queued only when no host is left. ``avoid`` names hosts not
    to use (the queue job's hosts that failed in this run).

    Raises:
        HostMisconfigured: Meet cannot work as configured for the chosen host (nothing is queued).
    """
    budget = Budget.from_settings(settings)
    rested = set(avoid)
    while True:
        reserved = _reserve(sessions, gateway.hosts, call_session_id, budget, avoid=rested, now=now)
        if isinstance(reserved, Preparation):
            return reserved
        host, email = reserved
        try:
            space = gateway.create_space(host=host, access_type=settings.meet_access_type)  # type: ignore[arg-type]
            if email:
                gateway.add_member(space.name, email, host=host)
        except MeetRateLimited:
            record_meet_error("rate_limited")
            with unit_of_work(sessions) as db:
                _release_lease(db, call_session_id)
                mark_saturated(db, host, now=now)
            # Google's limit is per host user and per minute: another host may well create it now.
            rested.add(host)
            log.warning("Meet host %s is rate limited; call session %s tries the next host", host, call_session_id)
            continue
        except MeetConfigurationError as exc:
            with unit_of_work(sessions) as db:
                _release_lease(db, call_session_id)
            raise HostMisconfigured(host, exc) from exc
        except MeetError as exc:
            record_meet_error("error")
            # Transient (the adapter already retried): keep it queued for the job to try again.
            with unit_of_work(sessions) as db:
                call = _release_lease(db, call_session_id)
                _queue(call, now)
                call.meet_error = str(exc)[:500]
                status = call.meet_status
            log.warning("creating the meeting of call session %s as %s failed: %s; queued for retry",
                        call_session_id, host, exc)
            return Preparation(status, error=str(exc), host=host)
        with unit_of_work(sessions) as db:
            # Stored even if the session was canceled meanwhile: the space exists, and its budget is spent.
            store_meeting(_release_lease(db, call_session_id), space, host, now=now)
        return Preparation(MeetingStatus.READY, space.meeting_uri, host=host)


def store_meeting(call: CallSession, space: MeetingSpace, host: str, *, now: dt.datetime) -> None:
    """The session's meeting is ready: ``space``, created as ``host``."""
    call.meet_space, call.meet_uri, call.meet_code = space.name, space.meeting_uri, space.meeting_code
    call.meet_host = host
    call.meet_status = MeetingStatus.READY
    call.meet_ready_at = now
    call.meet_queued_at = None
    call.meet_error = None
    call.updated_at = now


@workflow
def _reserve(sessions: sessionmaker[Session], hosts: Sequence[str], call_session_id: str, budget: Budget, *,
             avoid: Collection[str], now: dt.datetime) -> tuple[str, str | None] | Preparation:
    """Charge a host and take the creation lease: (host, the freelancer's email); or why nothing is to be made."""
    with unit_of_work(sessions) as db:
        call = db.execute(for_update(db, sa.select(CallSession).where(CallSession.id == call_session_id))
                               ).scalar_one()
        if call.meet_status is MeetingStatus.READY:
            return Preparation(MeetingStatus.READY, call.meet_uri, host=call.meet_host)
        if call.status not in OPEN:
            _leave_queue(call, now)
            return Preparation(call.meet_status, ended=True)
        if call.meet_creating_until is not None and call.meet_creating_until > now:
            return Preparation(call.meet_status, in_progress=True)
        host = reserve_host(db, hosts, budget, now=now, exclude=avoid)
        if host is None:
            _queue(call, now)
            if avoid:
                log.info("no Meet host left for call session %s (%s rested or failing); queued",
                         call_session_id, ", ".join(sorted(avoid)))
            return Preparation(MeetingStatus.QUEUED)
        call.meet_creating_until = now + CREATION_LEASE
        return host, db.scalar(sa.select(Account.email).where(Account.id == call.account_id))


def _release_lease(db: Session, call_session_id: str) -> CallSession:
    call = db.get_one(CallSession, call_session_id)
    call.meet_creating_until = None
    return call


def _queue(call: CallSession, now: dt.datetime) -> None:
    """Queue an open session for the job; one no longer open leaves the queue instead."""
    if call.status not in OPEN:
        _leave_queue(call, now)
        return
    if call.meet_status is not MeetingStatus.QUEUED:
        call.meet_status = MeetingStatus.QUEUED
        call.meet_queued_at = now
        call.updated_at = now


def _leave_queue(call: CallSession, now: dt.datetime) -> None:
    # Back to "no meeting asked for": the queue holds only sessions that will still need one.
    if call.meet_status is MeetingStatus.QUEUED:
        call.meet_status = MeetingStatus.NONE
        call.meet_queued_at = None
        call.updated_at = now


# Queued sessions that are no longer open (canceled or expired while they waited): they leave the queue.
_ENDED_IN_QUEUE = sa.and_(CallSession.meet_status == MeetingStatus.QUEUED, CallSession.status.not_in(OPEN))


def leave_queue_when_ended(db: Session, *, now: dt.datetime) -> int:
    """Take sessions that are no longer open out of the meeting queue; returns how many left it."""
    result = db.execute(sa.update(CallSession).where(_ENDED_IN_QUEUE).values(
        meet_status=MeetingStatus.NONE, meet_queued_at=None, updated_at=now).execution_options(
        synchronize_session=False))
    return result.rowcount or 0


# A session still without a meeting this long after it was opened lost its first attempt (the process
# stopped between the insert and the call to Meet): the queue job adopts it.
ORPHAN_AFTER = dt.timedelta(minutes=2)


def queued_sessions(db: Session, *, limit: int, now: dt.datetime | None = None) -> list[str]:
    """Ids of open sessions waiting for a meeting, longest waiting first; with ``now``, orphans after them."""
    queued = list(db.scalars(
        sa.select(CallSession.id).where(CallSession.meet_status == MeetingStatus.QUEUED,
                                        CallSession.status.in_(OPEN))
        .order_by(CallSession.meet_queued_at, CallSession.created_at, CallSession.id).limit(limit)))
    if now is None or len(queued) >= limit:
        return queued
    orphans = db.scalars(sa.select(CallSession.id).where(
        CallSession.meet_status == MeetingStatus.NONE,
        CallSession.status.in_(OPEN),
        CallSession.created_at < now - ORPHAN_AFTER).order_by(CallSession.created_at).limit(limit - len(queued)))
    return queued + list(orphans)


@workflow
def prepare_queued(sessions: sessionmaker[Session], gateway: MeetGateway, *, settings: Settings,
                   now: dt.datetime, limit: int = 100,
                   on_host: Callable[[str, str | None], None] | None = None) -> int:
    """Create meetings for queued sessions, oldest first, while budget lasts; returns how many became ready.

    Sessions no longer open leave the queue and are skipped. A host whose
    creation fails in this run (a configuration error, or Google still
    failing after the adapter's retries) is not used again in this run, and
    the session is tried on the next host; the run stops only when no host
    has budget left. ``on_host(host, problem)`` hears how each host did:
    ``None`` after a space was created as it, the error after a
    configuration error.
    """
    with unit_of_work(sessions, write=False) as db:
        stale = db.scalar(sa.select(sa.exists().where(_ENDED_IN_QUEUE)))
        waiting = queued_sessions(db, limit=limit, now=now)
    if stale:  # a write transaction only when there is something to write
        with unit_of_work(sessions) as db:
            leave_queue_when_ended(db, now=now)
    failed: set[str] = set()
    ready = 0
    for call_session_id in waiting:
        result = _prepare_one(sessions, gateway, call_session_id, settings=settings, now=now, failed=failed,
                              on_host=on_host)
        if result.in_progress or result.ended:
            continue  # another process is creating it, or it was canceled or expired meanwhile
        if result.status is not MeetingStatus.READY:
            break  # no host has budget: the rest keep their place in the queue
        ready += 1
    return ready


@workflow
def _prepare_one(sessions: sessionmaker[Session], gateway: MeetGateway, call_session_id: str, *,
                 settings: Settings, now: dt.datetime, failed: set[str],
                 on_host: Callable[[str, str | None], None] | None) -> Preparation:
    """prepare_meeting, trying the next host after one that fails (adding it to ``failed``)."""
    while True:
        try:
            result = prepare_meeting(sessions, gateway, call_session_id, settings=settings, now=now, avoid=failed)
        except HostMisconfigured as exc:
            log.error("Meet is misconfigured for host %s: %s", exc.host, exc)
            failed.add(exc.host)
            if on_host is not None:
                on_host(exc.host, str(exc))
            continue
        if result.error is not None and result.host is not None:
            failed.add(result.host)
            continue
        if result.status is MeetingStatus.READY and result.host is not None and on_host is not None:
            on_host(result.host, None)
        return result


def hosts_of(db: Session, call_session_ids: Collection[str]) -> dict[str, str | None]:
    """The host user holding each session's meeting (``None``: no meeting yet), by session id."""
    if not call_session_ids:
        return {}
    rows = db.execute(sa.select(CallSession.id, CallSession.meet_host)
                           .where(CallSession.id.in_(list(call_session_ids))))
    return {call_id: host for call_id, host in rows}


def add_reviewer(gateway: MeetGateway, call: CallSession, reviewer_email: str) -> None:
    """Make the claiming reviewer a co-host of the session's space.

    Raises: MeetError (the claim should then be retried or released).
    """
    if call.meet_space is None or call.meet_host is None:
        raise MeetError(f"call session {call.id} has no meeting yet")
    gateway.add_member(call.meet_space, reviewer_email, host=call.meet_host, cohost=True)
