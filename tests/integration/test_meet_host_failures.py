"""One host user's trouble stays that host's: rate limits fail over, credential problems are isolated (both backends).

Also: Meet's creation budget is spent only on open sessions (scheduled, waiting, in progress).
"""

from __future__ import annotations

import datetime as dt
import time

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from integrations.google_meet import (
    ConferenceAttendance,
    MeetConfigurationError,
    MeetError,
    MeetingSpace,
    MeetRateLimited,
    Participant,
    ParticipantSession,
)
from jobs import calls as call_jobs
from tests.conftest import FakeClock, make_settings
from tests.support.fake_meet import FakeMeetGateway
from verify_service import migrate
from verify_service.accounts import services
from verify_service.calls import meetings
from verify_service.calls.models import CallSession, MeetHost, MeetingStatus, MeetSpaceCreation
from verify_service.calls.state import SessionStatus
from verify_service.db import unit_of_work
from verify_service.registry import Registry

HOST_1, HOST_2 = "host-1@fake.example", "host-2@fake.example"  # FakeMeetGateway's hosts, in this order


class HostTroubleGateway(FakeMeetGateway):
    """FakeMeetGateway whose ``broken`` hosts answer every call with a configuration error (a suspended user)."""

    def __init__(self) -> None:
        super().__init__((HOST_1, HOST_2))
        self.broken: set[str] = set()
        self.asked: list[tuple[str, str]] = []  # (method, host) of every call

    def _check(self, method: str, host: str) -> None:
        self.asked.append((method, host))
        if host in self.broken:
            raise MeetConfigurationError(f"cannot {method} as {host}: HTTP 401: the host user is suspended")

    def create_space(self, *, host: str, access_type: str = "RESTRICTED") -> MeetingSpace:  # type: ignore[override]
        self._check("create_space", host)
        return super().create_space(host=host, access_type=access_type)  # type: ignore[arg-type]

    def attendance(self, space_name: str, *, host: str) -> list[ConferenceAttendance]:
        self._check("attendance", host)
        return super().attendance(space_name, host=host)


@pytest.fixture
def settings(database_url, tmp_path):
    return make_settings(database_url, tmp_path, meet_creates_per_minute=2, meet_project_creates_per_minute=5)


@pytest.fixture
def no_sleeping(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(seconds: float) -> None:
        raise AssertionError(f"slept {seconds}s inside a request")

    monkeypatch.setattr(time, "sleep", refuse)


def new_session(sessions, clock: FakeClock, account_id: str, status: SessionStatus = SessionStatus.WAITING,
                **fields: object) -> str:
    with unit_of_work(sessions) as session:
        if session.get(services.Account, account_id) is None:
            services.upsert_account(session, account_id, services.Profile("Ana", f"{account_id}@example.com", "PT"),
                                    actor="t", now=clock())
        call = CallSession(account_id=account_id, status=status, created_at=clock(), updated_at=clock(), **fields)
        session.add(call)
        session.flush()
        return call.id


def end(sessions, call_id: str, status: SessionStatus, now: dt.datetime) -> None:
    with unit_of_work(sessions) as session:
        row = session.get_one(CallSession, call_id)
        row.status, row.ended_at = status, now


def row(sessions, call_id: str) -> CallSession:
    with unit_of_work(sessions, write=False) as session:
        return session.get_one(CallSession, call_id)


def creations(sessions) -> list[str]:
    """The host of every creation charged to the budget, in order."""
    with unit_of_work(sessions, write=False) as session:
        return list(session.scalars(sa.select(MeetSpaceCreation.host).order_by(MeetSpaceCreation.id)))


def saturated(sessions) -> dict[str, dt.datetime | None]:
    with unit_of_work(sessions, write=False) as session:
        return {email: until for email, until in session.execute(sa.select(MeetHost.email, MeetHost.saturated_until))}


# ---------------------------------------------------------------- a 429 tries the next host at once

def test_a_rate_limited_host_hands_the_creation_to_the_next_host(sessions, clock, settings, no_sleeping) -> None:
    gateway = FakeMeetGateway()
    gateway.fail_next(MeetRateLimited(f"cannot create a Meet space as {HOST_1}: Google is rate limiting"))
    call_id = new_session(sessions, clock, "acc-1")
    result = meetings.prepare_meeting(sessions, gateway, call_id, settings=settings, now=clock())
    assert result.status is MeetingStatus.READY
    ready = row(sessions, call_id)
    assert (ready.meet_status, ready.meet_host, ready.meet_creating_until) == (MeetingStatus.READY, HOST_2, None)
    assert [space.host for space in gateway.spaces.values()] == [HOST_2]
    assert saturated(sessions) == {HOST_1: clock() + meetings.SATURATION, HOST_2: None}
    assert creations(sessions) == [HOST_1, HOST_2]  # each attempt had its own reservation
    assert result.host == HOST_2


def test_when_every_host_is_rate_limited_the_session_is_queued(sessions, clock, settings, no_sleeping) -> None:
    gateway = FakeMeetGateway()
    gateway.fail_next(MeetRateLimited("Google is rate limiting"), times=2)
    call_id = new_session(sessions, clock, "acc-1")
    result = meetings.prepare_meeting(sessions, gateway, call_id, settings=settings, now=clock())
    assert (result.status, result.error) == (MeetingStatus.QUEUED, None)
    queued = row(sessions, call_id)
    assert (queued.meet_status, queued.meet_queued_at, queued.meet_creating_until) == (
        MeetingStatus.QUEUED, clock(), None)
    assert gateway.spaces == {}
    assert saturated(sessions) == {HOST_1: clock() + meetings.SATURATION, HOST_2: clock() + meetings.SATURATION}
    assert creations(sessions) == [HOST_1, HOST_2]
    with unit_of_work(sessions, write=False) as session:
        assert meetings.queued_sessions(session, limit=10) == [call_id]
    clock.advance(seconds=61)  # the hosts have rested: the queue job creates it
    assert meetings.prepare_queued(sessions, gateway, settings=settings, now=clock()) == 1
    assert row(sessions, call_id).meet_status is MeetingStatus.READY


# ---------------------------------------------------------------- no budget for calls that are over

@pytest.mark.parametrize("status", [SessionStatus.CANCELED, SessionStatus.EXPIRED, SessionStatus.COMPLETED,
                                    SessionStatus.AWAITING_SECOND_REVIEW])
def test_a_session_no_longer_open_gets_no_meeting(sessions, clock, settings, status: SessionStatus) -> None:
    gateway = FakeMeetGateway()
    call_id = new_session(sessions, clock, "acc-1", status=status)
    result = meetings.prepare_meeting(sessions, gateway, call_id, settings=settings, now=clock())
    assert gateway.spaces == {} and creations(sessions) == []
    assert result.ended and result.status is MeetingStatus.NONE


def test_sessions_canceled_or_expired_in_the_queue_leave_it_and_do_not_stop_the_job(sessions, clock,
                                                                                    settings) -> None:
    gateway = FakeMeetGateway()
    gateway.fail_next(MeetRateLimited("Google is rate limiting"), times=2)
    first = new_session(sessions, clock, "acc-1")
    meetings.prepare_meeting(sessions, gateway, first, settings=settings, now=clock())  # queued
    clock.advance(seconds=1)
    second, third = new_session(sessions, clock, "acc-2"), new_session(sessions, clock, "acc-3")
    for call_id in (second, third):  # still within the rest: queued without asking Google
        assert meetings.prepare_meeting(sessions, gateway, call_id, settings=settings, now=clock()).status \
            is MeetingStatus.QUEUED
    orphan = new_session(sessions, clock, "acc-4", status=SessionStatus.EXPIRED)  # never got its meeting
    end(sessions, first, SessionStatus.CANCELED, clock())
    end(sessions, second, SessionStatus.EXPIRED, clock())
    with unit_of_work(sessions, write=False) as session:
        # The ended ones are not ahead of the open one, and the orphan that expired is not adopted.
        assert meetings.queued_sessions(session, limit=10, now=clock() + dt.timedelta(minutes=5)) == [third]
    charged = len(creations(sessions))
    clock.advance(minutes=5)
    assert meetings.prepare_queued(sessions, gateway, settings=settings, now=clock()) == 1
    assert row(sessions, third).meet_status is MeetingStatus.READY
    assert len(creations(sessions)) == charged + 1 and len(gateway.spaces) == 1  # only for the open one
    for call_id in (first, second, orphan):
        left = row(sessions, call_id)
        assert (left.meet_status, left.meet_queued_at, left.meet_space) == (MeetingStatus.NONE, None, None)


class CancelingGateway(FakeMeetGateway):
    """The freelancer cancels while Google is creating the space; then Google answers ``answer``."""

    def __init__(self, sessions, clock: FakeClock, call_id: str, answer: MeetError | None) -> None:
        super().__init__()
        self.sessions, self.clock, self.call_id, self.answer = sessions, clock, call_id, answer

    def create_space(self, *, host: str, access_type: str = "RESTRICTED") -> MeetingSpace:  # type: ignore[override]
        end(self.sessions, self.call_id, SessionStatus.CANCELED, self.clock())
        if self.answer is not None:
            raise self.answer
        return super().create_space(host=host, access_type=access_type)  # type: ignore[arg-type]


def test_a_space_created_for_a_session_canceled_meanwhile_is_stored(sessions, clock, settings) -> None:
    call_id = new_session(sessions, clock, "acc-1")
    gateway = CancelingGateway(sessions, clock, call_id, None)
    assert meetings.prepare_meeting(sessions, gateway, call_id, settings=settings, now=clock()).status \
        is MeetingStatus.READY
    stored = row(sessions, call_id)
    assert (stored.status, stored.meet_status, stored.meet_host) == (SessionStatus.CANCELED, MeetingStatus.READY,
                                                                    HOST_1)
    assert stored.meet_space in gateway.spaces


@pytest.mark.parametrize("answer", [MeetRateLimited("Google is rate limiting"), MeetError("HTTP 503")],
                         ids=["rate-limited", "failed"])
def test_a_session_canceled_during_a_failed_creation_is_neither_retried_nor_queued(sessions, clock, settings,
                                                                                  answer: MeetError) -> None:
    call_id = new_session(sessions, clock, "acc-1")
    gateway = CancelingGateway(sessions, clock, call_id, answer)
    meetings.prepare_meeting(sessions, gateway, call_id, settings=settings, now=clock())
    left = row(sessions, call_id)
    assert (left.meet_status, left.meet_queued_at, left.meet_creating_until) == (MeetingStatus.NONE, None, None)
    assert creations(sessions) == [HOST_1]  # no second host charged for a call that is over


# ---------------------------------------------------------------- the queue job and a broken host

def test_the_queue_job_creates_on_the_other_host_and_readyz_names_the_broken_one(
        app: Flask, registry: Registry, client: FlaskClient, clock: FakeClock) -> None:
    registry.meet = gateway = HostTroubleGateway()
    gateway.broken = {HOST_1}
    ids = [new_session(registry.sessions, clock, f"acc-{n}", meet_status=MeetingStatus.QUEUED,
                       meet_queued_at=clock()) for n in range(2)]
    assert call_jobs.prepare_queued_meetings(app) == 2  # both on host 2; host 1 asked once, not per session
    assert {row(registry.sessions, call_id).meet_host for call_id in ids} == {HOST_2}
    assert [host for method, host in gateway.asked if method == "create_space"].count(HOST_1) == 1
    check = client.get("/readyz").get_json()["checks"]["meet"]
    assert check["ok"] is False and HOST_1 in check["hosts"] and "suspended" in check["hosts"][HOST_1]
    gateway.broken = set()
    clock.advance(minutes=2)
    new_session(registry.sessions, clock, "acc-9", meet_status=MeetingStatus.QUEUED, meet_queued_at=clock())
    assert call_jobs.prepare_queued_meetings(app) == 1  # created as host 1 (the most room): it works again
    assert client.get("/readyz").get_json()["checks"]["meet"] == {"ok": True, "backend": "sandbox"}


# ---------------------------------------------------------------- attendance and a broken host

def joined(space: str, at: dt.datetime) -> ConferenceAttendance:
    record = f"conferenceRecords/{space.split('/')[-1]}"
    return ConferenceAttendance(record, at, None, (Participant(
        f"{record}/participants/f", "signed_in", f"users/{space}", "Ana", (ParticipantSession(at, None),)),))


def meeting_on(registry: Registry, gateway: FakeMeetGateway, clock: FakeClock, account_id: str, host: str) -> str:
    space = gateway.create_space(host=host)
    return new_session(registry.sessions, clock, account_id, meet_status=MeetingStatus.READY, meet_space=space.name,
                       meet_uri=space.meeting_uri, meet_code=space.meeting_code, meet_host=host,
                       meet_ready_at=clock())


def test_a_host_failing_attendance_does_not_stop_the_other_hosts(app: Flask, registry: Registry,
                                                                 client: FlaskClient, clock: FakeClock,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(migrate, "current_revision", lambda engine: migrate.head_revision())  # schema: create_all
    registry.meet = gateway = HostTroubleGateway()
    assert client.get("/readyz").status_code == 200
    # Host 1's sessions come first in the job's order.
    on_1 = [meeting_on(registry, gateway, clock, f"acc-1{n}", HOST_1) for n in range(2)]
    clock.advance(seconds=1)
    on_2 = [meeting_on(registry, gateway, clock, f"acc-2{n}", HOST_2) for n in range(2)]
    for call_id in on_2:
        space = row(registry.sessions, call_id).meet_space
        gateway.add_attendance(space, joined(space, clock()))
    gateway.broken = {HOST_1}
    clock.advance(minutes=1)

    assert call_jobs.sync_attendance(app) == 2
    assert {row(registry.sessions, call_id).status for call_id in on_2} == {SessionStatus.IN_PROGRESS}
    assert {row(registry.sessions, call_id).status for call_id in on_1} == {SessionStatus.WAITING}
    assert [host for method, host in gateway.asked if method == "attendance"].count(HOST_1) == 1  # not per session
    response = client.get("/readyz")
    check = response.get_json()["checks"]["meet"]
    assert response.status_code == 503 and check["ok"] is False
    assert list(check["hosts"]) == [HOST_1] and "suspended" in check["hosts"][HOST_1]
    assert f"host user {HOST_1}" in check["detail"]
    # A job that never asked host 1 (nothing queued) must not clear its problem.
    call_jobs.prepare_queued_meetings(app)
    assert client.get("/readyz").status_code == 503

    gateway.broken = set()  # the admin reactivated the user
    clock.advance(minutes=1)
    assert call_jobs.sync_attendance(app) == 4
    response = client.get("/readyz")
    assert response.status_code == 200 and response.get_json()["checks"]["meet"] == {"ok": True,
                                                                                      "backend": "sandbox"}


# ---------------------------------------------------------------- the helper for views

def test_a_request_s_configuration_error_shows_on_readyz_at_once(sessions, clock, settings, registry: Registry,
                                                                 client: FlaskClient) -> None:
    gateway = HostTroubleGateway()
    gateway.broken = {HOST_1}
    call_id = new_session(sessions, clock, "acc-1")
    with pytest.raises(MeetConfigurationError) as raised:  # what the start and booking flows catch
        meetings.prepare_meeting(sessions, gateway, call_id, settings=settings, now=clock())
    assert isinstance(raised.value, meetings.HostMisconfigured) and raised.value.host == HOST_1
    registry.note_meet_error(raised.value)
    check = client.get("/readyz").get_json()["checks"]["meet"]
    assert check["ok"] is False and list(check["hosts"]) == [HOST_1]
    registry.note_meet_error(MeetConfigurationError("no Meet host users: set VERIFY_MEET_HOST_USERS"))
    check = client.get("/readyz").get_json()["checks"]["meet"]
    assert check["detail"].startswith("no Meet host users") and list(check["hosts"]) == [HOST_1]
    registry.note_meet(None)
    registry.note_meet_host(HOST_1, None)
    assert client.get("/readyz").get_json()["checks"]["meet"]["ok"] is True
