"""Meetings for call sessions: the creation budget, queueing, invites and attendance (both backends).

The gateway here is a recording double checked against the MeetGateway protocol;
the real adapter against the sandbox over HTTP is in test_meet_sandbox_e2e.py.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import time
from typing import Any

import pytest
import sqlalchemy as sa

from integrations.google_meet import (
    CalendarInvite,
    ConferenceAttendance,
    ConferenceRecord,
    MeetConfigurationError,
    MeetGateway,
    MeetingSpace,
    MeetNotFound,
    MeetRateLimited,
    Participant,
    ParticipantSession,
    calendar_event_id,
    space_body,
)
from tests.conftest import make_settings
from tests.support.concurrency import run_together
from verify_service.accounts import services
from verify_service.calls import attendance, booking, meetings, scheduling
from verify_service.calls.models import CallParticipant, CallSession, MeetingStatus, MeetSpaceCreation
from verify_service.calls.state import SessionStatus
from verify_service.db import unit_of_work
from verify_service.freelancer import journey
from verify_service.staff.models import Reviewer, Role
from verify_service.webhooks.models import OutboxEvent

HOSTS = ("host-a@example.com", "host-b@example.com", "host-c@example.com")


@dataclasses.dataclass
class RecordingGateway:
    hosts: tuple[str, ...] = HOSTS
    created: list[str] = dataclasses.field(default_factory=list)
    members: list[tuple[str, str, bool]] = dataclasses.field(default_factory=list)
    invites: dict[str, tuple[CalendarInvite, str]] = dataclasses.field(default_factory=dict)
    conferences: list[ConferenceAttendance] = dataclasses.field(default_factory=list)
    rate_limited: set[str] = dataclasses.field(default_factory=set)
    misconfigured: bool = False
    _ids: itertools.count = dataclasses.field(default_factory=itertools.count)

    def create_space(self, *, host: str, access_type: str = "RESTRICTED") -> MeetingSpace:
        if self.misconfigured:
            raise MeetConfigurationError("delegation missing")
        if host in self.rate_limited:
            raise MeetRateLimited(host)
        self.created.append(host)
        n = next(self._ids)
        return MeetingSpace(f"spaces/s{n}", f"https://meet.example/abc-{n}", f"abc-{n}")

    def get_space(self, space_name: str, *, host: str) -> dict[str, Any]:
        return {"name": space_name, "config": space_body()["config"]}

    def add_member(self, space_name: str, email: str, *, host: str, cohost: bool = False) -> None:
        self.members.append((space_name, email, cohost))

    def end_active_conference(self, space_name: str, *, host: str | None = None) -> None:
        pass

    def attendance(self, space_name: str, *, host: str) -> list[ConferenceAttendance]:
        return list(self.conferences)

    # The single reads of Meet's events: this double keeps no records to answer them from.
    def conference(self, record_name: str, *, host: str) -> ConferenceRecord:
        raise MeetNotFound(record_name)

    def participant(self, participant_name: str, *, host: str) -> Participant:
        raise MeetNotFound(participant_name)

    def participant_session(self, session_name: str, *, host: str) -> ParticipantSession:
        raise MeetNotFound(session_name)

    def insert_invite(self, invite: CalendarInvite, *, host: str, send_updates: str = "all") -> None:
        self.invites.setdefault(invite.event_id, (invite, send_updates))

    def move_invite(self, event_id: str, start: dt.datetime, end: dt.datetime, *, host: str,
                    send_updates: str = "all") -> None:
        invite, updates = self.invites[event_id]
        self.invites[event_id] = (dataclasses.replace(invite, start=start, end=end), updates)

    def cancel_invite(self, event_id: str, *, host: str, send_updates: str = "all") -> None:
        self.invites.pop(event_id, None)


@pytest.fixture
def gateway() -> RecordingGateway:
    gateway = RecordingGateway()
    assert isinstance(gateway, MeetGateway)
    return gateway


@pytest.fixture
def settings(database_url, tmp_path):
    return make_settings(database_url, tmp_path, meet_creates_per_minute=2, meet_project_creates_per_minute=5)


def new_session(sessions, clock, account_id: str = "acc-1", status: SessionStatus = SessionStatus.WAITING) -> str:
    with unit_of_work(sessions) as session:
        if session.get(services.Account, account_id) is None:
            services.upsert_account(session, account_id, services.Profile("Ana", f"{account_id}@example.com", "PT"),
                                    actor="t", now=clock())
        call = CallSession(account_id=account_id, status=status, created_at=clock(), updated_at=clock())
        session.add(call)
        session.flush()
        return call.id


def call(sessions, call_id: str) -> CallSession:
    with unit_of_work(sessions, write=False) as session:
        return session.get_one(CallSession, call_id)


# ---------------------------------------------------------------- the budget

def test_creations_spread_over_hosts_then_queue_when_all_are_spent(sessions, clock, gateway, settings) -> None:
    ids, results = [], []
    for i in range(7):
        clock.advance(milliseconds=1)  # freelancers arrive one after another
        ids.append(new_session(sessions, clock, f"acc-{i}"))
        results.append(meetings.prepare_meeting(sessions, gateway, ids[-1], settings=settings, now=clock()))
    # 2 per host per minute, 5 per project: a, b, c, a, b — then the project budget is spent.
    assert gateway.created == ["host-a@example.com", "host-b@example.com", "host-c@example.com",
                               "host-a@example.com", "host-b@example.com"]
    assert [r.status for r in results] == [MeetingStatus.READY] * 5 + [MeetingStatus.QUEUED] * 2
    ready = call(sessions, ids[0])
    assert (ready.meet_space, ready.meet_host) == ("spaces/s0", "host-a@example.com")
    assert ready.meet_ready_at is not None
    assert ("spaces/s0", "acc-0@example.com", False) in gateway.members  # the freelancer, not a co-host
    with unit_of_work(sessions, write=False) as session:  # the queue job's order: the first to queue goes first
        assert meetings.queued_sessions(session, limit=10) == [ids[5], ids[6]]

    clock.advance(seconds=30)
    assert meetings.prepare_queued(sessions, gateway, settings=settings, now=clock()) == 0  # still within the minute
    clock.advance(seconds=31)
    assert meetings.prepare_queued(sessions, gateway, settings=settings, now=clock()) == 2
    assert call(sessions, ids[6]).meet_status is MeetingStatus.READY


def test_per_host_budget_without_project_limit(sessions, clock, gateway, database_url, tmp_path) -> None:
    settings = make_settings(database_url, tmp_path, meet_creates_per_minute=1, meet_project_creates_per_minute=100)
    ids = [new_session(sessions, clock, f"acc-{i}") for i in range(4)]
    statuses = [meetings.prepare_meeting(sessions, gateway, i, settings=settings, now=clock()).status for i in ids]
    assert statuses == [MeetingStatus.READY] * 3 + [MeetingStatus.QUEUED]
    assert sorted(gateway.created) == sorted(HOSTS)


def test_a_429_rests_the_host_and_the_next_host_creates_the_space(sessions, clock, gateway, settings) -> None:
    gateway.rate_limited = {"host-a@example.com"}
    first = new_session(sessions, clock, "acc-1")
    assert meetings.prepare_meeting(sessions, gateway, first, settings=settings, now=clock()).status \
        is MeetingStatus.READY
    assert gateway.created == ["host-b@example.com"]
    # The resting host is skipped by the next sessions too, with no new 429.
    gateway.rate_limited = set()
    second = new_session(sessions, clock, "acc-2")
    meetings.prepare_meeting(sessions, gateway, second, settings=settings, now=clock())
    assert gateway.created == ["host-b@example.com", "host-c@example.com"]


def test_preparing_twice_creates_one_space(sessions, clock, gateway, settings) -> None:
    call_id = new_session(sessions, clock)
    meetings.prepare_meeting(sessions, gateway, call_id, settings=settings, now=clock())
    meetings.prepare_meeting(sessions, gateway, call_id, settings=settings, now=clock())
    assert len(gateway.created) == 1


def test_two_processes_preparing_one_session_at_once_create_one_space(sessions, clock, settings) -> None:
    """Two schedulers (or a scheduler and a web request) racing: the creation lease lets one create."""

    class SlowGateway(RecordingGateway):
        def create_space(self, *, host: str, access_type: str = "RESTRICTED") -> MeetingSpace:
            time.sleep(0.3)  # Google takes its time; the other process arrives meanwhile
            return super().create_space(host=host, access_type=access_type)

    gateway = SlowGateway()
    call_id = new_session(sessions, clock)
    results = run_together([lambda: meetings.prepare_meeting(sessions, gateway, call_id, settings=settings,
                                                             now=clock())] * 2)
    assert not [r for r in results if isinstance(r, Exception)]
    assert len(gateway.created) == 1
    assert sorted((r.status, r.in_progress) for r in results) == [
        (MeetingStatus.NONE, True), (MeetingStatus.READY, False)]
    ready = call(sessions, call_id)
    assert (ready.meet_status, ready.meet_space, ready.meet_creating_until) == (MeetingStatus.READY, "spaces/s0", None)
    with unit_of_work(sessions, write=False) as session:  # one creation charged to the budget, not two
        assert session.scalar(sa.select(sa.func.count()).select_from(MeetSpaceCreation)) == 1


def test_a_creation_cut_off_midway_is_retried_once_its_lease_runs_out(sessions, clock, gateway, settings) -> None:
    call_id = new_session(sessions, clock)
    with unit_of_work(sessions) as session:  # a process took the lease, then died before storing the space
        session.get_one(CallSession, call_id).meet_creating_until = clock() + meetings.CREATION_LEASE
    clock.advance(minutes=3)  # an orphan for the queue job…
    with unit_of_work(sessions) as session:
        session.get_one(CallSession, call_id).meet_creating_until = clock() + dt.timedelta(seconds=30)
    assert meetings.prepare_queued(sessions, gateway, settings=settings, now=clock()) == 0  # …still leased
    assert gateway.created == []
    clock.advance(seconds=31)
    assert meetings.prepare_queued(sessions, gateway, settings=settings, now=clock()) == 1
    assert call(sessions, call_id).meet_status is MeetingStatus.READY


def test_a_configuration_error_is_raised_not_queued(sessions, clock, gateway, settings) -> None:
    gateway.misconfigured = True
    call_id = new_session(sessions, clock)
    with pytest.raises(MeetConfigurationError):
        meetings.prepare_meeting(sessions, gateway, call_id, settings=settings, now=clock())
    assert call(sessions, call_id).meet_status is MeetingStatus.NONE
    assert call(sessions, call_id).meet_creating_until is None  # the next attempt need not wait for the lease


def test_the_claiming_reviewer_becomes_cohost(sessions, clock, gateway, settings) -> None:
    call_id = new_session(sessions, clock)
    meetings.prepare_meeting(sessions, gateway, call_id, settings=settings, now=clock())
    meetings.add_reviewer(gateway, call(sessions, call_id), "rev@example.com")
    assert gateway.members[-1] == ("spaces/s0", "rev@example.com", True)


# ---------------------------------------------------------------- booked calls

def book(sessions, gateway, clock, settings, start: dt.datetime) -> str:
    with unit_of_work(sessions) as session:
        services.upsert_account(session, "acc-1", services.Profile("Ana", "ana@example.com", "PT"), actor="t",
                                now=clock())
    return booking.book_slot(sessions, gateway, "acc-1", start=start, settings=settings, now=clock(),
                             tz=dt.timezone.utc)


def test_a_booked_call_gets_an_invite_that_moves_and_is_canceled(sessions, clock, gateway, settings) -> None:
    start = clock() + dt.timedelta(days=1)
    call_id = book(sessions, gateway, clock, settings, start)
    event_id = calendar_event_id(call_id)
    invite, updates = gateway.invites[event_id]
    assert invite.meeting_uri == "https://meet.example/abc-0" and invite.meeting_uri in invite.description
    assert invite.attendees == ("ana@example.com",)
    assert (invite.start, invite.end, updates) == (start, start + dt.timedelta(minutes=30), "all")
    assert set(event_id) <= set("abcdefghijklmnopqrstuv0123456789") and len(event_id) >= 5
    # Sending again does nothing (and the id would dedupe at Google anyway).
    assert scheduling.send_invite(sessions, gateway, call_id, settings=settings, now=clock()) is False

    later = start + dt.timedelta(hours=3)
    booking.reschedule_booking(sessions, gateway, "acc-1", call_id, start=later, settings=settings, now=clock(),
                               tz=dt.timezone.utc)
    assert gateway.invites[event_id][0].start == later and call(sessions, call_id).scheduled_for == later
    journey.cancel_call(sessions, gateway, "acc-1", call_id, settings=settings, now=clock())
    assert event_id not in gateway.invites
    assert call(sessions, call_id).status is SessionStatus.CANCELED


def test_a_queued_booked_call_is_invited_once_its_meeting_exists(sessions, clock, gateway, settings) -> None:
    gateway.rate_limited = set(HOSTS)
    call_id = book(sessions, gateway, clock, settings, clock() + dt.timedelta(days=2))
    assert call(sessions, call_id).meet_status is MeetingStatus.QUEUED
    assert gateway.invites == {}
    gateway.rate_limited = set()
    clock.advance(minutes=2)
    meetings.prepare_queued(sessions, gateway, settings=settings, now=clock())
    assert scheduling.send_pending_invites(sessions, gateway, settings=settings, now=clock()) == 1
    assert calendar_event_id(call_id) in gateway.invites


# ---------------------------------------------------------------- attendance

def person(name: str, kind: str, user: str | None, display: str, start: dt.datetime,
           end: dt.datetime | None) -> Participant:
    return Participant(f"conferenceRecords/c1/participants/{name}", kind, user, display,  # type: ignore[arg-type]
                       (ParticipantSession(start, end),))


@pytest.fixture
def live_call(sessions, clock, gateway, settings) -> str:
    call_id = new_session(sessions, clock)
    meetings.prepare_meeting(sessions, gateway, call_id, settings=settings, now=clock())
    with unit_of_work(sessions) as session:
        reviewer = Reviewer(email="rev@example.com", display_name="Rita Reviewer", role=Role.REVIEWER,
                            password_hash="x", created_at=clock())
        session.add(reviewer)
        session.flush()
        session.get_one(CallSession, call_id).claimed_by_id = reviewer.id
    return call_id


def sync(sessions, gateway, clock, call_id: str) -> attendance.SyncResult:
    return attendance.sync_attendance(sessions, gateway, call_id, ttl=dt.timedelta(minutes=30), now=clock())


def events(sessions) -> list[str]:
    with unit_of_work(sessions, write=False) as session:
        return list(session.scalars(sa.select(OutboxEvent.type).order_by(OutboxEvent.id)))


def test_joins_and_leaves_are_stored_and_start_the_session(sessions, clock, gateway, live_call) -> None:
    t0 = clock()
    gateway.conferences = [ConferenceAttendance("conferenceRecords/c1", t0, None, (
        person("p1", "signed_in", "users/111", "Ana Lima", t0 + dt.timedelta(minutes=1), t0 + dt.timedelta(minutes=9)),
        person("p2", "signed_in", "users/222", "Rita Reviewer", t0 + dt.timedelta(minutes=2), None),
        person("p3", "anonymous", None, "Ana Lima (phone)", t0 + dt.timedelta(minutes=1), t0 + dt.timedelta(minutes=3)),
    ))]
    clock.advance(minutes=10)
    result = sync(sessions, gateway, clock, live_call)
    assert result.status is SessionStatus.IN_PROGRESS
    assert result.freelancer.joined_at == t0 + dt.timedelta(minutes=1)
    assert result.freelancer.left_at == t0 + dt.timedelta(minutes=9)
    assert result.freelancer.connected_seconds == 8 * 60
    assert result.reviewer.joined_at == t0 + dt.timedelta(minutes=2) and result.reviewer.left_at is None
    with unit_of_work(sessions, write=False) as session:
        roles = dict(session.execute(sa.select(CallParticipant.participant, CallParticipant.role)).all())
        assert session.scalar(sa.select(Reviewer.google_user)) == "users/222"  # learned for next time
    assert roles == {"conferenceRecords/c1/participants/p1": "freelancer",
                     "conferenceRecords/c1/participants/p2": "reviewer",
                     "conferenceRecords/c1/participants/p3": "other"}
    assert events(sessions) == ["verification.session.started"]
    sync(sessions, gateway, clock, live_call)
    assert events(sessions) == ["verification.session.started"]  # once


def test_an_anonymous_name_is_not_the_freelancer_and_the_session_expires(sessions, clock, gateway, live_call) -> None:
    t0 = clock()
    gateway.conferences = [ConferenceAttendance("conferenceRecords/c1", t0, None, (
        person("p9", "anonymous", None, "Ana Lima", t0 + dt.timedelta(minutes=1), None),))]
    clock.advance(minutes=29)
    assert sync(sessions, gateway, clock, live_call).status is SessionStatus.WAITING
    clock.advance(minutes=1)
    result = sync(sessions, gateway, clock, live_call)
    assert result.status is SessionStatus.EXPIRED and result.freelancer.joined_at is None
    assert events(sessions) == ["verification.session.expired"]


def test_reviewer_alone_after_the_ttl_suggests_no_show(sessions, clock, gateway, live_call) -> None:
    t0 = clock()
    gateway.conferences = [ConferenceAttendance("conferenceRecords/c1", t0, None, (
        person("p2", "signed_in", "users/222", "Rita Reviewer", t0 + dt.timedelta(minutes=1), None),))]
    clock.advance(minutes=5)
    sync(sessions, gateway, clock, live_call)
    assert call(sessions, live_call).no_show_suggested_at is None
    clock.advance(minutes=30)
    sync(sessions, gateway, clock, live_call)
    assert call(sessions, live_call).no_show_suggested_at == clock()
    assert call(sessions, live_call).freelancer_joined_at is None


def test_sessions_to_sync_are_active_or_recently_ended(sessions, clock, gateway, settings, live_call) -> None:
    with unit_of_work(sessions, write=False) as session:
        assert attendance.sessions_to_sync(session, now=clock()) == [live_call]
    with unit_of_work(sessions) as session:
        row = session.get_one(CallSession, live_call)
        row.status, row.ended_at = SessionStatus.COMPLETED, clock()
    with unit_of_work(sessions, write=False) as session:
        assert attendance.sessions_to_sync(session, now=clock() + dt.timedelta(minutes=59)) == [live_call]
        assert attendance.sessions_to_sync(session, now=clock() + dt.timedelta(minutes=61)) == []
