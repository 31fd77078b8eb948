"""The sandbox's Workspace Events API keeps Google's contract, and its Pub/Sub push delivers Meet events as Google's.

Pushes go through an injected transport (a receiver app's test client) or, where the transport is under
test, over real HTTP to a receiver on loopback. Every Workspace Events answer is validated against the
discovery document's schemas (strict: no field Google does not define)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from flask import Flask, Response, request
from flask.testing import FlaskClient
from google.auth import jwt
from jsonschema import Draft7Validator

from integrations.meet_events import (CONFERENCE_ENDED, CONFERENCE_STARTED, EXPIRATION_REMINDER, EXPIRED,
                                      MEET_EVENT_TYPES, PARTICIPANT_JOINED, PARTICIPANT_LEFT, SUSPENDED, CloudEvent,
                                      event_from_push, user_target)
from integrations.sandbox_google import SandboxGoogle, certs, sandbox_of, sign_push_token
from integrations.sandbox_google.push import new_signing_key
from integrations.sandbox_google.shapes import user_id
from tests.conftest import FakeClock, make_settings
from tests.integration.test_meet_events_adapter import HOST, OTHER_HOST, TOPIC, free_port, serve
from tests.support.google_discovery import _methods, load, validator_for
from verify_service import create_app
from verify_service.registry import KEY
from verify_service.settings import MEET_EVENTS_PATH, SANDBOX_EVENTS

API = "/sandbox/google/workspaceevents/v1"
AS_HOST = {"Authorization": f"Bearer sandbox:{HOST}"}
DOCUMENT = load("workspaceevents.v1")
METHODS = list(_methods(DOCUMENT, SANDBOX_EVENTS["api"]))
ERROR = {"type": "object", "additionalProperties": False, "required": ["error"], "properties": {"error": {
    "type": "object", "additionalProperties": False, "required": ["code", "message", "status"],
    "properties": {"code": {"type": "integer"}, "message": {"type": "string"}, "status": {"type": "string"},
                   "details": {"type": "array", "items": {"type": "object", "required": ["@type"]}}}}}}


class Receiver:
    """The service's push endpoint stand-in: answers the statuses it is given (then 204) and keeps each push."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.received: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.app = Flask("receiver")
        self.app.add_url_rule(MEET_EVENTS_PATH, "receive", self._receive, methods=["POST"])
        self._client = self.app.test_client()

    def _receive(self) -> tuple[str, int]:
        self.received.append((dict(request.headers), request.get_json()))
        return "", self.statuses.pop(0) if self.statuses else 204

    def transport(self, url: str, headers: dict[str, str], body: dict[str, Any]) -> int:
        return self._client.post(urlsplit(url).path, headers=headers, json=body).status_code

    def events(self) -> list[CloudEvent]:
        return [event_from_push(body) for _headers, body in self.received]


def make_app(tmp_path: Path, clock: FakeClock, **settings: Any) -> Flask:
    app = create_app(make_settings(f"sqlite:///{tmp_path / 'push.sqlite3'}", tmp_path, **settings))
    app.extensions[KEY].clock = clock
    return app


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def app(tmp_path: Path, clock: FakeClock, receiver: Receiver) -> Iterator[Flask]:
    app = make_app(tmp_path, clock, meet_events_topic=TOPIC)
    sandbox_of(app).push.transport = receiver.transport
    exchanges: list[tuple[str, str, int, Any]] = []

    @app.after_request
    def _capture(response: Response) -> Response:
        if request.path.startswith(API):
            exchanges.append((request.method, request.path, response.status_code, response.get_json()))
        return response

    yield app
    for exchange in exchanges:  # every Workspace Events answer of the test, against the discovery document
        check(*exchange)
    app.extensions[KEY].engine.dispose()


def check(method: str, path: str, status: int, body: Any) -> None:
    if status >= 400:
        Draft7Validator(ERROR).validate(body)
        assert body["error"]["code"] == status
        return
    [found] = [m for m in METHODS if m.http_method == method and m.pattern.fullmatch(path)]
    validator_for(DOCUMENT, found.response or "Empty").validate(body)
    if found.response == "Operation" and "name" in body.get("response", {}):  # the Subscription it carries
        validator_for(DOCUMENT, "Subscription").validate({k: v for k, v in body["response"].items() if k != "@type"})


@pytest.fixture
def sandbox(app: Flask) -> SandboxGoogle:
    return sandbox_of(app)


def subscription_body(host: str = HOST, *, topic: str = TOPIC, types: tuple[str, ...] = MEET_EVENT_TYPES,
                      **more: Any) -> dict[str, Any]:
    return {"targetResource": user_target(user_id(host)), "eventTypes": list(types),
            "notificationEndpoint": {"pubsubTopic": topic}, **more}


def subscribe(sandbox: SandboxGoogle, host: str = HOST, **options: Any) -> dict[str, Any]:
    response: dict[str, Any] = sandbox.events.create(subscription_body(host, **options), host)["response"]
    return {key: value for key, value in response.items() if key != "@type"}


def space(sandbox: SandboxGoogle, owner: str | None = HOST) -> dict[str, Any]:
    return sandbox.meet.create_space({}, "http://127.0.0.1/sandbox/meet/", owner=owner)


# ---------------------------------------------------------------- Meet events

def test_a_subscribed_hosts_meeting_is_pushed_in_order(sandbox: SandboxGoogle, receiver: Receiver,
                                                       clock: FakeClock) -> None:
    sub = subscribe(sandbox)
    room = space(sandbox)
    start = clock()
    ana = sandbox.join(room["meetingCode"], email="ana@example.com", display_name="Ana")
    rita = sandbox.join(room["meetingCode"], email="rita@corp.example", display_name="Rita", label="reviewer")
    clock.advance(minutes=5)
    sandbox.leave(ana)
    clock.advance(minutes=1)
    sandbox.leave(rita)
    assert sandbox.push.flush(10)

    events = receiver.events()
    assert [event.type for event in events] == [CONFERENCE_STARTED, PARTICIPANT_JOINED, PARTICIPANT_JOINED,
                                                PARTICIPANT_LEFT, PARTICIPANT_LEFT, CONFERENCE_ENDED]
    record = ana.rsplit("/participants/", 1)[0]
    sessions = {person: sandbox.meet.list_sessions(*person.split("/")[1::2], None, None, None)
                ["participantSessions"][0]["name"] for person in (ana, rita)}
    assert [event.data for event in events] == [
        {"conferenceRecord": {"name": record}}, {"participantSession": {"name": sessions[ana]}},
        {"participantSession": {"name": sessions[rita]}}, {"participantSession": {"name": sessions[ana]}},
        {"participantSession": {"name": sessions[rita]}}, {"conferenceRecord": {"name": record}}]
    assert [event.time for event in events] == [start, start, start, start + dt.timedelta(minutes=5),
                                                start + dt.timedelta(minutes=6), start + dt.timedelta(minutes=6)]
    assert {event.subscription for event in events} == {sub["name"]}
    assert {event.subject for event in events} == {user_target(user_id(HOST))}
    assert len({event.id for event in events}) == 6
    bodies = [body for _headers, body in receiver.received]
    assert {body["subscription"] for body in bodies} == {"projects/sandbox/subscriptions/meet-events-push"}
    assert len({body["message"]["messageId"] for body in bodies}) == 6
    assert all(headers["Authorization"].startswith("Bearer ey") for headers, _body in receiver.received)


def test_ending_the_conference_pushes_who_left_then_the_end(sandbox: SandboxGoogle, receiver: Receiver) -> None:
    subscribe(sandbox, types=(PARTICIPANT_LEFT, CONFERENCE_ENDED))  # only these
    room = space(sandbox)
    sandbox.join(room["meetingCode"], email="ana@example.com", display_name="Ana")
    sandbox.meet.end_active_conference(room["name"].removeprefix("spaces/"))
    assert sandbox.push.flush(10)
    assert [event.type for event in receiver.events()] == [PARTICIPANT_LEFT, CONFERENCE_ENDED]


def test_nothing_for_an_unsubscribed_host_an_anonymous_space_another_topic_or_a_suspension(
        sandbox: SandboxGoogle, receiver: Receiver) -> None:
    for room in (space(sandbox, OTHER_HOST), space(sandbox, None)):
        sandbox.leave(sandbox.join(room["meetingCode"], email="ana@example.com", display_name="Ana"))
    subscribe(sandbox, topic="projects/elsewhere/topics/meet")
    room = space(sandbox)
    sandbox.leave(sandbox.join(room["meetingCode"], email="ana@example.com", display_name="Ana"))
    assert sandbox.push.flush(10) and receiver.received == []

    mine = subscribe(sandbox)
    sandbox.events.suspend(mine["name"])
    sandbox.leave(sandbox.join(room["meetingCode"], email="ana@example.com", display_name="Ana"))
    assert sandbox.push.flush(10)
    assert [event.type for event in receiver.events()] == [SUSPENDED]  # and no Meet event


def test_nothing_is_pushed_when_events_are_off(tmp_path: Path, clock: FakeClock, receiver: Receiver) -> None:
    app = make_app(tmp_path, clock)  # no topic
    sandbox = sandbox_of(app)
    sandbox.push.transport, sandbox.push.backoff_base = receiver.transport, 0.01
    assert sandbox.push.config is None
    sub = subscribe(sandbox)  # the API still answers
    room = space(sandbox)
    sandbox.leave(sandbox.join(room["meetingCode"], email="ana@example.com", display_name="Ana"))
    sandbox.events.suspend(sub["name"])
    assert sandbox.push.flush(10) and receiver.received == [] and list(sandbox.push.attempts) == []
    app.extensions[KEY].engine.dispose()


# ---------------------------------------------------------------- lifecycle events

def test_suspension_reminder_and_expiry_are_told(sandbox: SandboxGoogle, receiver: Receiver, client: FlaskClient,
                                                 clock: FakeClock) -> None:
    sub = subscribe(sandbox)
    sandbox.events.suspend(sub["name"], reason="ENDPOINT_NOT_FOUND")
    ok(client.post(f"{API}/{sub['name']}:reactivate", json={}, headers=AS_HOST))
    clock.advance(days=6, hours=13)  # 11 hours left
    assert [s["name"] for s in sandbox.events.subscriptions] == [sub["name"]]
    clock.advance(hours=11)
    assert sandbox.events.subscriptions == []
    assert sandbox.push.flush(10)
    events = receiver.events()
    assert [event.type for event in events] == [SUSPENDED, EXPIRATION_REMINDER, EXPIRED]
    suspended = events[0].data["subscription"]
    assert (suspended["name"], suspended["state"], suspended["suspensionReason"]) == (
        sub["name"], "SUSPENDED", "ENDPOINT_NOT_FOUND")
    assert events[2].time == dt.datetime.fromisoformat(sub["expireTime"])
    assert error(client.get(f"{API}/{sub['name']}", headers=AS_HOST), 404, "NOT_FOUND")
    with pytest.raises(ValueError, match="not a suspension reason"):
        sandbox.events.suspend(subscribe(sandbox)["name"], reason="BORED")


def test_expire_and_forget_are_test_controls(sandbox: SandboxGoogle, receiver: Receiver) -> None:
    first, second = subscribe(sandbox), subscribe(sandbox, OTHER_HOST)
    sandbox.events.expire(first["name"])
    sandbox.events.forget(second["name"])
    assert sandbox.events.subscriptions == []
    assert sandbox.push.flush(10) and [(e.type, e.subscription) for e in receiver.events()] == [(EXPIRED, first["name"])]


# ---------------------------------------------------------------- delivery: tokens, retries

def test_the_push_token_verifies_against_the_certs_served_over_http(tmp_path: Path, clock: FakeClock,
                                                                    receiver: Receiver) -> None:
    port = free_port()
    app = make_app(tmp_path, clock, meet_events_topic=TOPIC, base_url=f"http://127.0.0.1:{port}")
    sandbox = sandbox_of(app)
    sandbox.push.transport = receiver.transport
    with serve(app, port):
        served = requests.get(f"http://127.0.0.1:{port}{SANDBOX_EVENTS['certs']}", timeout=10)
        subscribe(sandbox)
        sandbox.join(space(sandbox)["meetingCode"], email="ana@example.com", display_name="Ana")
        assert sandbox.push.flush(10)
    assert served.status_code == 200 and served.headers["Cache-Control"] == "public, max-age=3600"
    fetched = served.json()
    assert fetched == certs() == sandbox.push.certs()
    audience = f"http://127.0.0.1:{port}{MEET_EVENTS_PATH}"
    for headers, _body in receiver.received:
        token = headers["Authorization"].removeprefix("Bearer ")
        claims = jwt.decode(token, certs=fetched, audience=audience)
        assert (claims["iss"], claims["email"], claims["email_verified"], claims["exp"] - claims["iat"]) == (
            "https://accounts.google.com", SANDBOX_EVENTS["account"], True, 3600) and claims["sub"].isdigit()
        assert jwt.decode_header(token)["kid"] in fetched
        with pytest.raises(ValueError):
            jwt.decode(token, certs=fetched, audience="https://someone-else.example/push")
    assert len(receiver.received) == 2  # started, joined
    stranger = sign_push_token(audience, SANDBOX_EVENTS["account"], now=dt.datetime.now(dt.timezone.utc),
                               key=new_signing_key())
    with pytest.raises(ValueError):
        jwt.decode(stranger, certs=fetched, audience=audience)
    mine = sign_push_token(audience, "me@example.com", now=dt.datetime.now(dt.timezone.utc))
    assert jwt.decode(mine, certs=fetched, audience=audience)["email"] == "me@example.com"
    app.extensions[KEY].engine.dispose()


def test_a_500_from_the_receiver_is_retried_over_real_http(tmp_path: Path, clock: FakeClock) -> None:
    receiver = Receiver(500)
    receiver_port = free_port()
    app = make_app(tmp_path, clock, meet_events_topic=TOPIC, base_url=f"http://127.0.0.1:{receiver_port}")
    sandbox = sandbox_of(app)  # the default transport: a real POST
    sandbox.push.backoff_base = 0.05
    with serve(receiver.app, receiver_port):
        subscribe(sandbox, types=(CONFERENCE_STARTED,))
        sandbox.join(space(sandbox)["meetingCode"], email="ana@example.com", display_name="Ana")
        assert sandbox.push.flush(10)
    assert [attempt.status for attempt in sandbox.push.attempts] == [500, 204]
    first, second = (body for _headers, body in receiver.received)
    assert first == second  # the same message again
    app.extensions[KEY].engine.dispose()


def test_no_answer_is_retried_then_given_up_and_logged(sandbox: SandboxGoogle, caplog: pytest.LogCaptureFixture,
                                                       receiver: Receiver) -> None:
    def unreachable(url: str, headers: dict[str, str], body: dict[str, Any]) -> int:
        raise requests.ConnectionError("connection refused")

    sandbox.push.transport = unreachable
    sandbox.push.backoff_base, sandbox.push.max_attempts = 0.01, 3
    subscribe(sandbox, types=(CONFERENCE_STARTED,))
    with caplog.at_level(logging.WARNING, logger="integrations.sandbox_google.push"):
        sandbox.join(space(sandbox)["meetingCode"], email="ana@example.com", display_name="Ana")
        assert sandbox.push.flush(10)
    assert [(attempt.attempt, attempt.status) for attempt in sandbox.push.attempts] == [(n, None) for n in (1, 2, 3)]
    assert "gave up after 3 attempts" in caplog.text
    sandbox.push.transport = receiver.transport  # the worker is still there for the next event
    sandbox.leave(sandbox.join(space(sandbox)["meetingCode"], email="ana@example.com", display_name="Ana"))
    assert sandbox.push.flush(10) and [event.type for event in receiver.events()] == [CONFERENCE_STARTED]


# ---------------------------------------------------------------- the API over HTTP

def ok(response: Any) -> Any:
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def error(response: Any, status: int, code: str) -> str:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.get_json()["error"]["status"] == code
    return str(response.get_json()["error"]["message"])


def test_the_api_round_trip_matches_the_discovery_document(client: FlaskClient, clock: FakeClock) -> None:
    operation = ok(client.post(f"{API}/subscriptions", json=subscription_body(ttl="86400s"), headers=AS_HOST))
    assert operation["done"] is True and operation["name"].startswith("operations/")
    sub = operation["response"]
    assert sub["state"] == "ACTIVE" and sub["expireTime"] == "2026-11-23T09:00:00Z"
    assert sub["authority"] == user_id(HOST)
    assert ok(client.get(f"{API}/{sub['name']}", headers=AS_HOST)) == {k: v for k, v in sub.items() if k != "@type"}
    assert ok(client.get(f"{API}/{operation['name']}", headers=AS_HOST)) == operation
    found = ok(client.get(f"{API}/subscriptions", headers=AS_HOST, query_string={
        "filter": f'event_types:"{PARTICIPANT_JOINED}" AND target_resource="{sub["targetResource"]}"'}))
    assert [s["name"] for s in found["subscriptions"]] == [sub["name"]]
    either = f'(event_types:"{CONFERENCE_STARTED}" OR event_types:"google.workspace.chat.message.v1.created")'
    assert ok(client.get(f"{API}/subscriptions", headers=AS_HOST, query_string={"filter": either}))["subscriptions"]
    assert ok(client.get(f"{API}/subscriptions", headers={"Authorization": f"Bearer sandbox:{OTHER_HOST}"},
                         query_string={"filter": either})) == {}
    clock.advance(hours=1)
    patched = ok(client.patch(f"{API}/{sub['name']}?updateMask=expire_time", json={
        "expireTime": "2026-11-25T09:00:00Z"}, headers=AS_HOST))["response"]
    assert patched["expireTime"] == "2026-11-25T09:00:00Z" and patched["updateTime"] == "2026-11-22T10:00:00Z"
    deleted = ok(client.delete(f"{API}/{sub['name']}", headers=AS_HOST))
    assert deleted["response"] == {"@type": "type.googleapis.com/google.protobuf.Empty"}
    assert ok(client.delete(f"{API}/{sub['name']}?allowMissing=true", headers=AS_HOST))["done"] is True
    error(client.delete(f"{API}/{sub['name']}", headers=AS_HOST), 404, "NOT_FOUND")


def test_already_exists_names_the_current_subscription(client: FlaskClient) -> None:
    first = ok(client.post(f"{API}/subscriptions", json=subscription_body(), headers=AS_HOST))["response"]
    again = client.post(f"{API}/subscriptions", json=subscription_body(types=tuple(reversed(MEET_EVENT_TYPES))),
                        headers=AS_HOST)
    error(again, 409, "ALREADY_EXISTS")
    [info] = again.get_json()["error"]["details"]
    assert info["@type"] == "type.googleapis.com/google.rpc.ErrorInfo"
    assert info["metadata"] == {"current_subscription": first["name"]}
    ok(client.post(f"{API}/subscriptions", json=subscription_body(types=(PARTICIPANT_JOINED,)), headers=AS_HOST))


@pytest.mark.parametrize(("body", "status", "code", "words"), [
    ({"invented": 1}, 400, "INVALID_ARGUMENT", 'Unknown name "invented"'),
    ({"eventTypes": "google.workspace.meet.participant.v2.joined"}, 400, "INVALID_ARGUMENT", "Invalid value"),
    ({"targetResource": "//meet.googleapis.com/spaces/abc"}, 400, "INVALID_ARGUMENT", "targets a user"),
    ({"targetResource": "//cloudidentity.googleapis.com/users/42"}, 400, "INVALID_ARGUMENT", "no such user"),
    ({"targetResource": user_target(user_id(OTHER_HOST))}, 403, "PERMISSION_DENIED", "cannot subscribe"),
    ({"eventTypes": []}, 400, "INVALID_ARGUMENT", "event_types is required"),
    ({"eventTypes": ["google.workspace.chat.message.v1.created"]}, 400, "INVALID_ARGUMENT", "Invalid event types"),
    ({"notificationEndpoint": {"pubsubTopic": "meet-events"}}, 400, "INVALID_ARGUMENT", "pubsub_topic"),
    ({"ttl": "a week"}, 400, "INVALID_ARGUMENT", "subscription.ttl"),
    ({"ttl": "60s", "expireTime": "2030-01-01T00:00:00Z"}, 400, "INVALID_ARGUMENT", "Only one of"),
    ({"expireTime": "2020-01-01T00:00:00Z"}, 400, "INVALID_ARGUMENT", "in the future"),
])
def test_a_bad_create_is_refused_and_nothing_is_made(client: FlaskClient, sandbox: SandboxGoogle,
                                                     body: dict[str, Any], status: int, code: str, words: str) -> None:
    assert words in error(client.post(f"{API}/subscriptions", json={**subscription_body(), **body},
                                      headers=AS_HOST), status, code)
    assert sandbox.events.subscriptions == []


def test_the_api_wants_the_callers_identity_and_checks_its_input(client: FlaskClient,
                                                                 sandbox: SandboxGoogle) -> None:
    error(client.post(f"{API}/subscriptions", json=subscription_body()), 401, "UNAUTHENTICATED")
    error(client.get(SANDBOX_EVENTS["userinfo"]), 401, "UNAUTHENTICATED")
    assert ok(client.get(SANDBOX_EVENTS["userinfo"], headers=AS_HOST)) == {
        "sub": user_id(HOST).removeprefix("users/"), "email": HOST, "email_verified": True}
    sub = subscribe(sandbox)
    for refused in (client.get(f"{API}/subscriptions", headers=AS_HOST),
                    client.get(f"{API}/subscriptions", headers=AS_HOST, query_string={"filter": 'state="ACTIVE"'}),
                    client.patch(f"{API}/{sub['name']}?updateMask=notification_endpoint", json={}, headers=AS_HOST),
                    client.patch(f"{API}/{sub['name']}", json={}, headers=AS_HOST),
                    client.post(f"{API}/subscriptions", data="[1]", headers=AS_HOST)):
        error(refused, 400, "INVALID_ARGUMENT")
    error(client.post(f"{API}/{sub['name']}:reactivate", json={}, headers=AS_HOST), 400, "FAILED_PRECONDITION")
    error(client.post(f"{API}/{sub['name']}:pause", json={}, headers=AS_HOST), 404, "NOT_FOUND")
    error(client.get(f"{API}/{sub['name']}", headers={"Authorization": f"Bearer sandbox:{OTHER_HOST}"}),
          403, "PERMISSION_DENIED")
    error(client.get(f"{API}/operations/nope", headers=AS_HOST), 404, "NOT_FOUND")
    assert sandbox.events.subscriptions == [sub]
