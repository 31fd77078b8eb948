"""Receiving Meet's events, and applying them to attendance at once, in batches under load
(docs/architecture.md, 'Meet events').

**Receiving** (:func:`receive`, in the push's own transaction): the event's receipt is inserted by
its CloudEvent id with the event itself (``INSERT … ON CONFLICT DO NOTHING``); a redelivery finds
the id taken and changes nothing. The push is acknowledged once that commits: the event is safe.

**Applying** (:func:`drain`, right after, by the same request; and by the ``drain_meet_events`` job
for anything left): the pending receipts, oldest first, a batch at a time, first leased to the drain
(``leased_by``, for :data:`LEASE`: no other drain reads Meet for them). An event names a
resource only (a conference record; a participant session), so the service needs at most three
facts from Meet, each read once and then kept: which call the conference belongs to
(``conferenceRecords.get`` → its space; kept as a ``call_conferences`` row), who a participant is
(``participants.get``; kept as a ``call_participants`` row), and, for a leave whose join was never
seen, when the session began (``participantSessions.get``). Those reads happen before the write
transaction (Workflow). The write transaction then claims the receipts still pending and leased to it (concurrent drains
lease disjoint batches: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL), locks the calls' accounts and
the calls in id order, fills in the stored conferences and sessions (``calls/attendance_store.py``:
only what is not known yet, so any order agrees), re-applies each touched call's attendance from
what is stored (``attendance.reevaluate_many``: the call starts at the first join, a reviewer is
recognised, …) and marks the receipts applied — the effect and the mark in one transaction, so each
event is applied exactly once. Under load each drain takes what the other pushes left pending: one
transaction applies many events.

Events of a closed account's call, a simulated call, or a space that is no verification call are
marked applied and change nothing else. An event whose Meet read failed stays pending for the job.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import logging
import threading
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from integrations.google_meet import MeetConfigurationError, MeetError, MeetGateway, MeetNotFound, Participant
from integrations.google_meet import ParticipantSession, parse_time
from integrations.meet_events import (
    CONFERENCE_ENDED, LIFECYCLE_EVENT_TYPES, MEET_EVENT_TYPES, PARTICIPANT_JOINED,
    PARTICIPANT_LEFT, BadPush, CloudEvent,
)
from verify_service.accounts.models import Account
from verify_service.calls import attendance, attendance_store
from verify_service.calls.models import CallConference, CallParticipant, CallParticipantSession, CallSession
from verify_service.db import for_update, unit_of_work, upsert_insert, workflow
from verify_service.meet_events import subscriptions
from verify_service.meet_events.models import MeetEventReceipt, MeetSubscription
from verify_service.settings import Settings

log = logging.getLogger(__name__)

BATCH = 1000
RETRY_AFTER = dt.timedelta(seconds=30)  # an event whose Meet read failed waits this long before another try
LEASE = dt.timedelta(minutes=1)         # a drain's hold on its batch (a drain that died lets go after it)


class Result(str, enum.Enum):
    APPLIED = "applied"        # attendance was updated
    DUPLICATE = "duplicate"    # this event id was received before
    IGNORED = "ignored"        # applied with nothing to change (not a verification call, closed account, other type)
    LIFECYCLE = "lifecycle"    # a subscription's lifecycle event, recorded on its row
    PENDING = "pending"        # received, not applied yet (Meet could not be read; the job tries again)


@dataclasses.dataclass(frozen=True)
class Applied:
    result: Result
    call_session_id: str | None = None
    host: str | None = None    # LIFECYCLE: the host whose subscription needs keeping now


@dataclasses.dataclass(frozen=True)
class Drained:
    results: dict[str, Applied]         # by event id
    hosts: tuple[str, ...] = ()         # hosts whose subscription a lifecycle event asks to keep now


def _to_json(event: CloudEvent) -> dict[str, Any]:
    return {"id": event.id, "type": event.type, "source": event.source, "subject": event.subject,
            "time": event.time.isoformat(), "data": event.data}


def _from_json(stored: dict[str, Any]) -> CloudEvent:
    return CloudEvent(id=stored["id"], type=stored["type"], source=stored["source"], subject=stored["subject"],
                      time=parse_time(stored["time"]), data=stored["data"])


def check(event: CloudEvent) -> None:
    """Raises: BadPush for a Meet event that names no conference record or participant session."""
    if event.type in MEET_EVENT_TYPES and event.resource_name() is None:
        raise BadPush(f"a {event.type} event must name a conference record or a participant session")


def receive(db: Session, event: CloudEvent, *, now: dt.datetime) -> bool:
    """Insert the event's receipt, pending; False when its id was received before (nothing changes)."""
    check(event)
    inserted = db.execute(upsert_insert(db, MeetEventReceipt).values(
        id=event.id, type=event.type, received_at=now, event=_to_json(event))
        .on_conflict_do_nothing(index_elements=["id"]).returning(MeetEventReceipt.id))
    return inserted.scalar() is not None


# ---------------------------------------------------------------- what the events need from Meet

@dataclasses.dataclass
class _Facts:
    """What a batch needs beyond its events: the calls of its conferences and the identities of its people."""

    calls: dict[str, tuple[str | None, str | None]] = dataclasses.field(default_factory=dict)  # record → (call, host)
    starts: dict[str, dt.datetime] = dataclasses.field(default_factory=dict)          # record → start (read)
    people: dict[str, Participant] = dataclasses.field(default_factory=dict)          # read now
    spans: dict[str, ParticipantSession] = dataclasses.field(default_factory=dict)    # leaves with unknown joins
    failed: set[str] = dataclasses.field(default_factory=set)                         # event ids to retry later


def _participant_name(event: CloudEvent) -> str | None:
    resource = event.resource_name()
    return attendance_store.participant_of(resource) if resource and event.type in (
        PARTICIPANT_JOINED, PARTICIPANT_LEFT) else None


def _known(db: Session, events: Sequence[CloudEvent], facts: _Facts) -> tuple[set[str], set[str], dict[str, str]]:
    """Fill ``facts.calls`` from the stored conferences; (participants known, sessions with a start, the hosts of
    the subscriptions that delivered) — four queries for the batch."""
    records = sorted({attendance_store.record_of(e.resource_name() or "") for e in events if e.resource_name()})
    for record, call_id, host in db.execute(
            sa.select(CallConference.record, CallConference.call_session_id, CallSession.meet_host)
            .join(CallSession, CallSession.id == CallConference.call_session_id)
            .where(CallConference.record.in_(records))):
        facts.calls[record] = (call_id, host)
    people = sorted({name for e in events if (name := _participant_name(e))})
    known = set(db.scalars(sa.select(CallParticipant.participant)
                           .where(CallParticipant.participant.in_(people)))) if people else set()
    lefts = sorted({e.resource_name() or "" for e in events if e.type == PARTICIPANT_LEFT})
    started = set(db.scalars(sa.select(CallParticipantSession.name).where(
        CallParticipantSession.name.in_(lefts),
        CallParticipantSession.started_at.is_not(None)))) if lefts else set()
    sources = sorted({e.subscription for e in events if e.subscription})
    hosts = {name: host for name, host in db.execute(
        sa.select(MeetSubscription.name, MeetSubscription.host).where(MeetSubscription.name.in_(sources)))}
    return known, started, hosts


def _read_conference(gateway: MeetGateway, record: str, hosts: Sequence[str]) -> tuple[str | None, str | None,
                                                                                         dt.datetime | None]:
    """(space, host, start) of a conference the service has not seen, read as each candidate host in turn."""
    for host in hosts:
        try:
            conference = gateway.conference(record, host=host)
        except (MeetNotFound, MeetConfigurationError):
            continue  # another host's conference, or a host that cannot read now: try the next
        return conference.space, host, conference.start
    return None, None, None


@workflow
def _learn(sessions: sessionmaker[Session], gateway: MeetGateway, events: Sequence[CloudEvent], *,
           settings: Settings) -> _Facts:
    """Everything the batch needs to know, read from the database and then, outside any transaction, from Meet."""
    facts = _Facts()
    with unit_of_work(sessions, write=False) as db:
        known, started, delivered_by = _known(db, events, facts)
    started |= {e.resource_name() or "" for e in events if e.type == PARTICIPANT_JOINED}  # joins in this batch
    # The conferences not seen yet: read each once, then find their calls by space in one query.
    spaces: dict[str, tuple[str, str, dt.datetime]] = {}
    for event in events:
        record = attendance_store.record_of(event.resource_name() or "")
        if not event.resource_name() or record in facts.calls or record in spaces:
            continue
        first = delivered_by.get(event.subscription or "")
        candidates = [first] if first else []
        candidates += [h for h in subscriptions.configured_hosts(settings) if h not in candidates]
        try:
            space, host, start = _read_conference(gateway, record, candidates)
        except MeetError as exc:
            log.warning("Meet event %s (%s) waits for Meet: %s", event.id, event.type, exc)
            facts.failed.add(event.id)
            continue
        if space is None or host is None or start is None:
            facts.calls[record] = (None, None)
        else:
            spaces[record] = (space, host, start)
    if spaces:
        with unit_of_work(sessions, write=False) as db:
            by_space = {space: call_id for call_id, space in db.execute(
                sa.select(CallSession.id, CallSession.meet_space)
                .where(CallSession.meet_space.in_(sorted({s for s, _h, _t in spaces.values()}))))}
        for record, (space, host, start) in spaces.items():
            facts.calls[record], facts.starts[record] = (by_space.get(space), host), start
    for event in events:
        resource = event.resource_name()
        participant = _participant_name(event)
        if resource is None or participant is None or event.id in facts.failed:
            continue
        call_id, host = facts.calls.get(attendance_store.record_of(resource), (None, None))
        if call_id is None or host is None:
            continue
        try:
            if participant not in known and participant not in facts.people:
                facts.people[participant] = gateway.participant(participant, host=host)
            if event.type == PARTICIPANT_LEFT and resource not in started and resource not in facts.spans:
                try:
                    facts.spans[resource] = gateway.participant_session(resource, host=host)
                except MeetNotFound:
                    pass
        except MeetError as exc:
            log.warning("Meet event %s (%s) waits for Meet: %s", event.id, event.type, exc)
            facts.failed.add(event.id)
    return facts


# ---------------------------------------------------------------- applying a batch

def _claim(db: Session, ids: Sequence[str], lease: str) -> list[MeetEventReceipt]:
    """The receipts among ``ids`` still pending and still leased to this drain, locked (a lease that ran out
    may have been taken by another drain: those are its to apply)."""
    stmt = for_update(db, sa.select(MeetEventReceipt).where(
        MeetEventReceipt.id.in_(list(ids)), MeetEventReceipt.applied_at.is_(None),
        MeetEventReceipt.leased_by == lease))
    return list(db.scalars(stmt.order_by(MeetEventReceipt.received_at, MeetEventReceipt.id)))


def _note(db: Session, call_id: str, event: CloudEvent, facts: _Facts, batch: attendance_store.Batch) -> None:
    resource = event.resource_name() or ""
    record = attendance_store.record_of(resource)
    start = facts.starts.get(record) or event.time
    if event.type == CONFERENCE_ENDED:
        attendance_store.note_conference(db, call_id, record, started_at=start, ended_at=event.time, batch=batch)
        return
    attendance_store.note_conference(db, call_id, record, started_at=start, batch=batch)
    if event.type == PARTICIPANT_JOINED:
        attendance_store.note_session(db, call_id, resource, started_at=event.time, batch=batch)
    elif event.type == PARTICIPANT_LEFT:  # the start from the session read when the join was never seen
        span = facts.spans.get(resource)
        attendance_store.note_session(db, call_id, resource, started_at=span.start if span else None,
                                      ended_at=event.time, batch=batch)


def _apply(db: Session, claimed: list[MeetEventReceipt], events: dict[str, CloudEvent], facts: _Facts, *,
           settings: Settings, now: dt.datetime) -> Drained:
    results: dict[str, Applied] = {}
    hosts: list[str] = []
    meet: list[tuple[MeetEventReceipt, CloudEvent, str]] = []
    for receipt in claimed:
        event = events[receipt.id]
        if event.type in LIFECYCLE_EVENT_TYPES:
            host = subscriptions.apply_lifecycle(db, event, now)
            results[event.id] = Applied(Result.LIFECYCLE, host=host)
            hosts += [host] if host else []
            continue
        call_id = facts.calls.get(attendance_store.record_of(event.resource_name() or ""), (None, None))[0] \
            if event.type in MEET_EVENT_TYPES else None
        if call_id is None:
            results[event.id] = Applied(Result.IGNORED)
        else:
            meet.append((receipt, event, call_id))
    call_ids = sorted({call_id for _receipt, _event, call_id in meet})
    if call_ids:
        # Lock order: the accounts, then the calls (reevaluate_many takes them again, already held).
        account_ids = sorted(set(db.scalars(sa.select(CallSession.account_id).where(CallSession.id.in_(call_ids)))))
        db.execute(for_update(db, sa.select(Account.id).where(Account.id.in_(account_ids)).order_by(Account.id)))
        rows = db.execute(sa.select(CallSession.id, CallSession.meet_host, Account.closed_at)
                          .join(Account, Account.id == CallSession.account_id)
                          .where(CallSession.id.in_(call_ids))).all()
        open_calls = {row.id for row in rows if row.closed_at is None and row.meet_host != attendance.SIMULATED_HOST}
        batch = attendance_store.preload(
            db, [attendance_store.record_of(e.resource_name() or "") for _r, e, _c in meet],
            [e.resource_name() or "" for _r, e, _c in meet if _participant_name(e)])
        with db.no_autoflush:  # the batch's rows go out together
            for _receipt, event, call_id in meet:
                if call_id in open_calls:
                    _note(db, call_id, event, facts, batch)
                    results[event.id] = Applied(Result.APPLIED, call_id)
                else:
                    results[event.id] = Applied(Result.IGNORED, call_id)
        touched = sorted({call_id for _r, _e, call_id in meet if call_id in open_calls})
        attendance.reevaluate_many(db, touched, now=now, event=True, identities=facts.people,
                                   **attendance.timing(settings))
    for receipt in claimed:
        receipt.applied_at, receipt.event, receipt.leased_by, receipt.retry_at = now, None, None, None
    return Drained(results, tuple(dict.fromkeys(hosts)))


@workflow
def drain(sessions: sessionmaker[Session], gateway: MeetGateway, *, settings: Settings, now: dt.datetime,
          ids: Iterable[str] | None = None, limit: int = BATCH) -> Drained:
    """Apply pending events: those of ``ids``, or the oldest ``limit`` pending (see the module doc).

    Never raises MeetError: an event whose read failed stays pending (the ``drain_meet_events`` job
    tries again).
    """
    lease = uuid.uuid4().hex
    with unit_of_work(sessions) as db:  # take a batch: leased to this drain, so no other reads Meet for it
        query = sa.select(MeetEventReceipt).where(_due(now))
        if ids is not None:
            query = query.where(MeetEventReceipt.id.in_(list(ids)))
        query = query.order_by(MeetEventReceipt.received_at, MeetEventReceipt.id).limit(limit)
        if db.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        events = {}
        for receipt in db.scalars(query):
            receipt.leased_by, receipt.retry_at = lease, now + LEASE
            if receipt.event is not None:
                events[receipt.id] = _from_json(receipt.event)
    if not events:
        return Drained({})
    facts = _learn(sessions, gateway, list(events.values()), settings=settings)
    ready = [event_id for event_id in events if event_id not in facts.failed]
    with unit_of_work(sessions) as db:
        drained = _apply(db, _claim(db, ready, lease), events, facts, settings=settings, now=now)
        if facts.failed:  # Meet could not be read for them: not again before RETRY_AFTER
            db.execute(sa.update(MeetEventReceipt).where(
                MeetEventReceipt.id.in_(sorted(facts.failed)), MeetEventReceipt.leased_by == lease,
                MeetEventReceipt.applied_at.is_(None)).values(retry_at=now + RETRY_AFTER, leased_by=None))
    for event_id in facts.failed:
        drained.results.setdefault(event_id, Applied(Result.PENDING))
    return drained


@workflow
def apply_event(sessions: sessionmaker[Session], gateway: MeetGateway, event: CloudEvent, *,
                settings: Settings, now: dt.datetime) -> Applied:
    """Receive one event and apply it at once (what a push does, without HTTP).

    Raises:
        BadPush: a Meet event that names no conference record or participant session.
    """
    with unit_of_work(sessions) as db:
        if not receive(db, event, now=now):
            return Applied(Result.DUPLICATE)
    drained = drain(sessions, gateway, settings=settings, now=now, ids=[event.id])
    return drained.results.get(event.id, Applied(Result.PENDING))


# One drain at a time in a process: a push that finds another drain running leaves its event to it (the
# running drain looks again before it stops); other processes' drains take disjoint batches (SKIP LOCKED).
_DRAINING = threading.Lock()
# A push's drain stops after this many batches (it answers its own push), leaving the rest to the next one.
ROUNDS = 4


def _due(now: dt.datetime) -> sa.ColumnElement[bool]:
    """Pending, neither leased to a drain nor waiting to retry a Meet read."""
    return sa.and_(MeetEventReceipt.applied_at.is_(None),
                   sa.or_(MeetEventReceipt.retry_at.is_(None), MeetEventReceipt.retry_at <= now))


@workflow
def has_pending(sessions: sessionmaker[Session], now: dt.datetime) -> bool:
    with unit_of_work(sessions, write=False) as db:
        return db.scalar(sa.select(MeetEventReceipt.id).where(_due(now)).limit(1)) is not None


@workflow
def push(sessions: sessionmaker[Session], gateway: MeetGateway, event: CloudEvent, *, settings: Settings,
         now: dt.datetime) -> Drained:
    """What ``POST /webhooks/google/meet-events`` does with a verified event: receive it, then apply what is
    pending — this event among those pushed meanwhile, so that under load one transaction applies many.

    Raises:
        BadPush: a Meet event that names no conference record or participant session.
    """
    with unit_of_work(sessions) as db:
        if not receive(db, event, now=now):
            return Drained({event.id: Applied(Result.DUPLICATE)})
    results: dict[str, Applied] = {}
    hosts: tuple[str, ...] = ()
    while _DRAINING.acquire(blocking=False):
        progressed = False
        try:
            for _round in range(ROUNDS):
                drained = drain(sessions, gateway, settings=settings, now=now)
                results.update(drained.results)
                hosts += drained.hosts
                progressed = progressed or any(a.result is not Result.PENDING for a in drained.results.values())
                if len(drained.results) < BATCH:
                    break
        finally:
            _DRAINING.release()
        # A push that found this drain running left its event to it: look once more, now that it is free.
        if not progressed or not has_pending(sessions, now):
            break
    return Drained(results or {event.id: Applied(Result.PENDING)}, tuple(dict.fromkeys(hosts)))
