"""Applying one Meet event to attendance at once (docs/architecture.md, 'Meet events').

An event names a resource only: a conference record (started, ended) or a participant session
(joined, left). To apply it the service needs three facts, each read from Meet at most once and
then kept: which call the conference belongs to (``conferenceRecords.get`` → its space → the call;
kept as a ``call_conferences`` row), who the participant is (``participants.get``; kept as a
``call_participants`` row), and — only for a leave whose join was never seen — when the session
began (``participantSessions.get``). The reads happen before the transaction (Workflow: no
transaction is held across a call to Meet); the write unit then

1. inserts the event's receipt (its CloudEvent id; a duplicate finds it, or on PostgreSQL waits on
   the key and fails, and changes nothing),
2. fills in the stored conference or session (``calls/attendance_store.py``: only what is not known
   yet, so events in any order, and reads in between, agree),
3. re-applies the call's attendance from what is stored (``attendance.reevaluate``): the same
   consequences as a read — the call starts at the first join, a reviewer is recognised, a no-show
   is suggested — and the waiting room and reviewer's page see it on their next poll.

Events of a closed account's call, a simulated call, or a space that is no verification call are
received (the receipt is kept) and change nothing else.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import logging
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from integrations.google_meet import (
    MeetConfigurationError, MeetGateway, MeetNotFound, Participant, ParticipantSession,
)
from integrations.meet_events import (
    CONFERENCE_ENDED, CONFERENCE_STARTED, LIFECYCLE_EVENT_TYPES, MEET_EVENT_TYPES, PARTICIPANT_JOINED,
    PARTICIPANT_LEFT, BadPush, CloudEvent,
)
from verify_service.accounts.models import Account
from verify_service.calls import attendance, attendance_store
from verify_service.calls.models import CallConference, CallSession
from verify_service.db import unit_of_work, workflow
from verify_service.meet_events import subscriptions
from verify_service.meet_events.models import MeetEventReceipt, MeetSubscription
from verify_service.settings import Settings

log = logging.getLogger(__name__)


class Result(str, enum.Enum):
    APPLIED = "applied"        # attendance was updated
    DUPLICATE = "duplicate"    # this event id was applied before
    IGNORED = "ignored"        # received, nothing to change (not a verification call, closed account, other type)
    LIFECYCLE = "lifecycle"    # a subscription's lifecycle event, recorded on its row


@dataclasses.dataclass(frozen=True)
class Applied:
    result: Result
    call_session_id: str | None = None
    host: str | None = None    # LIFECYCLE: the host whose subscription needs keeping now


@dataclasses.dataclass
class _Known:
    """What the database already knows about the event's resource (read in one short unit)."""

    call_session_id: str | None = None
    host: str | None = None
    identity_known: bool = False
    start_known: bool = False


def _received(db: Session, event: CloudEvent, now: dt.datetime) -> bool:
    """Insert the event's receipt; False when it was already there (the caller then changes nothing)."""
    if db.get(MeetEventReceipt, event.id) is not None:
        return False
    db.add(MeetEventReceipt(id=event.id, type=event.type, received_at=now))
    db.flush()  # PostgreSQL: a concurrent delivery of the same id waits here, then fails on the key
    return True


def _participant_name(event: CloudEvent, resource: str) -> str | None:
    return attendance_store.participant_of(resource) if event.type in (PARTICIPANT_JOINED, PARTICIPANT_LEFT) \
        else None


def _known(db: Session, event: CloudEvent, resource: str) -> _Known:
    known = _Known()
    conference = db.get(CallConference, attendance_store.record_of(resource))
    if conference is not None:
        known.call_session_id = conference.call_session_id
        known.host = db.scalar(sa.select(CallSession.meet_host).where(CallSession.id == conference.call_session_id))
        participant = _participant_name(event, resource)
        known.identity_known = participant is not None and participant in attendance_store.known_participants(
            db, conference.call_session_id)
        known.start_known = attendance_store.session_start_known(db, resource)
    elif event.subscription is not None:
        known.host = db.scalar(sa.select(MeetSubscription.host).where(MeetSubscription.name == event.subscription))
    return known


def _find_call(sessions: sessionmaker[Session], gateway: MeetGateway, record: str,
               hosts: Sequence[str]) -> tuple[str | None, str | None, dt.datetime | None]:
    """(call id, host, conference start) of a conference the service has not seen: read it as each
    candidate host in turn until one may; (None, None, None) when no verification call holds it."""
    for host in hosts:
        try:
            conference = gateway.conference(record, host=host)
        except (MeetNotFound, MeetConfigurationError):
            continue  # another host's conference, or a host that cannot read now: try the next
        with unit_of_work(sessions, write=False) as db:
            call_id = db.scalar(sa.select(CallSession.id).where(CallSession.meet_space == conference.space))
        return call_id, host, conference.start
    return None, None, None


@workflow
def apply_event(sessions: sessionmaker[Session], gateway: MeetGateway, event: CloudEvent, *,
                settings: Settings, now: dt.datetime) -> Applied:
    """Apply one pushed event (see the module doc).

    Raises:
        BadPush: a Meet event that names no conference record or participant session.
        MeetError: Meet could not be read; nothing was written, and Pub/Sub will push it again.
    """
    if event.type in LIFECYCLE_EVENT_TYPES:
        with unit_of_work(sessions) as db:
            if not _received(db, event, now):
                return Applied(Result.DUPLICATE)
            return Applied(Result.LIFECYCLE, host=subscriptions.apply_lifecycle(db, event, now))
    resource = event.resource_name() if event.type in MEET_EVENT_TYPES else None
    if event.type in MEET_EVENT_TYPES and resource is None:
        raise BadPush(f"a {event.type} event must name a conference record or a participant session")
    with unit_of_work(sessions, write=False) as db:
        if db.get(MeetEventReceipt, event.id) is not None:
            return Applied(Result.DUPLICATE)
        known = _known(db, event, resource) if resource else _Known()
    call_id, host, conference_start = known.call_session_id, known.host, None
    if resource is not None and call_id is None:
        candidates = [host] if host else []
        candidates += [h for h in subscriptions.configured_hosts(settings) if h not in candidates]
        call_id, host, conference_start = _find_call(sessions, gateway, attendance_store.record_of(resource),
                                                     candidates)
    participant = _participant_name(event, resource) if resource else None
    identity: Participant | None = None
    span: ParticipantSession | None = None
    if call_id is not None and host is not None and participant is not None:
        if not known.identity_known:
            identity = gateway.participant(participant, host=host)
        if event.type == PARTICIPANT_LEFT and not known.start_known:
            span = _session_or_none(gateway, resource or "", host)
    with unit_of_work(sessions) as db:
        if not _received(db, event, now):
            return Applied(Result.DUPLICATE)
        if call_id is None or resource is None or not _applicable(db, call_id):
            return Applied(Result.IGNORED, call_id)
        _store(db, call_id, event, resource, conference_start=conference_start, span=span)
        attendance.reevaluate(db, call_id, now=now, event=True,
                              identities={identity.name: identity} if identity else None,
                              **attendance.timing(settings))
    return Applied(Result.APPLIED, call_id)


def _session_or_none(gateway: MeetGateway, name: str, host: str) -> ParticipantSession | None:
    try:
        return gateway.participant_session(name, host=host)
    except MeetNotFound:
        return None


def _applicable(db: Session, call_id: str) -> bool:
    """Whether events may still write to the call: not a simulation's, and its account not closed."""
    call = db.get_one(CallSession, call_id)
    closed = db.scalar(sa.select(Account.closed_at).where(Account.id == call.account_id))
    return closed is None and call.meet_host != attendance.SIMULATED_HOST


def _store(db: Session, call_id: str, event: CloudEvent, resource: str, *,
           conference_start: dt.datetime | None, span: ParticipantSession | None) -> None:
    record = attendance_store.record_of(resource)
    if event.type == CONFERENCE_ENDED:
        attendance_store.note_conference(db, call_id, record, started_at=conference_start or event.time,
                                         ended_at=event.time)
        return
    attendance_store.note_conference(db, call_id, record, started_at=conference_start or event.time)
    if event.type == CONFERENCE_STARTED:
        return
    if event.type == PARTICIPANT_JOINED:
        attendance_store.note_session(db, call_id, resource, started_at=event.time)
    else:  # left: the start from the session read when the join was never seen
        attendance_store.note_session(db, call_id, resource, started_at=span.start if span else None,
                                      ended_at=event.time)
