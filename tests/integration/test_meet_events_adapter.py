"""The real Workspace Events and Meet adapters over real HTTP against the sandbox the app serves on loopback.

The gateways are the ones the factories build from the app's settings (sandbox credentials that
name the host), talking through googleapiclient, httplib2 and requests to a live server.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import google.auth.credentials
import pytest
from flask import Flask
from google.auth.credentials import AnonymousCredentials
from google.auth.exceptions import RefreshError
from prometheus_client import REGISTRY
from werkzeug.serving import make_server

from integrations import make_meet_events_gateway, make_meet_gateway
from integrations.google_meet import SCOPES, MeetConfigurationError, MeetError, MeetGateway, MeetNotFound
from integrations.meet_events import EVENT_SCOPES, MEET_EVENT_TYPES, SUBSCRIPTION_TTL, user_target
from integrations.meet_events_adapter import GoogleMeetEventsGateway
from integrations.sandbox_google import SandboxGoogle, sandbox_of
from integrations.sandbox_google import events as sandbox_events
from integrations.sandbox_google.shapes import user_id
from tests.conftest import FakeClock, make_settings
from verify_service.registry import KEY

from verify_service import create_app

TOPIC = "projects/sandbox/topics/meet-events"
HOST = "host-1@sandbox.example"
OTHER_HOST = "host-2@sandbox.example"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve(app: Flask, port: int) -> Iterator[Flask]:
    """Serve ``app`` on ``port`` (loopback) inside the block; afterwards a service app's engine is disposed of."""
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield app
    finally:
        server.shutdown()
        thread.join(timeout=10)
        if KEY in app.extensions:
            app.extensions[KEY].engine.dispose()


@pytest.fixture
def live(tmp_path: Path, clock: FakeClock) -> Iterator[Flask]:
    """The app on a loopback port, serving the sandbox with events on; its pushes are answered 204 and kept."""
    port = free_port()
    app = create_app(make_settings(f"sqlite:///{tmp_path / 'events.sqlite3'}", tmp_path,
                                   base_url=f"http://127.0.0.1:{port}", meet_events_topic=TOPIC))
    app.extensions[KEY].clock = clock
    pushed: list[dict[str, Any]] = []
    sandbox_of(app).push.transport = lambda url, headers, body: (pushed.append(body), 204)[1]
    app.config["PUSHED"] = pushed
    with serve(app, port):
        yield app


@pytest.fixture
def sandbox(live: Flask) -> SandboxGoogle:
    return sandbox_of(live)


@pytest.fixture
def events(live: Flask) -> GoogleMeetEventsGateway:
    gateway = make_meet_events_gateway(live.extensions[KEY].settings)
    assert isinstance(gateway, GoogleMeetEventsGateway)
    gateway._sleep = lambda seconds: None  # operation polls wait for nothing
    return gateway


@pytest.fixture
def meet(live: Flask) -> MeetGateway:
    return make_meet_gateway(live.extensions[KEY].settings)


def subscribe(events: GoogleMeetEventsGateway, host: str = HOST) -> Any:
    return events.create_subscription(host=host, user=events.user_of(host), topic=TOPIC)


# ---------------------------------------------------------------- the host's user

def test_user_of_is_the_id_the_sandbox_gives_the_host_everywhere(events: GoogleMeetEventsGateway) -> None:
    assert events.user_of(HOST) == user_id(HOST)
    assert events.user_of(OTHER_HOST) == user_id(OTHER_HOST) != user_id(HOST)


# ---------------------------------------------------------------- subscriptions

def test_create_answers_the_subscription_and_again_the_same_one(events: GoogleMeetEventsGateway,
                                                                clock: FakeClock) -> None:
    created = subscribe(events)
    assert created.name.startswith("subscriptions/")
    assert created.target == user_target(user_id(HOST)) and created.topic == TOPIC
    assert created.event_types == MEET_EVENT_TYPES and created.state == "ACTIVE"
    assert created.expire_time == clock() + SUBSCRIPTION_TTL and created.suspension_reason is None
    assert subscribe(events) == created  # ALREADY_EXISTS: the one its ErrorInfo names
    assert events.get_subscription(created.name, host=HOST) == created
    other = subscribe(events, OTHER_HOST)
    assert other.name != created.name and other.target == user_target(user_id(OTHER_HOST))


def test_already_exists_without_error_info_finds_the_subscription_by_listing(
        events: GoogleMeetEventsGateway, monkeypatch: pytest.MonkeyPatch) -> None:
    created = subscribe(events)
    monkeypatch.setattr(sandbox_events, "ERROR_INFO", "type.googleapis.com/google.rpc.Help")
    assert subscribe(events) == created


def test_a_pending_operation_is_polled_then_the_subscription_read(events: GoogleMeetEventsGateway,
                                                                  sandbox: SandboxGoogle, clock: FakeClock) -> None:
    sandbox.events.operation_delay = 2  # done at the second operations.get
    created = subscribe(events)
    assert created.state == "ACTIVE"
    sandbox.events.operation_delay = 50  # never done within the polls: the gateway reads the subscription
    clock.advance(hours=1)
    renewed = events.renew_subscription(created.name, host=HOST)
    assert renewed.expire_time == clock() + SUBSCRIPTION_TTL
    sandbox.events.forget(created.name)
    again = subscribe(events)  # created, but never reported done: a list finds it
    assert again.name != created.name and [s["name"] for s in sandbox.events.subscriptions] == [again.name]


def test_renew_extends_the_expiry_from_now(events: GoogleMeetEventsGateway, clock: FakeClock) -> None:
    created = subscribe(events)
    clock.advance(days=2)
    renewed = events.renew_subscription(created.name, host=HOST, ttl=dt.timedelta(days=6))
    assert renewed.name == created.name and renewed.expire_time == clock() + dt.timedelta(days=6)
    assert renewed.expire_time > created.expire_time
    assert events.renew_subscription(created.name, host=HOST, ttl=dt.timedelta(days=30)).expire_time == \
        clock() + SUBSCRIPTION_TTL  # no longer than Google allows


def test_a_suspended_subscription_is_reactivated(events: GoogleMeetEventsGateway, sandbox: SandboxGoogle) -> None:
    created = subscribe(events)
    sandbox.events.suspend(created.name, reason="USER_SCOPE_REVOKED")
    suspended = events.get_subscription(created.name, host=HOST)
    assert (suspended.state, suspended.suspension_reason) == ("SUSPENDED", "USER_SCOPE_REVOKED")
    assert subscribe(events) == suspended  # a suspended one still exists
    reactivated = events.reactivate_subscription(created.name, host=HOST)
    assert (reactivated.state, reactivated.suspension_reason) == ("ACTIVE", None)
    with pytest.raises(MeetError, match="FAILED_PRECONDITION") as raised:
        events.reactivate_subscription(created.name, host=HOST)
    assert not isinstance(raised.value, MeetConfigurationError)


def test_an_expired_subscription_is_not_found(events: GoogleMeetEventsGateway, clock: FakeClock) -> None:
    created = subscribe(events)
    clock.advance(days=7, seconds=1)
    with pytest.raises(MeetNotFound):
        events.get_subscription(created.name, host=HOST)
    with pytest.raises(MeetNotFound):
        events.renew_subscription(created.name, host=HOST)
    assert subscribe(events).name != created.name  # a new one can be made


def test_delete_and_deleting_again(events: GoogleMeetEventsGateway) -> None:
    created = subscribe(events)
    events.delete_subscription(created.name, host=HOST)
    with pytest.raises(MeetNotFound):
        events.get_subscription(created.name, host=HOST)
    events.delete_subscription(created.name, host=HOST)  # already gone: done
    with pytest.raises(MeetNotFound):
        events.reactivate_subscription(created.name, host=HOST)


def test_another_hosts_subscription_is_refused(events: GoogleMeetEventsGateway) -> None:
    created = subscribe(events)
    with pytest.raises(MeetConfigurationError):
        events.get_subscription(created.name, host=OTHER_HOST)
    with pytest.raises(MeetConfigurationError):
        events.create_subscription(host=OTHER_HOST, user=user_id(HOST), topic=TOPIC)


# ---------------------------------------------------------------- credentials refused

class RefusedCredentials(google.auth.credentials.Credentials):
    def refresh(self, request: Any) -> None:
        raise RefreshError("unauthorized_client: Client is unauthorized to retrieve access tokens")


@pytest.mark.parametrize("credentials", [RefusedCredentials, AnonymousCredentials])
def test_refused_credentials_name_the_scopes_to_delegate(live: Flask, credentials: type) -> None:
    settings = live.extensions[KEY].settings
    gateway = GoogleMeetEventsGateway(lambda host, scopes: credentials(),
                                      endpoint=settings.base_url + "/sandbox/google/workspaceevents/",
                                      userinfo_endpoint=settings.base_url + "/sandbox/google/oauth2/v3/userinfo")
    for attempt in (lambda: gateway.user_of(HOST),
                    lambda: gateway.create_subscription(host=HOST, user=user_id(HOST), topic=TOPIC),
                    lambda: gateway.get_subscription("subscriptions/x", host=HOST)):
        with pytest.raises(MeetConfigurationError) as raised:
            attempt()
        message = str(raised.value)
        assert "scopes: " + ", ".join((*SCOPES, *EVENT_SCOPES)) + "." in message
        assert "Workspace Events API" in message and HOST in message


def test_the_token_asks_for_the_events_scopes_only(live: Flask) -> None:
    asked: list[tuple[str, ...]] = []
    gateway = GoogleMeetEventsGateway(lambda host, scopes: (asked.append(tuple(scopes)), AnonymousCredentials())[1])
    gateway._credentials(HOST)
    assert asked == [("https://www.googleapis.com/auth/meetings.space.created", *EVENT_SCOPES)]


# ---------------------------------------------------------------- the Meet reads an event names

def reads(host: str, method: str) -> float:
    return REGISTRY.get_sample_value("verify_meet_read_calls_total", {"host": host, "method": method}) or 0.0


def test_the_three_reads_and_every_read_request_is_counted(meet: MeetGateway, sandbox: SandboxGoogle,
                                                           clock: FakeClock) -> None:
    space = meet.create_space(host=HOST)
    start = clock()
    person = sandbox.join(space.meeting_code, email="ana@example.com", display_name="Ana")
    clock.advance(minutes=5)
    sandbox.leave(person)
    record_name = person.rsplit("/participants/", 1)[0]
    methods = ("conferenceRecords.get", "participants.get", "participantSessions.get", "conferenceRecords.list",
               "participants.list", "participantSessions.list", "spaces.get")
    before = {method: reads(HOST, method) for method in methods}

    record = meet.conference(record_name, host=HOST)
    assert (record.name, record.space, record.start, record.end) == (record_name, space.name, start, clock())
    participant = meet.participant(person, host=HOST)
    assert (participant.name, participant.kind, participant.user) == (person, "signed_in", user_id("ana@example.com"))
    assert participant.sessions == () and participant.display_name == "Ana"
    [conference] = meet.attendance(space.name, host=HOST)
    [session_name] = [s.name for p in conference.participants for s in p.sessions]
    session = meet.participant_session(session_name, host=HOST)
    assert (session.name, session.start, session.end) == (session_name, start, clock())
    meet.get_space(space.name, host=HOST)
    with pytest.raises(MeetNotFound):
        meet.conference("conferenceRecords/nope", host=HOST)

    counted = {method: reads(HOST, method) - before[method] for method in methods}
    assert counted == {"conferenceRecords.get": 2, "participants.get": 1, "participantSessions.get": 1,
                       "conferenceRecords.list": 1, "participants.list": 1, "participantSessions.list": 1,
                       "spaces.get": 1}


def test_the_space_belongs_to_the_host_whose_credentials_created_it(meet: MeetGateway,
                                                                     sandbox: SandboxGoogle) -> None:
    space = meet.create_space(host=OTHER_HOST)
    assert sandbox.meet._spaces[space.name.removeprefix("spaces/")].owner == OTHER_HOST
