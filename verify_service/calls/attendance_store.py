"""The service's copy of a call's conferences and participant sessions, whoever reported them.

Two sources write here: a full read of the space's conference records (the attendance job,
``attendance.sync_attendance``) and Meet's events, one join, leave, start or end at a time
(``verify_service/meet_events/``). Attendance is always computed from what is stored, so the
two agree whatever order they come in:

* a read is Meet's word on what it lists: its times replace ours, except that a leave an
  event already told of is kept while the read still shows the session open (Meet's lists
  can lag its events);
* an event only fills in: a join sets a session's start when none is known, a leave its end,
  a conference's end closes the sessions still open in it. A duplicated or late event finds
  the time already set and changes nothing.

Identities (who a participant is) come from the read's participants or, for events, from
``call_participants`` rows and the one ``participants.get`` an unknown participant costs.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping

import sqlalchemy as sa
from sqlalchemy.orm import Session

from integrations.google_meet import ConferenceAttendance, Participant, ParticipantSession
from verify_service.calls.models import CallConference, CallParticipant, CallParticipantSession


def record_of(resource_name: str) -> str:
    """``conferenceRecords/{c}`` of any resource name below a conference record."""
    return "/".join(resource_name.split("/")[:2])


def participant_of(session_name: str) -> str:
    """``conferenceRecords/{c}/participants/{p}`` of a participant session's name."""
    return "/".join(session_name.split("/")[:4])


def _session_name(participant: str, session: ParticipantSession) -> str:
    # A source that names no session (a test double) is keyed by its start, which a read never moves.
    return session.name or f"{participant}/participantSessions/@{session.start.isoformat()}"


def merge_read(db: Session, call_session_id: str, conferences: Iterable[ConferenceAttendance]) -> None:
    """Store what a full read of the space said (Meet's times win, see the module's rules)."""
    conferences = list(conferences)
    stored = {row.record: row for row in db.scalars(
        sa.select(CallConference).where(CallConference.call_session_id == call_session_id))}
    sessions = {row.name: row for row in db.scalars(
        sa.select(CallParticipantSession).where(CallParticipantSession.call_session_id == call_session_id))}
    for conference in conferences:
        row = stored.get(conference.record) or db.get(CallConference, conference.record)
        if row is None:
            row = CallConference(record=conference.record, call_session_id=call_session_id,
                                 started_at=conference.start)
            db.add(row)
        row.started_at = conference.start
        row.ended_at = conference.end or row.ended_at
        for participant in conference.participants:
            for span in participant.sessions:
                name = _session_name(participant.name, span)
                session = sessions.get(name)
                if session is None:
                    session = CallParticipantSession(name=name, call_session_id=call_session_id,
                                                     record=conference.record, participant=participant.name)
                    db.add(session)
                    sessions[name] = session
                session.started_at = span.start
                session.ended_at = span.end or session.ended_at


@dataclasses.dataclass
class Batch:
    """The stored rows a batch of events will fill in, read at once (:func:`preload`): rows it adds join them,
    so each event costs no query of its own, and the inserts go out together at the flush."""

    conferences: dict[str, CallConference] = dataclasses.field(default_factory=dict)
    sessions: dict[str, CallParticipantSession] = dataclasses.field(default_factory=dict)


def preload(db: Session, records: Iterable[str], session_names: Iterable[str]) -> Batch:
    """The conferences and sessions among ``records`` and ``session_names`` that are stored (two queries)."""
    records, session_names = sorted(set(records)), sorted(set(session_names))
    batch = Batch()
    if records:
        batch.conferences = {row.record: row for row in db.scalars(
            sa.select(CallConference).where(CallConference.record.in_(records)))}
    if session_names:
        batch.sessions = {row.name: row for row in db.scalars(
            sa.select(CallParticipantSession).where(CallParticipantSession.name.in_(session_names)))}
    return batch


def note_conference(db: Session, call_session_id: str, record: str, *, started_at: dt.datetime,
                    batch: Batch, ended_at: dt.datetime | None = None) -> CallConference:
    """A conference the events speak of (started, or ended: then its open sessions end with it)."""
    row = batch.conferences.get(record)
    if row is None:
        row = batch.conferences[record] = CallConference(record=record, call_session_id=call_session_id,
                                                         started_at=started_at)
        db.add(row)
    if ended_at is not None and row.ended_at is None:
        row.ended_at = ended_at
        for session in db.scalars(sa.select(CallParticipantSession).where(
                CallParticipantSession.call_session_id == call_session_id,
                CallParticipantSession.record == record, CallParticipantSession.ended_at.is_(None))):
            session.ended_at = max(ended_at, session.started_at or ended_at)
    return row


def note_session(db: Session, call_session_id: str, name: str, *, started_at: dt.datetime | None = None,
                 ended_at: dt.datetime | None = None, batch: Batch) -> CallParticipantSession:
    """A join (``started_at``) or a leave (``ended_at``) of one participant session; fills in only."""
    row = batch.sessions.get(name)
    if row is None:
        row = batch.sessions[name] = CallParticipantSession(
            name=name, call_session_id=call_session_id, record=record_of(name), participant=participant_of(name))
        db.add(row)
    if started_at is not None and row.started_at is None:
        row.started_at = started_at
    if ended_at is not None and row.ended_at is None:
        row.ended_at = ended_at
    return row


@dataclasses.dataclass
class Stored:
    """What :func:`stored_attendance_many` read, by call: the conferences, and the ``call_participants`` rows."""

    conferences: dict[str, list[ConferenceAttendance]]
    participants: dict[str, dict[str, CallParticipant]]


def stored_attendance_many(db: Session, call_session_ids: Iterable[str],
                           identities: Mapping[str, Participant] | None = None,
                           by_record: Mapping[str, Iterable[str]] | None = None) -> Stored:
    """Each call's conferences as stored, oldest first, each with its participants and their sessions
    (three queries, however many calls).

    A participant's identity is taken from ``identities`` (a read's, or one just read for an event),
    else from its ``call_participants`` row; one known by neither is left out until a read names it.
    ``by_record``: participants a read listed in each conference (with or without sessions).
    """
    ids = sorted(set(call_session_ids))
    rows: dict[str, dict[str, CallParticipant]] = {call_id: {} for call_id in ids}
    known = dict(identities or {})
    for row in db.scalars(sa.select(CallParticipant).where(CallParticipant.call_session_id.in_(ids))):
        rows[row.call_session_id][row.participant] = row
        known.setdefault(row.participant, Participant(
            name=row.participant, kind=row.kind,  # type: ignore[arg-type]
            user=row.google_user, display_name=row.display_name, sessions=()))
    spans: dict[tuple[str, str], list[ParticipantSession]] = {}
    for session in db.scalars(sa.select(CallParticipantSession).where(
            CallParticipantSession.call_session_id.in_(ids)).order_by(CallParticipantSession.name)):
        start = session.started_at or session.ended_at  # a leave whose join is not known yet: a moment
        if start is not None:
            spans.setdefault((session.record, session.participant), []).append(
                ParticipantSession(start, session.ended_at, session.name))
    in_record: dict[str, set[str]] = {}
    for record, participant in spans:
        in_record.setdefault(record, set()).add(participant)
    for record, participants in (by_record or {}).items():
        in_record.setdefault(record, set()).update(participants)
    conferences: dict[str, list[ConferenceAttendance]] = {call_id: [] for call_id in ids}
    for conference in db.scalars(sa.select(CallConference).where(
            CallConference.call_session_id.in_(ids)).order_by(CallConference.started_at, CallConference.record)):
        people = tuple(
            Participant(who.name, who.kind, who.user, who.display_name,
                        tuple(sorted(spans.get((conference.record, name), ()), key=lambda span: span.start)))
            for name in sorted(in_record.get(conference.record, ())) if (who := known.get(name)) is not None)
        conferences[conference.call_session_id].append(
            ConferenceAttendance(conference.record, conference.started_at, conference.ended_at, people))
    return Stored(conferences, rows)
