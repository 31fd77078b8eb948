"""The sandbox meeting room: people join and leave with forms, which makes Meet conference records."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from integrations.sandbox_google import SandboxGoogle, sandbox_of
from tests.conftest import FakeClock, make_settings
from verify_service import create_app
from verify_service.registry import KEY

MEET = "/sandbox/google/meet/v2"
SANDBOX_NOTICE = "this is not Google Meet"


@pytest.fixture
def app(tmp_path: Path, clock: FakeClock) -> Iterator[Flask]:
    app = create_app(make_settings(f"sqlite:///{tmp_path / 'room.sqlite3'}", tmp_path, meet_backend="sandbox"))
    app.extensions[KEY].clock = clock
    yield app
    app.extensions[KEY].engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def sandbox(app: Flask) -> SandboxGoogle:
    return sandbox_of(app)


@pytest.fixture
def space(client: FlaskClient) -> dict[str, Any]:
    space = client.post(f"{MEET}/spaces", json={"config": {"accessType": "RESTRICTED"}}).get_json()
    client.post(f"{MEET}/{space['name']}/members", json={"email": "ana@example.com"})
    client.post(f"{MEET}/{space['name']}/members", json={"email": "rev@example.com", "role": "COHOST"})
    return space


def room_path(space: dict[str, Any]) -> str:
    return space["meetingUri"].removeprefix("http://localhost")


def tokens(html: str) -> dict[str, str]:
    """The CSRF token of each form on the page, by the form's action (join / leave)."""
    found = re.findall(r'action="[^"]*/(join|leave)"[^>]*>\s*<input type="hidden" name="csrf_token" value="([^"]+)"',
                       html)
    return dict(found)


def page(client: FlaskClient, space: dict[str, Any]) -> str:
    response = client.get(room_path(space))
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    return response.get_data(as_text=True)


def join(client: FlaskClient, space: dict[str, Any], **form: str) -> Any:
    form.setdefault("csrf_token", tokens(page(client, space))["join"])
    return client.post(f"{room_path(space)}/join", data=form)


def records(client: FlaskClient, space: dict[str, Any]) -> list[dict[str, Any]]:
    body = client.get(f"{MEET}/conferenceRecords", query_string={"filter": f'space.name = "{space["name"]}"'})
    return body.get_json().get("conferenceRecords", [])


def test_the_meeting_uri_opens_a_room_that_says_it_is_a_sandbox(client: FlaskClient, space: dict[str, Any]) -> None:
    assert space["meetingUri"] == f"http://localhost/sandbox/meet/{space['meetingCode']}"
    html = page(client, space)
    assert "Sandbox meeting room — this is not Google Meet; nothing is recorded or transmitted" in html
    assert space["meetingCode"] in html and space["name"] in html
    assert "Nobody is in the room" in html
    assert 'value="ana@example.com"' in html and 'value="rev@example.com"' in html  # forms prefilled from members
    assert "<script" not in html and "http://" not in html.replace(space["meetingUri"], "")
    assert client.get(room_path(space).upper().replace("/SANDBOX/MEET/", "/sandbox/meet/")).status_code == 200


def test_joining_and_leaving_with_the_forms_makes_conference_records(
        client: FlaskClient, space: dict[str, Any], clock: FakeClock) -> None:
    response = join(client, space, **{"as": "freelancer", "email": "ana@example.com", "display_name": "Ana Lima"})
    assert response.status_code == 303 and response.headers["Location"].endswith(room_path(space))
    clock.advance(minutes=1)
    join(client, space, **{"as": "reviewer", "email": "rev@example.com", "display_name": "Rui"})
    join(client, space, **{"as": "anonymous", "display_name": "Visitor"})
    html = page(client, space)
    assert "Ana Lima" in html and "joined as freelancer" in html and "co-host" in html
    assert "Visitor" in html and "would have had to knock" in html
    [record] = records(client, space)
    assert record["startTime"] == "2026-11-22T09:00:00Z" and "endTime" not in record
    people = client.get(f"{MEET}/{record['name']}/participants").get_json()["participants"]
    assert {p.get("signedinUser", p.get("anonymousUser"))["displayName"] for p in people} == {"Ana Lima", "Rui",
                                                                                               "Visitor"}

    clock.advance(minutes=9)
    leave_token = tokens(html)["leave"]
    for participant in re.findall(r'name="participant" value="([^"]+)"', html):
        response = client.post(f"{room_path(space)}/leave",
                               data={"csrf_token": leave_token, "participant": participant})
        assert response.status_code == 303
    [record] = records(client, space)
    assert record["endTime"] == "2026-11-22T09:10:00Z"  # the last one out ended it
    assert "Nobody is in the room" in page(client, space)


def test_forms_refuse_a_missing_forged_or_misplaced_token(client: FlaskClient, space: dict[str, Any],
                                                          sandbox: SandboxGoogle) -> None:
    guest = sandbox.join(space["meetingCode"], display_name="Guest", signed_in=False)  # so a leave form shows
    form = {"as": "anonymous", "display_name": "Mallory"}
    for token in (None, "forged", tokens(page(client, space))["leave"]):
        data = form if token is None else {**form, "csrf_token": token}
        response = client.post(f"{room_path(space)}/join", data=data)
        assert response.status_code == 400
        assert SANDBOX_NOTICE in response.get_data(as_text=True)
    other = client.post(f"{MEET}/spaces", json={}).get_json()
    response = join(client, space, csrf_token=tokens(page(client, other))["join"], **form)
    assert response.status_code == 400
    response = client.post(f"{room_path(space)}/leave", data={"csrf_token": "forged", "participant": guest})
    assert response.status_code == 400
    assert [person.display_name for person in sandbox.room(space["meetingCode"]).present] == ["Guest"]


def test_bad_join_and_leave_forms_are_400_pages(client: FlaskClient, space: dict[str, Any],
                                                sandbox: SandboxGoogle) -> None:
    for form in ({"as": "freelancer", "display_name": "No Email"}, {"as": "anonymous", "display_name": " "},
                 {"as": "host", "display_name": "X"}):
        response = join(client, space, **form)
        assert response.status_code == 400 and SANDBOX_NOTICE in response.get_data(as_text=True)
    assert records(client, space) == []
    sandbox.join(space["meetingCode"], display_name="Guest", signed_in=False)
    token = tokens(page(client, space))["leave"]
    response = client.post(f"{room_path(space)}/leave", data={"csrf_token": token, "participant": "nobody"})
    assert response.status_code == 400
    assert len(sandbox.room(space["meetingCode"]).present) == 1


def test_unknown_meetings_and_events_are_404_sandbox_pages(client: FlaskClient) -> None:
    for response in (client.get("/sandbox/meet/abc-defg-hij"), client.post("/sandbox/meet/abc-defg-hij/join"),
                     client.get("/sandbox/calendar/event?eid=bm9wZQ")):
        assert response.status_code == 404
        assert response.mimetype == "text/html"
        assert SANDBOX_NOTICE in response.get_data(as_text=True)


def test_the_calendar_event_link_opens_a_sandbox_page(client: FlaskClient) -> None:
    event = client.post("/sandbox/google/calendar/v3/calendars/primary/events", json={
        "id": "vs00112233", "summary": "Identity verification call", "description": "Bring your ID",
        "start": {"dateTime": "2026-11-23T10:00:00Z"}, "end": {"dateTime": "2026-11-23T10:30:00Z"},
        "attendees": [{"email": "ana@example.com"}]}).get_json()
    response = client.get(event["htmlLink"].removeprefix("http://localhost"))
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "this is not Google Calendar; no invitation was emailed" in html and SANDBOX_NOTICE in html
    assert "Identity verification call" in html and "ana@example.com" in html


def test_the_sandbox_is_not_served_with_the_google_backend(tmp_path: Path) -> None:
    settings = make_settings(f"sqlite:///{tmp_path / 'google.sqlite3'}", tmp_path, meet_backend="google",
                             meet_host_users=("host@example.com",))
    app = create_app(settings)
    client = app.test_client()
    assert client.post(f"{MEET}/spaces", json={}).status_code == 404
    assert client.get("/sandbox/meet/abc-defg-hij").status_code == 404
    assert "sandbox_google" not in app.extensions
    app.extensions[KEY].engine.dispose()


def test_people_joining_and_leaving_at_once_share_one_conference(client: FlaskClient, space: dict[str, Any],
                                                                 sandbox: SandboxGoogle) -> None:
    def arrive(number: int) -> str:
        return sandbox.join(space["meetingCode"], email=f"p{number}@example.com", display_name=f"P{number}")

    with ThreadPoolExecutor(max_workers=8) as pool:
        participants = list(pool.map(arrive, range(40)))
        assert len({name.split("/")[1] for name in participants}) == 1
        list(pool.map(sandbox.leave, participants))
    [record] = records(client, space)
    assert "endTime" in record
    assert len(client.get(f"{MEET}/{record['name']}/participants?pageSize=250").get_json()["participants"]) == 40
