"""The sandbox Meet gateway keeps the MeetGateway contract (no database)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import inspect
import threading
import time
from pathlib import Path

import pytest

from integrations import make_meet_gateway
from integrations import make_meet_events_gateway
from integrations.google_credentials import SandboxCredentials
from integrations.google_meet import (
    CalendarInvite,
    ConferenceAttendance,
    ConferenceRecord,
    MeetConfigurationError,
    MeetError,
    MeetGateway,
    MeetNotFound,
    Participant,
    ParticipantSession,
)
from integrations.google_meet_adapter import GoogleMeetGateway
from integrations.meet_events import MeetEventsGateway
from integrations.meet_events_adapter import GoogleMeetEventsGateway
from integrations.sandbox_google.inprocess import InProcessSandboxMeet
from tests.support.fake_meet import FakeMeetGateway
from verify_service.settings import Settings


INTERFACE = [name for name, member in vars(MeetGateway).items() if inspect.isfunction(member)
             and not name.startswith("_")]


@pytest.mark.parametrize("cls", [FakeMeetGateway, GoogleMeetGateway, InProcessSandboxMeet])
def test_it_implements_the_interface_with_the_same_signatures(cls: type) -> None:
    assert len(INTERFACE) == 11  # get_space too (meet_check reads a space back); the reads events name
    for name in INTERFACE:
        assert inspect.signature(getattr(cls, name)) == inspect.signature(getattr(MeetGateway, name)), name
    assert isinstance(FakeMeetGateway(), MeetGateway)


def test_ending_a_live_conference_records_it() -> None:
    gateway = FakeMeetGateway()
    gateway.start_conference("spaces/a")
    gateway.start_conference("spaces/b")
    gateway.end_active_conference("spaces/a")
    assert not gateway.is_live("spaces/a")
    assert gateway.is_live("spaces/b")
    assert gateway.ended == ["spaces/a"]


def test_nothing_live_or_no_such_space_returns_normally() -> None:
    gateway = FakeMeetGateway()
    gateway.start_conference("spaces/a")
    gateway.end_active_conference("spaces/a")
    gateway.end_active_conference("spaces/a")  # already ended
    gateway.end_active_conference("spaces/never-existed")
    assert gateway.ended == ["spaces/a"]


def test_injected_failures_raise_meet_errors_then_stop() -> None:
    gateway = FakeMeetGateway()
    gateway.start_conference("spaces/a")
    gateway.fail_next(times=2)
    for _ in range(2):
        with pytest.raises(MeetError):
            gateway.end_active_conference("spaces/a")
    assert gateway.is_live("spaces/a")
    gateway.fail_next(MeetConfigurationError("no credentials"))
    with pytest.raises(MeetConfigurationError, match="no credentials"):
        gateway.end_active_conference("spaces/a")
    gateway.end_active_conference("spaces/a")
    assert gateway.ended == ["spaces/a"]


class SlowSet(set):
    """Widens the gap between "is it live?" and "end it", where unguarded threads would race."""

    def __contains__(self, item: object) -> bool:
        found = super().__contains__(item)
        time.sleep(0.001)
        return found


def test_it_is_safe_to_share_between_threads() -> None:
    gateway = FakeMeetGateway()
    spaces = [f"spaces/{i}" for i in range(30)]
    for space in spaces:
        gateway.start_conference(space)
    gateway._live = SlowSet(gateway._live)
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def end_all() -> None:
        barrier.wait()
        try:
            for space in spaces:
                gateway.end_active_conference(space)
        except BaseException as exc:  # reported below: a thread's exception is otherwise lost
            errors.append(exc)

    threads = [threading.Thread(target=end_all) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    # Each conference is ended exactly once, however many threads raced for it.
    assert sorted(gateway.ended) == sorted(spaces)


def test_spaces_members_and_attendance_live_in_memory() -> None:
    gateway = FakeMeetGateway()
    space = gateway.create_space(host="host-1@fake.example", access_type="TRUSTED")
    gateway.add_member(space.name, "ana@example.com", host="host-1@fake.example")
    gateway.add_member(space.name, "rev@example.com", host="host-1@fake.example", cohost=True)
    gateway.add_member(space.name, "rev@example.com", host="host-1@fake.example")  # already a member
    stored = gateway.spaces[space.name]
    assert (stored.host, stored.access_type) == ("host-1@fake.example", "TRUSTED")
    assert stored.members == {"ana@example.com": False, "rev@example.com": True}
    assert gateway.create_space(host="host-2@fake.example").name != space.name
    with pytest.raises(MeetNotFound):
        gateway.add_member("spaces/nope", "ana@example.com", host="host-1@fake.example")
    assert gateway.attendance(space.name, host="host-1@fake.example") == []
    start = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    conference = ConferenceAttendance("conferenceRecords/c1", start, None, ())
    gateway.add_attendance(space.name, conference)
    assert gateway.attendance(space.name, host="host-1@fake.example") == [conference]


def test_the_reads_an_event_names_come_from_the_attendance_added() -> None:
    gateway = FakeMeetGateway()
    start = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    session = ParticipantSession(start, None, "conferenceRecords/c1/participants/p1/participantSessions/s1")
    person = Participant("conferenceRecords/c1/participants/p1", "signed_in", "users/1", "Ana", (session,))
    gateway.add_attendance("spaces/a", ConferenceAttendance("conferenceRecords/c1", start, None, (person,)))
    assert gateway.conference("conferenceRecords/c1", host="h") == ConferenceRecord(
        "conferenceRecords/c1", "spaces/a", start, None)
    assert gateway.participant(person.name, host="h") == dataclasses.replace(person, sessions=())
    assert gateway.participant_session(session.name, host="h") == session
    for read, name in ((gateway.conference, "conferenceRecords/c2"), (gateway.participant, person.name + "x"),
                       (gateway.participant_session, session.name + "x")):
        with pytest.raises(MeetNotFound):
            read(name, host="h")
    gateway.fail_next()
    with pytest.raises(MeetError):
        gateway.conference("conferenceRecords/c1", host="h")


def test_invites_are_idempotent_by_id() -> None:
    gateway = FakeMeetGateway()
    start = dt.datetime(2026, 1, 1, 9, tzinfo=dt.timezone.utc)
    invite = CalendarInvite("vs1", "Verification", "", start, start + dt.timedelta(minutes=30),
                            "https://meet.google.com/x", ("ana@example.com",))
    gateway.insert_invite(invite, host="h")
    gateway.insert_invite(dataclasses.replace(invite, summary="changed"), host="h")  # same id: done already
    assert gateway.invites == {"vs1": invite}
    later = start + dt.timedelta(days=1)
    gateway.move_invite("vs1", later, later + dt.timedelta(minutes=30), host="h")
    assert gateway.invites["vs1"].start == later
    gateway.cancel_invite("vs1", host="h")
    gateway.cancel_invite("vs1", host="h")  # already gone
    assert gateway.invites == {}
    with pytest.raises(MeetNotFound):
        gateway.move_invite("vs1", later, later, host="h")


def test_the_factory_follows_the_settings(tmp_path: Path) -> None:
    settings = Settings(env="testing", instance_dir=tmp_path)
    sandbox = make_meet_gateway(settings)
    assert isinstance(sandbox, GoogleMeetGateway) and isinstance(sandbox, MeetGateway)
    assert sandbox.hosts == ("host-1@sandbox.example", "host-2@sandbox.example")
    assert sandbox._credentials("host-1@sandbox.example").token == "sandbox:host-1@sandbox.example"
    assert sandbox._endpoints == {"meet": "http://127.0.0.1:8000/sandbox/google/meet/",
                                  "calendar": "http://127.0.0.1:8000/sandbox/google/calendar/v3/"}
    with pytest.raises(MeetConfigurationError, match="VERIFY_GOOGLE_SERVICE_ACCOUNT_FILE is not set"):
        make_meet_gateway(settings.replace(meet_backend="google", meet_host_users=("h@example.com",)))
    missing = str(tmp_path / "missing.json")
    with pytest.raises(MeetConfigurationError, match="cannot read the service-account key file"):
        make_meet_gateway(settings.replace(meet_backend="google", google_service_account_file=missing,
                                           meet_host_users=("h@example.com",)))
    with pytest.raises(MeetConfigurationError, match="unknown Meet backend"):
        make_meet_gateway(settings.replace(meet_backend="zoom"))


def test_the_events_factory_follows_the_settings(tmp_path: Path) -> None:
    settings = Settings(env="testing", instance_dir=tmp_path)
    assert make_meet_events_gateway(settings) is None  # no topic: events are off
    events = make_meet_events_gateway(settings.replace(meet_events_topic="projects/p/topics/t"))
    assert isinstance(events, GoogleMeetEventsGateway) and isinstance(events, MeetEventsGateway)
    assert events._endpoints == {"workspaceevents": "http://127.0.0.1:8000/sandbox/google/workspaceevents/"}
    assert events._userinfo == "http://127.0.0.1:8000/sandbox/google/oauth2/v3/userinfo"
    assert isinstance(events._credentials("host-1@sandbox.example"), SandboxCredentials)
    with pytest.raises(MeetConfigurationError, match="VERIFY_GOOGLE_SERVICE_ACCOUNT_FILE is not set"):
        make_meet_events_gateway(settings.replace(meet_backend="google", meet_host_users=("h@example.com",),
                                                  meet_events_topic="projects/p/topics/t"))
