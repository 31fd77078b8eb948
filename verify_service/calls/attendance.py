"""Attendance: who joined a session's Meet conferences, and what follows from it.

Google keeps conference records for 30 days; we keep our copy on the session
and in ``call_participants``. Identification:

* the **reviewer** is a signed-in participant whose Google user is the
  claiming reviewer's (learned the first time their display name matches);
* the **freelancer** is any other signed-in participant;
* anonymous and phone participants are recorded but are never evidence
  that the freelancer attended.

Consequences (through :mod:`verify_service.calls.lifecycle`, which announces them):

* the first join moves a waiting session (or a booked one whose time came)
  to ``in_progress`` (``verification.session.started``, unless a reviewer's
  claim did it first);
* nobody joining within the session TTL (counted from the booked time for a
  booked call) expires it as ``not_joined``;
* a session in progress with nobody in its conference for ``abandon_after``
  and no decision expires as ``abandoned`` — unless its reviewer is working
  on it (claim activity within that time: they may be writing the decision);
* a reviewer in the call for ``no_show_wait`` while the freelancer never came
  gets a "no show" suggestion.

An expiry asks for the conference to be ended (``end_requested_conferences``).
A closed account's sessions are not read at all: nothing writes its personal
data (display names) again once closure erased it. A read older than the one
already stored is dropped, so a slow read never overwrites a newer one.

Workflow (takes a sessionmaker: it reads Meet between its units):
:func:`sync_attendance` reads the session, asks Meet with no transaction
open, then stores what it heard in a short unit of its own.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from integrations.google_meet import ConferenceAttendance, MeetGateway, MeetNotFound, Participant
from verify_service.accounts.models import Account
from verify_service.accounts.services import lock_account
from verify_service.calls import attendance_store, lifecycle
from verify_service.calls.models import CallParticipant, CallSession, MeetingStatus
from verify_service.calls.state import EndReason, SessionStatus
from verify_service.db import for_update, unit_of_work, workflow
from verify_service.settings import Settings
from verify_service.staff.models import Reviewer

log = logging.getLogger(__name__)

ACTIVE = (SessionStatus.WAITING, SessionStatus.IN_PROGRESS)
# Ended sessions keep being read a little longer, for the final leave times.
AFTERGLOW = dt.timedelta(hours=1)
# The host user a simulation's private, in-process sandbox holds its meeting as (README, "Testing your
# integration end to end"). That meeting exists in no gateway the service has: its attendance is read once,
# by the simulation, and never again by the attendance job (which would find nobody and rewrite the evidence).
SIMULATED_HOST = "host@simulations.verify-service.invalid"
# The defaults of VERIFY_NO_SHOW_WAIT_MINUTES and VERIFY_ABANDONED_CALL_MINUTES (the jobs pass the settings).
NO_SHOW_WAIT = dt.timedelta(minutes=5)
ABANDON_AFTER = dt.timedelta(minutes=20)


def timing(settings: Settings) -> dict[str, dt.timedelta]:
    """The settings' waits, as :func:`sync_attendance`, :func:`apply_attendance` and :func:`reevaluate_many` take them."""
    return {"ttl": dt.timedelta(minutes=settings.session_ttl_minutes),
            "no_show_wait": dt.timedelta(minutes=settings.no_show_wait_minutes),
            "abandon_after": dt.timedelta(minutes=settings.abandoned_call_minutes)}


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
    stored: bool = True  # False: dropped (the account is closed, or a newer read was stored meanwhile)


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


def _classify(db: Session, call: CallSession, conferences: list[ConferenceAttendance],
              known_reviewers: set[str] | None = None) -> list[tuple[Participant, str]]:
    """Each participant with its role; ``known_reviewers`` (every reviewer's Google user; read when not given)
    learns a reviewer recognised by name."""
    reviewer = db.get(Reviewer, call.claimed_by_id) if call.claimed_by_id else None
    if known_reviewers is None:
        known_reviewers = set(db.scalars(sa.select(Reviewer.google_user).where(Reviewer.google_user.is_not(None))))
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


def _store_participants(db: Session, call: CallSession, participants: list[tuple[Participant, str]],
                        now: dt.datetime, existing: dict[str, CallParticipant] | None = None) -> None:
    if existing is None:
        existing = {p.participant: p for p in db.scalars(
            sa.select(CallParticipant).where(CallParticipant.call_session_id == call.id))}
    for participant, role in participants:
        presence = _presence([(participant, role)], role, now)
        row = existing.get(participant.name)
        if row is None:
            row = CallParticipant(call_session_id=call.id, participant=participant.name, kind=participant.kind,
                                  first_joined_at=presence.joined_at or now)
            db.add(row)
            existing[participant.name] = row
        row.role = role
        row.google_user = participant.user
        row.display_name = participant.display_name
        row.last_left_at = presence.left_at
        row.connected_seconds = presence.connected_seconds


@workflow
def sync_attendance(sessions: sessionmaker[Session], gateway: MeetGateway, call_session_id: str, *,
                    ttl: dt.timedelta, now: dt.datetime, no_show_wait: dt.timedelta = NO_SHOW_WAIT,
                    abandon_after: dt.timedelta = ABANDON_AFTER) -> SyncResult:
    """Read the session's conferences from Meet and apply what they say.

    Raises:
        MeetError: Meet could not be read (a missing space counts as "nobody came").
    """
    with unit_of_work(sessions, write=False) as db:
        call = db.get_one(CallSession, call_session_id)
        space, host = call.meet_space, call.meet_host
        closed = db.scalar(sa.select(Account.closed_at).where(Account.id == call.account_id)) is not None
    if closed:
        return SyncResult(call.status, Presence(), Presence(), stored=False)
    conferences: list[ConferenceAttendance] = []
    if space and host:
        try:
            conferences = gateway.attendance(space, host=host)
        except MeetNotFound:
            conferences = []
    with unit_of_work(sessions) as db:
        return apply_attendance(db, call_session_id, conferences, ttl=ttl, now=now, no_show_wait=no_show_wait,
                                abandon_after=abandon_after)


def apply_attendance(db: Session, call_session_id: str, conferences: list[ConferenceAttendance], *,
                     ttl: dt.timedelta, now: dt.datetime, no_show_wait: dt.timedelta = NO_SHOW_WAIT,
                     abandon_after: dt.timedelta = ABANDON_AFTER) -> SyncResult:
    """Store what Meet said at ``now`` about the session's conferences, and apply what follows (the second step of
    :func:`sync_attendance`; a simulation calls it with what its own sandbox meeting reports).

    The read is merged into the stored attendance (``attendance_store``: events may know more than
    Meet's lists show yet), and the consequences follow from everything stored."""
    account, call = _locked(db, call_session_id)
    if account.closed_at is not None or (call.attendance_synced_at is not None and call.attendance_synced_at > now):
        participants = _classify(db, call, conferences)
        return SyncResult(call.status, _presence(participants, "freelancer", now),
                          _presence(participants, "reviewer", now), stored=False)
    attendance_store.merge_read(db, call.id, conferences)
    call.attendance_synced_at = now
    identities = {p.name: p for conference in conferences for p in conference.participants}
    listed = {conference.record: [p.name for p in conference.participants] for conference in conferences}
    stored = attendance_store.stored_attendance_many(db, [call.id], identities, listed)
    return _evaluate(db, account, call, stored.conferences[call.id], ttl=ttl, now=now, no_show_wait=no_show_wait,
                     abandon_after=abandon_after, existing=stored.participants[call.id])


def reevaluate_many(db: Session, call_session_ids: Iterable[str], *, ttl: dt.timedelta, now: dt.datetime,
                    no_show_wait: dt.timedelta = NO_SHOW_WAIT, abandon_after: dt.timedelta = ABANDON_AFTER,
                    identities: dict[str, Participant] | None = None,
                    event: bool = False) -> dict[str, SyncResult]:
    """Apply what the stored attendance says at ``now`` to each session, reading nothing from Meet: after a
    batch of Meet events (``event``: the sessions' ``meet_event_at`` moves to ``now``), or as time passes
    (expiries, abandonment, the no-show suggestion). Their accounts and then the
    sessions locked, each in id order (the lock order of every writer: account, then session), and
    what they need read in a handful of queries, however many sessions."""
    ids = sorted(set(call_session_ids))
    if not ids:
        return {}
    account_ids = sorted(set(db.scalars(sa.select(CallSession.account_id).where(CallSession.id.in_(ids)))))
    accounts = {a.id: a for a in db.execute(for_update(db, sa.select(Account).where(Account.id.in_(account_ids))
                                                           .order_by(Account.id))
                                            .execution_options(populate_existing=True)).scalars()}
    calls = {c.id: c for c in db.execute(for_update(db, sa.select(CallSession).where(CallSession.id.in_(ids))
                                                        .order_by(CallSession.id))
                                         .execution_options(populate_existing=True)).scalars()}
    stored = attendance_store.stored_attendance_many(db, ids, identities)
    known = set(db.scalars(sa.select(Reviewer.google_user).where(Reviewer.google_user.is_not(None))))
    claimers = {c.claimed_by_id for c in calls.values() if c.claimed_by_id is not None}
    if claimers:  # into the identity map: _classify finds each claimer without a query
        db.scalars(sa.select(Reviewer).where(Reviewer.id.in_(claimers))).all()
    results = {}
    for call_id in ids:
        call = calls[call_id]
        account = accounts[call.account_id]
        if account.closed_at is not None:
            results[call_id] = SyncResult(call.status, Presence(), Presence(), stored=False)
            continue
        if event:
            call.meet_event_at = now
        results[call_id] = _evaluate(db, account, call, stored.conferences[call_id], ttl=ttl, now=now,
                                     no_show_wait=no_show_wait, abandon_after=abandon_after, known_reviewers=known,
                                     existing=stored.participants[call_id])
    return results


def _locked(db: Session, call_session_id: str) -> tuple[Account, CallSession]:
    call = db.get_one(CallSession, call_session_id)
    account = lock_account(db, call.account_id)  # lock order: account, then the session
    call = db.execute(for_update(db, sa.select(CallSession).where(CallSession.id == call_session_id))
                      .execution_options(populate_existing=True)).scalar_one()
    return account, call


def _evaluate(db: Session, account: Account, call: CallSession, conferences: list[ConferenceAttendance], *,
              ttl: dt.timedelta, now: dt.datetime, no_show_wait: dt.timedelta, abandon_after: dt.timedelta,
              known_reviewers: set[str] | None = None,
              existing: dict[str, CallParticipant] | None = None) -> SyncResult:
    participants = _classify(db, call, conferences, known_reviewers)
    freelancer, reviewer = _presence(participants, "freelancer", now), _presence(participants, "reviewer", now)
    _store_participants(db, call, participants, now, existing)
    call.attendance_checked_at = now
    call.freelancer_joined_at, call.freelancer_left_at = freelancer.joined_at, freelancer.left_at
    call.freelancer_connected_seconds = freelancer.connected_seconds
    call.reviewer_joined_at, call.reviewer_left_at = reviewer.joined_at, reviewer.left_at
    call.reviewer_connected_seconds = reviewer.connected_seconds
    _apply_consequences(db, account, call, participants, freelancer, reviewer, ttl=ttl,
                        no_show_wait=no_show_wait, abandon_after=abandon_after, now=now)
    return SyncResult(call.status, freelancer, reviewer)


def _quiet_since(call: CallSession, participants: list[tuple[Participant, str]]) -> dt.datetime | None:
    """Since when nobody at all (freelancer, reviewer, guest) has been in the conference; None while someone is."""
    spans = [s for participant, _role in participants for s in participant.sessions]
    if any(s.end is None for s in spans):
        return None
    last_left = max((s.end for s in spans if s.end is not None), default=None)
    start = call.started_at or call.created_at
    return max(last_left, start) if last_left is not None else start


def _apply_consequences(db: Session, account: Account, call: CallSession,
                        participants: list[tuple[Participant, str]], freelancer: Presence, reviewer: Presence, *,
                        ttl: dt.timedelta, no_show_wait: dt.timedelta, abandon_after: dt.timedelta,
                        now: dt.datetime) -> None:
    anyone = freelancer.joined_at or reviewer.joined_at
    # The TTL counts from when the meeting was ready, and for a booked call not before its time.
    ready_since = max(call.meet_ready_at or call.created_at, call.scheduled_for or call.created_at)
    due = call.status is SessionStatus.WAITING or (
        call.status is SessionStatus.SCHEDULED and call.scheduled_for is not None and call.scheduled_for <= now)
    if due and anyone:
        lifecycle.begin(db, account, call, now=now)
    elif due and now - ready_since >= ttl:
        lifecycle.expire(db, account, call, reason=EndReason.NOT_JOINED, now=now)
        return
    if call.status is not SessionStatus.IN_PROGRESS:
        return
    if (reviewer.joined_at and not freelancer.joined_at and call.no_show_suggested_at is None
            and dt.timedelta(seconds=reviewer.connected_seconds) >= no_show_wait):
        call.no_show_suggested_at = now
    quiet = _quiet_since(call, participants)
    working = call.claim_active_at or call.claimed_at if call.claimed_by_id is not None else None
    if quiet is not None and now - max(quiet, working or quiet) >= abandon_after:
        lifecycle.expire(db, account, call, reason=EndReason.ABANDONED, now=now)


def sessions_to_sync(db: Session, *, now: dt.datetime, limit: int = 500) -> list[str]:
    """Active sessions with a meeting, those ended within the last hour (final leave times), and booked
    sessions whose time has come (with or without a meeting: without one, only to expire them); never
    a closed account's, nor a simulation's."""
    due_booking = sa.and_(CallSession.status == SessionStatus.SCHEDULED, CallSession.scheduled_for <= now)
    open_account = sa.select(Account.id).where(Account.id == CallSession.account_id, Account.closed_at.is_(None))
    return list(db.scalars(
        sa.select(CallSession.id).where(sa.or_(
            due_booking,
            sa.and_(CallSession.meet_status == MeetingStatus.READY,
                    sa.or_(CallSession.status.in_(ACTIVE),
                           sa.and_(CallSession.ended_at.is_not(None), CallSession.ended_at > now - AFTERGLOW)))),
            open_account.exists(), CallSession.meet_host.is_distinct_from(SIMULATED_HOST))
        .order_by(sa.func.coalesce(CallSession.attendance_checked_at, CallSession.created_at)).limit(limit)))
