"""Attendance: who joined a session's Meet conferences, and what follows from it.

Google keeps conference records for 30 days; we keep our copy on the session
and in ``call_participants``. Identification:

* the **reviewer** is a signed-in participant whose Google user is the
  claiming reviewer's (learned the first time their display name matches);
* the **freelancer** is any other signed-in participant;
* anonymous and phone participants are recorded but are never evidence
  that the freelancer attended.

Consequences: the first join moves a waiting session (or a booked one whose
time came) to ``in_progress`` (``verification.session.started``); nobody
joining within the session TTL (counted from the booked time for a booked
call) expires it (``verification.session.expired``) and asks for its Meet
conference to be ended (``end_requested_conferences``); a reviewer who came while
the freelancer never did gets a "no show" suggestion.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from integrations.google_meet import ConferenceAttendance, MeetGateway, MeetNotFound, Participant
from verify_service.accounts.services import isoformat, lock_account
from verify_service.calls.models import CallParticipant, CallSession, MeetingStatus
from verify_service.calls.state import SessionStatus, transition
from verify_service.db import for_update, unit_of_work
from verify_service.review.models import Reviewer
from verify_service.webhooks.outbox import enqueue_event

log = logging.getLogger(__name__)

ACTIVE = (SessionStatus.WAITING, SessionStatus.IN_PROGRESS)
# Ended sessions keep being read a little longer, for the final leave times.
AFTERGLOW = dt.timedelta(hours=1)


@dataclasses.dataclass(frozen=True)
class Presence:
    joined_at: dt.datetime | None = None
    left_at: dt.datetime | None = None
    connected_seconds: int = 0


@dataclasses.dataclass(frozen=True)
class SyncResult:
    status: SessionStatus
    freelancer: Presence
    reviewer: Presence


def _presence(participants: list[tuple[Participant, str]], role: str, now: dt.datetime) -> Presence:
    mine = [p for p, r in participants if r == role]
    sessions = [s for p in mine for s in p.sessions]
    if not sessions:
        return Presence()
    still_connected = any(s.end is None for s in sessions)
    return Presence(
        joined_at=min(s.start for s in sessions),
        left_at=None if still_connected else max(s.end for s in sessions if s.end is not None),
        connected_seconds=int(sum(((s.end or now) - s.start).total_seconds() for s in sessions)),
    )


def _classify(session: Session, call: CallSession, conferences: list[ConferenceAttendance]
              ) -> list[tuple[Participant, str]]:
    reviewer = session.get(Reviewer, call.claimed_by_id) if call.claimed_by_id else None
    known_reviewers = set(session.scalars(sa.select(Reviewer.google_user).where(Reviewer.google_user.is_not(None))))
    classified = []
    for conference in conferences:
        for participant in conference.participants:
            role = "other"
            if participant.kind == "signed_in" and participant.user:
                if reviewer is not None and reviewer.google_user is None \
                        and participant.display_name == reviewer.display_name:
                    reviewer.google_user = participant.user  # learned once, then matched by id
                    known_reviewers.add(participant.user)
                role = "reviewer" if participant.user in known_reviewers else "freelancer"
            classified.append((participant, role))
    return classified


def _store_participants(session: Session, call: CallSession, participants: list[tuple[Participant, str]],
                        now: dt.datetime) -> None:
    existing = {p.participant: p for p in session.scalars(
        sa.select(CallParticipant).where(CallParticipant.call_session_id == call.id))}
    for participant, role in participants:
        presence = _presence([(participant, role)], role, now)
        row = existing.get(participant.name)
        if row is None:
            row = CallParticipant(call_session_id=call.id, participant=participant.name, kind=participant.kind,
                                  first_joined_at=presence.joined_at or now)
            session.add(row)
            existing[participant.name] = row
        row.role = role
        row.google_user = participant.user
        row.display_name = participant.display_name
        row.last_left_at = presence.left_at
        row.connected_seconds = presence.connected_seconds


def _session_event(session: Session, call: CallSession, event_type: str, now: dt.datetime) -> None:
    account = lock_account(session, call.account_id)
    enqueue_event(session, account, event_type, {"session": {
        "id": call.id, "status": call.status.value, "attempt": call.attempt,
        "started_at": isoformat(call.started_at), "ended_at": isoformat(call.ended_at)}}, now=now)


def sync_attendance(sessions: sessionmaker[Session], gateway: MeetGateway, call_session_id: str, *,
                    ttl: dt.timedelta, now: dt.datetime) -> SyncResult:
    """Read the session's conferences from Meet and apply what they say.

    Raises:
        MeetError: Meet could not be read (a missing space counts as "nobody came").
    """
    with unit_of_work(sessions, write=False) as session:
        call = session.get_one(CallSession, call_session_id)
        space, host = call.meet_space, call.meet_host
    conferences: list[ConferenceAttendance] = []
    if space and host:
        try:
            conferences = gateway.attendance(space, host=host)
        except MeetNotFound:
            conferences = []
    with unit_of_work(sessions) as session:
        call = session.get_one(CallSession, call_session_id)
        lock_account(session, call.account_id)  # lock order: account, then the session
        call = session.execute(for_update(session, sa.select(CallSession).where(CallSession.id == call_session_id))
                               .execution_options(populate_existing=True)).scalar_one()
        participants = _classify(session, call, conferences)
        _store_participants(session, call, participants, now)
        freelancer, reviewer = _presence(participants, "freelancer", now), _presence(participants, "reviewer", now)
        call.freelancer_joined_at, call.freelancer_left_at = freelancer.joined_at, freelancer.left_at
        call.freelancer_connected_seconds = freelancer.connected_seconds
        call.reviewer_joined_at, call.reviewer_left_at = reviewer.joined_at, reviewer.left_at
        call.reviewer_connected_seconds = reviewer.connected_seconds
        call.attendance_synced_at = now
        _apply_consequences(session, call, freelancer, reviewer, ttl=ttl, now=now)
        return SyncResult(call.status, freelancer, reviewer)


def _expire(session: Session, call: CallSession, now: dt.datetime) -> None:
    """Nobody came in time: expire, announce, and have the job end the conference if there is one."""
    transition(call, SessionStatus.EXPIRED, now=now)
    if call.meet_space is not None:
        call.conference_end_requested_at = now  # end_requested_conferences closes it (no call from here)
    _session_event(session, call, "verification.session.expired", now)


def _apply_consequences(session: Session, call: CallSession, freelancer: Presence, reviewer: Presence, *,
                        ttl: dt.timedelta, now: dt.datetime) -> None:
    anyone = freelancer.joined_at or reviewer.joined_at
    # The TTL counts from when the meeting was ready, and for a booked call not before its time.
    ready_since = max(call.meet_ready_at or call.created_at, call.scheduled_for or call.created_at)
    if call.status is SessionStatus.SCHEDULED and call.scheduled_for is not None and call.scheduled_for <= now:
        if anyone:  # the booked call's time came and someone joined: it is on
            transition(call, SessionStatus.WAITING, now=now)
        elif now - ready_since >= ttl:
            _expire(session, call, now)
    if call.status is SessionStatus.WAITING and anyone:
        transition(call, SessionStatus.IN_PROGRESS, now=now)
        _session_event(session, call, "verification.session.started", now)
    elif call.status is SessionStatus.WAITING and now - ready_since >= ttl:
        _expire(session, call, now)
    if (reviewer.joined_at and not freelancer.joined_at and call.no_show_suggested_at is None
            and call.status is SessionStatus.IN_PROGRESS and now - ready_since >= ttl):
        call.no_show_suggested_at = now
    session.flush()


def sessions_to_sync(session: Session, *, now: dt.datetime, limit: int = 500) -> list[str]:
    """Active sessions with a meeting, those ended within the last hour (final leave times), and booked
    sessions whose time has come (with or without a meeting: without one, only to expire them)."""
    due_booking = sa.and_(CallSession.status == SessionStatus.SCHEDULED, CallSession.scheduled_for <= now)
    return list(session.scalars(
        sa.select(CallSession.id).where(sa.or_(
            due_booking,
            sa.and_(CallSession.meet_status == MeetingStatus.READY,
                    sa.or_(CallSession.status.in_(ACTIVE),
                           sa.and_(CallSession.ended_at.is_not(None), CallSession.ended_at > now - AFTERGLOW)))))
        .order_by(sa.func.coalesce(CallSession.attendance_synced_at, CallSession.created_at)).limit(limit)))

