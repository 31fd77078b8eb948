"""The Meet + Calendar sandbox keeps Google's contract.

Every response the emulator sends during these tests is validated against
the response schema of the discovery document's method (the documents
``google-api-python-client`` ships, converted to strict JSON Schema by
tests/support/google_discovery.py: no field the document does not define). Error responses are checked against
Google's two error shapes. The same documents drive ``googleapiclient`` over
real HTTP with anonymous credentials, as the real gateway does.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, Response, request
from flask.testing import FlaskClient
from google.auth.credentials import AnonymousCredentials
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from jsonschema.exceptions import ValidationError
from werkzeug.serving import make_server

from integrations.sandbox_google import SandboxGoogle, sandbox_of
from tests.conftest import FakeClock, make_settings
from tests.support.google_discovery import VALIDATORS, Checked, Exchange, check
from verify_service import create_app
from verify_service.registry import KEY

MEET = "/sandbox/google/meet/v2"
CALENDAR = "/sandbox/google/calendar/v3/calendars/host-1%40sandbox.example/events"
EVENT_ID = "vs0123456789abcdefghijklmnopqrstuv"

# Every method the gateway relies on must have been validated at least once (see the scenario test).
REQUIRED_METHODS = {
    "meet.spaces.create", "meet.spaces.get", "meet.spaces.patch", "meet.spaces.endActiveConference",
    "meet.spaces.members.create", "meet.spaces.members.list",
    "meet.conferenceRecords.list", "meet.conferenceRecords.get", "meet.conferenceRecords.participants.list",
    "meet.conferenceRecords.participants.participantSessions.list",
    "calendar.events.insert", "calendar.events.get", "calendar.events.patch", "calendar.events.delete",
}


# ---------------------------------------------------------------- the app, with every response checked

@pytest.fixture
def checked() -> Checked:
    return Checked()


@pytest.fixture
def app(tmp_path: Path, checked: Checked, clock: FakeClock) -> Iterator[Flask]:
    app = create_app(make_settings(f"sqlite:///{tmp_path / 'sandbox.sqlite3'}", tmp_path, meet_backend="sandbox"))
    app.extensions[KEY].clock = clock

    @app.after_request
    def _capture(response: Response) -> Response:
        if request.path.startswith("/sandbox/google/"):
            checked.exchanges.append(Exchange(request.method, request.path, response.status_code,
                                              response.get_data()))
        return response

    yield app
    checked.verify()  # every emulator response of every test, not only the ones a test looks at
    app.extensions[KEY].engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def sandbox(app: Flask) -> SandboxGoogle:
    return sandbox_of(app)


def ok(response: Any) -> Any:
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def error(response: Any, status: int, code: str) -> str:
    """A Meet error with this HTTP status and canonical code (Calendar: reason); returns the message."""
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()["error"]
    assert body.get("status", body.get("errors", [{}])[0].get("reason")) == code
    return body["message"]


def new_space(client: FlaskClient, **config: str) -> dict[str, Any]:
    return ok(client.post(f"{MEET}/spaces?alt=json", json={"config": config} if config else {}))


def event_body(**changes: Any) -> dict[str, Any]:
    body = {"id": EVENT_ID, "summary": "Identity verification call", "description": "Join: http://x/meet",
            "location": "http://x/meet",
            "start": {"dateTime": "2026-11-23T10:00:00+00:00", "timeZone": "Europe/Lisbon"},
            "end": {"dateTime": "2026-11-23T10:30:00+00:00", "timeZone": "Europe/Lisbon"},
            "attendees": [{"email": "ana@example.com"}, {"email": "rev@example.com"}],
            "reminders": {"useDefault": False, "overrides": [{"method": "email", "minutes": 1440},
                                                             {"method": "popup", "minutes": 15}]}}
    body.update(changes)
    return body


# ---------------------------------------------------------------- the converter is strict

def test_the_converted_schemas_refuse_invented_fields_bad_enums_and_local_times() -> None:
    space = VALIDATORS[("meet", "Space")]
    space.validate({"name": "spaces/a", "config": {"accessType": "RESTRICTED"}})
    with pytest.raises(ValidationError):
        space.validate({"name": "spaces/a", "invented": True})
    with pytest.raises(ValidationError):
        space.validate({"config": {"accessType": "SOMETIMES"}})
    with pytest.raises(ValidationError):
        VALIDATORS[("meet", "ConferenceRecord")].validate({"startTime": "2026-11-22T09:00:00+01:00"})
    with pytest.raises(ValidationError):
        VALIDATORS[("calendar", "Event")].validate({"attendees": [{"email": "a@b.c", "role": "x"}]})
    with pytest.raises(ValidationError):
        VALIDATORS[("calendar", "Event")].validate({"start": {"dateTime": "2026-11-23 10:00"}})
    assert check(Exchange("GET", f"{MEET}/spaces/abc", 200, b'{"name": "spaces/abc"}')) == "meet.spaces.get"
    with pytest.raises(AssertionError):
        check(Exchange("GET", f"{MEET}/spacez/abc", 200, b"{}"))


# ---------------------------------------------------------------- one scenario through every method

def _space_with_members(client: FlaskClient) -> tuple[str, str]:
    space = new_space(client, accessType="RESTRICTED", moderation="ON", entryPointAccess="CREATOR_APP_ONLY")
    space_id, code = space["name"].removeprefix("spaces/"), space["meetingCode"]
    assert re.fullmatch(r"[a-z]{3}-[a-z]{4}-[a-z]{3}", code)
    assert space["meetingUri"] == f"http://localhost/sandbox/meet/{code}"
    assert space["config"]["accessType"] == "RESTRICTED" and space["config"]["moderation"] == "ON"
    assert space["config"]["artifactConfig"]["recordingConfig"] == {"autoRecordingGeneration": "OFF"}
    assert ok(client.get(f"{MEET}/spaces/{code}?$.xgafv=2&alt=json")) == space  # the meeting-code alias
    patched = ok(client.patch(f"{MEET}/spaces/{space_id}?updateMask=config.access_type",
                              json={"config": {"accessType": "TRUSTED"}}))
    assert patched["config"]["accessType"] == "TRUSTED" and patched["config"]["moderation"] == "ON"
    member = ok(client.post(f"{MEET}/spaces/{space_id}/members", json={"email": "ana@example.com"}))
    assert member["name"].startswith(f"spaces/{space_id}/members/") and "role" not in member
    ok(client.post(f"{MEET}/spaces/{space_id}/members", json={"email": "rev@example.com", "role": "COHOST"}))
    assert len(ok(client.get(f"{MEET}/spaces/{space_id}/members"))["members"]) == 2
    return space_id, code


def _call(client: FlaskClient, sandbox: SandboxGoogle, clock: FakeClock, space_id: str, code: str) -> None:
    freelancer = sandbox.join(code, email="ana@example.com", display_name="Ana Lima")
    clock.advance(minutes=1)
    reviewer = sandbox.join(code, email="rev@example.com", display_name="Rui Reviewer")
    live = ok(client.get(f"{MEET}/spaces/{space_id}"))["activeConference"]["conferenceRecord"]
    assert freelancer.startswith(live + "/participants/")
    clock.advance(minutes=5)
    sandbox.leave(freelancer)
    clock.advance(minutes=1)
    assert sandbox.join(code, email="ANA@example.com", display_name="Ana Lima") == freelancer  # same person
    clock.advance(minutes=10)
    assert ok(client.post(f"{MEET}/spaces/{space_id}:endActiveConference?alt=json", json={})) == {}

    records = ok(client.get(f"{MEET}/conferenceRecords", query_string={"filter": f'space.name = "spaces/{space_id}"'}))
    assert [r["name"] for r in records["conferenceRecords"]] == [live]
    record = ok(client.get(f"{MEET}/{live}"))
    assert record["startTime"] == "2026-11-22T09:00:00Z" and record["endTime"] == "2026-11-22T09:17:00Z"
    people = ok(client.get(f"{MEET}/{live}/participants"))["participants"]
    assert [p["name"] for p in people] == [reviewer, freelancer]  # latest joiner first
    assert people[1]["signedinUser"]["displayName"] == "Ana Lima"
    assert people[1]["signedinUser"]["user"].startswith("users/")
    assert people[1]["latestEndTime"] == "2026-11-22T09:17:00Z"
    sessions = ok(client.get(f"{MEET}/{freelancer}/participantSessions"))["participantSessions"]
    assert [(s["startTime"], s["endTime"]) for s in sessions] == [
        ("2026-11-22T09:07:00Z", "2026-11-22T09:17:00Z"), ("2026-11-22T09:00:00Z", "2026-11-22T09:06:00Z")]


def _invite(client: FlaskClient, sandbox: SandboxGoogle) -> None:
    event = ok(client.post(f"{CALENDAR}?sendUpdates=all&alt=json", json=event_body()))
    assert event["id"] == EVENT_ID and event["status"] == "confirmed" and event["htmlLink"]
    assert ok(client.get(f"{CALENDAR}/{EVENT_ID}")) == event
    moved = ok(client.patch(f"{CALENDAR}/{EVENT_ID}?sendUpdates=all", json={
        "start": {"dateTime": "2026-11-24T10:00:00Z", "timeZone": "UTC"},
        "end": {"dateTime": "2026-11-24T10:30:00Z", "timeZone": "UTC"}}))
    assert moved["start"]["dateTime"] == "2026-11-24T10:00:00Z" and moved["sequence"] == 1
    assert client.delete(f"{CALENDAR}/{EVENT_ID}?sendUpdates=none").status_code == 204
    assert [(n.action, n.send_updates) for n in sandbox.notifications] == [
        ("created", "all"), ("updated", "all"), ("cancelled", "none")]


def test_a_verification_call_exercises_every_method_with_valid_responses(
        client: FlaskClient, sandbox: SandboxGoogle, checked: Checked, clock: FakeClock) -> None:
    space_id, code = _space_with_members(client)
    _call(client, sandbox, clock, space_id, code)
    _invite(client, sandbox)
    checked.verify()
    assert REQUIRED_METHODS <= checked.methods, REQUIRED_METHODS - checked.methods


# ---------------------------------------------------------------- Google's behaviour, method by method

def test_space_defaults_bad_enums_unknown_fields_and_unknown_spaces(client: FlaskClient) -> None:
    config = new_space(client)["config"]
    assert config["accessType"] == "TRUSTED" and config["entryPointAccess"] == "ALL"
    assert new_space(client, accessType="ACCESS_TYPE_UNSPECIFIED")["config"]["accessType"] == "TRUSTED"
    message = error(client.post(f"{MEET}/spaces", json={"config": {"accessType": "SOMETIMES"}}),
                    400, "INVALID_ARGUMENT")
    assert "space.config.access_type" in message
    assert "Unknown name" in error(client.post(f"{MEET}/spaces", json={"confg": {}}), 400, "INVALID_ARGUMENT")
    error(client.post(f"{MEET}/spaces", data="{", content_type="application/json"), 400, "INVALID_ARGUMENT")
    error(client.get(f"{MEET}/spaces/nope"), 404, "NOT_FOUND")
    error(client.patch(f"{MEET}/spaces/nope", json={}), 404, "NOT_FOUND")
    error(client.post(f"{MEET}/spaces/nope:endActiveConference", json={}), 404, "NOT_FOUND")


def test_patch_masks_reset_unset_fields_and_refuse_unknown_paths(client: FlaskClient) -> None:
    space = new_space(client, accessType="RESTRICTED", moderation="ON")
    url = f"{MEET}/{space['name']}"
    assert ok(client.patch(url, json={"config": {"moderation": "OFF"}}))["config"]["accessType"] == "RESTRICTED"
    reset = ok(client.patch(f"{url}?updateMask=config.accessType", json={}))["config"]
    assert reset["accessType"] == "TRUSTED"
    whole = ok(client.patch(f"{url}?updateMask=*", json={"config": {"accessType": "OPEN"}}))["config"]
    assert whole["accessType"] == "OPEN" and whole["moderation"] == "OFF"
    error(client.patch(f"{url}?updateMask=config.colour", json={}), 400, "INVALID_ARGUMENT")
    error(client.patch(f"{url}?updateMask=meetingCode", json={}), 400, "INVALID_ARGUMENT")


def test_members_need_an_email_and_are_unique(client: FlaskClient) -> None:
    space = new_space(client)
    url = f"{MEET}/{space['name']}/members"
    member = ok(client.post(url, json={"email": "rev@example.com", "role": "COHOST"}))
    error(client.post(url, json={"email": "REV@example.com"}), 409, "ALREADY_EXISTS")
    error(client.post(url, json={"role": "COHOST"}), 400, "INVALID_ARGUMENT")
    error(client.post(url, json={"email": "x@example.com", "role": "OWNER"}), 400, "INVALID_ARGUMENT")
    assert ok(client.get(f"{MEET}/{member['name']}")) == member
    assert ok(client.delete(f"{MEET}/{member['name']}")) == {}
    assert ok(client.get(url)) == {}  # proto3 JSON leaves an empty list out


def test_ending_needs_a_live_conference_and_disconnects_everyone(
        client: FlaskClient, sandbox: SandboxGoogle, clock: FakeClock) -> None:
    space = new_space(client)
    end = f"{MEET}/{space['name']}:endActiveConference"
    assert error(client.post(end, json={}), 400, "FAILED_PRECONDITION")
    first = sandbox.join(space["meetingCode"], display_name="Guest", signed_in=False)
    clock.advance(minutes=3)
    ok(client.post(end, json={}))
    assert "activeConference" not in ok(client.get(f"{MEET}/{space['name']}"))
    participant = ok(client.get(f"{MEET}/{first}"))
    assert participant["anonymousUser"] == {"displayName": "Guest"}
    assert participant["latestEndTime"] == "2026-11-22T09:03:00Z"
    second = sandbox.join(space["meetingCode"], display_name="Guest", signed_in=False)
    assert second.split("/")[1] != first.split("/")[1]  # a new conference record
    error(client.post(f"{MEET}/spaces/{space['name'].split('/')[1]}:startActiveConference", json={}),
          404, "NOT_FOUND")


def test_the_last_person_out_ends_the_conference(client: FlaskClient, sandbox: SandboxGoogle,
                                                 clock: FakeClock) -> None:
    space = new_space(client)
    ana = sandbox.join(space["meetingCode"], email="ana@example.com", display_name="Ana")
    rui = sandbox.join(space["meetingCode"], email="rui@example.com", display_name="Rui")
    record = ana.rsplit("/", 2)[0]
    clock.advance(minutes=2)
    sandbox.leave(ana)
    assert "endTime" not in ok(client.get(f"{MEET}/{record}"))
    live = ok(client.get(f"{MEET}/{record}/participants", query_string={"filter": "latest_end_time IS NULL"}))
    assert [p["name"] for p in live["participants"]] == [rui]
    clock.advance(minutes=2)
    sandbox.leave(rui)
    ended = ok(client.get(f"{MEET}/{record}"))
    assert ended["endTime"] == "2026-11-22T09:04:00Z" and ended["expireTime"] == "2026-12-22T09:04:00Z"
    active = ok(client.get(f"{MEET}/conferenceRecords", query_string={"filter": "end_time IS NULL"}))
    assert active == {}


def test_filters_and_pages(client: FlaskClient, sandbox: SandboxGoogle, clock: FakeClock) -> None:
    space = new_space(client)
    for _ in range(3):
        sandbox.leave(sandbox.join(space["meetingCode"], display_name="Guest", signed_in=False))
        clock.advance(minutes=1)
    new_space(client)
    by_code = ok(client.get(f"{MEET}/conferenceRecords",
                            query_string={"filter": f'space.meeting_code = "{space["meetingCode"]}"'}))
    names = [r["name"] for r in by_code["conferenceRecords"]]
    assert len(names) == 3
    paged, token = [], None
    while True:
        page = ok(client.get(f"{MEET}/conferenceRecords", query_string={
            "filter": f'space.name = "{space["name"]}"', "pageSize": 2, **({"pageToken": token} if token else {})}))
        paged += [r["name"] for r in page["conferenceRecords"]]
        token = page.get("nextPageToken")
        if not token:
            break
    assert paged == names
    since = ok(client.get(f"{MEET}/conferenceRecords",
                          query_string={"filter": 'start_time >= "2026-11-22T09:01:00Z"'}))
    assert len(since["conferenceRecords"]) == 2
    for bad in ('space.name = spaces/x', 'space.colour = "red"', 'start_time > "yesterday"'):
        error(client.get(f"{MEET}/conferenceRecords", query_string={"filter": bad}), 400, "INVALID_ARGUMENT")
    error(client.get(f"{MEET}/conferenceRecords?pageToken=nonsense"), 400, "INVALID_ARGUMENT")
    error(client.get(f"{MEET}/conferenceRecords?pageSize=-1"), 400, "INVALID_ARGUMENT")
    error(client.get(f"{MEET}/conferenceRecords/nope/participants"), 404, "NOT_FOUND")


def test_events_ids_duplicates_deletion_and_times(client: FlaskClient, sandbox: SandboxGoogle) -> None:
    for bad_id in ("vs01", "VS0123456789", "vs0123456789w", "vs_0123456789"):
        error(client.post(CALENDAR, json=event_body(id=bad_id)), 400, "invalid")
    error(client.post(CALENDAR, json=event_body(end=None)), 400, "required")
    error(client.post(CALENDAR, json=event_body(start={"dateTime": "2026-11-23T10:00:00"})), 400, "required")
    error(client.post(CALENDAR, json=event_body(end={"dateTime": "2026-11-23T09:00:00Z"})), 400, "timeRangeEmpty")
    error(client.post(CALENDAR, json=event_body(reminders={"useDefault": True, "overrides": [
        {"method": "email", "minutes": 10}]})), 400, "cannotUseDefaultRemindersAndSpecifyOverride")
    error(client.post(f"{CALENDAR}?sendUpdates=everyone", json=event_body()), 400, "invalidParameter")
    assert sandbox.calendar.events() == []

    event = ok(client.post(f"{CALENDAR}?sendUpdates=all", json=event_body(colour="red")))
    assert event["start"] == {"dateTime": "2026-11-23T10:00:00Z", "timeZone": "Europe/Lisbon"}
    assert [a["responseStatus"] for a in event["attendees"]] == ["needsAction", "needsAction"]
    error(client.post(CALENDAR, json=event_body()), 409, "duplicate")
    error(client.get(f"{CALENDAR}/vs99999"), 404, "notFound")
    error(client.patch(f"{CALENDAR}/vs99999", json={}), 404, "notFound")
    error(client.delete(f"{CALENDAR}/vs99999"), 404, "notFound")
    assert client.delete(f"{CALENDAR}/{EVENT_ID}").status_code == 204
    error(client.delete(f"{CALENDAR}/{EVENT_ID}"), 410, "deleted")
    assert ok(client.get(f"{CALENDAR}/{EVENT_ID}"))["status"] == "cancelled"  # Google keeps it readable
    error(client.post(CALENDAR, json=event_body()), 409, "duplicate")  # an id is never reused


def test_the_emulator_follows_the_apps_clock(app: Flask, client: FlaskClient, sandbox: SandboxGoogle,
                                             clock: FakeClock) -> None:
    space = new_space(client)
    clock.advance(hours=2, microseconds=1500)
    participant = sandbox.join(space["meetingCode"], email="ana@example.com", display_name="Ana")
    assert ok(client.get(f"{MEET}/{participant}"))["earliestStartTime"] == "2026-11-22T11:00:00.001500Z"


# ---------------------------------------------------------------- the real client library, over real HTTP

@pytest.fixture
def served(app: Flask) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


def test_googleapiclient_with_anonymous_credentials_talks_to_the_sandbox(served: str, sandbox: SandboxGoogle,
                                                                          checked: Checked) -> None:
    credentials = AnonymousCredentials()
    meet = build("meet", "v2", credentials=credentials, static_discovery=True, cache_discovery=False,
                 client_options={"api_endpoint": f"{served}/sandbox/google/meet/"})
    calendar = build("calendar", "v3", credentials=credentials, static_discovery=True, cache_discovery=False,
                     client_options={"api_endpoint": f"{served}/sandbox/google/calendar/v3/"})
    space = meet.spaces().create(body={"config": {"accessType": "RESTRICTED"}}).execute()
    assert space["meetingUri"].startswith(f"{served}/sandbox/meet/")
    meet.spaces().members().create(parent=space["name"], body={"email": "ana@example.com"}).execute()
    with pytest.raises(HttpError) as duplicate:
        meet.spaces().members().create(parent=space["name"], body={"email": "ana@example.com"}).execute()
    assert duplicate.value.status_code == 409
    participant = sandbox.join(space["meetingCode"], email="ana@example.com", display_name="Ana")
    meet.spaces().endActiveConference(name=space["name"], body={}).execute()
    records = meet.conferenceRecords().list(filter=f'space.name = "{space["name"]}"').execute()
    sessions = meet.conferenceRecords().participants().participantSessions().list(parent=participant).execute()
    assert len(records["conferenceRecords"]) == 1 and "endTime" in sessions["participantSessions"][0]

    events = calendar.events()
    events.insert(calendarId="host-1@sandbox.example", body=event_body(), sendUpdates="all").execute()
    events.patch(calendarId="host-1@sandbox.example", eventId=EVENT_ID, body={"summary": "Moved"}).execute()
    events.delete(calendarId="host-1@sandbox.example", eventId=EVENT_ID, sendUpdates="all").execute()
    with pytest.raises(HttpError) as gone:
        events.delete(calendarId="host-1@sandbox.example", eventId=EVENT_ID).execute()
    assert gone.value.status_code == 410 and gone.value.reason == "Resource has been deleted"
    assert len(checked.exchanges) == 10  # all checked against the documents at teardown
