"""The Google Meet adapter against recorded HTTP (googleapiclient's HttpMockSequence): no network, no sleeping."""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

import google.auth.credentials
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth.exceptions import RefreshError
from googleapiclient.http import HttpMockSequence

from integrations.google_credentials import anonymous_credentials, service_account_credentials
from integrations.google_meet import (
    SCOPES,
    CalendarInvite,
    MeetConfigurationError,
    MeetError,
    MeetNotFound,
    MeetRateLimited,
    meet_check,
    parse_time,
    space_body,
)
from integrations.google_meet_adapter import GoogleMeetGateway

HOST = "host-1@example.com"
UTC = dt.timezone.utc
SPACE = {"name": "spaces/abc", "meetingUri": "https://meet.google.com/abc-mnop-xyz", "meetingCode": "abc-mnop-xyz"}


class Transport(HttpMockSequence):
    """HttpMockSequence that can also raise: an exception in the sequence is raised instead of answered."""

    def request(self, uri, method="GET", body=None, headers=None, redirections=1, connection_type=None):
        if self._iterable and isinstance(self._iterable[0], BaseException):
            self.request_sequence.append((uri, method, body, headers))
            raise self._iterable.pop(0)
        return super().request(uri, method, body, headers, redirections, connection_type)

    def requests(self) -> list[tuple[str, str, Any]]:
        """(method, URL, decoded JSON body or None) of every request made."""
        return [(method, uri, json.loads(body) if body else None) for uri, method, body, _ in self.request_sequence]


class HalfRandom:
    def random(self) -> float:
        return 0.5


def ok(body: dict[str, Any] | None = None) -> tuple[dict[str, str], str]:
    return {"status": "200"}, json.dumps(body or {})


def error(code: int, status: str | None = None, message: str = "nope", reason: str | None = None,
          **headers: str) -> tuple[dict[str, str], str]:
    body: dict[str, Any] = {"code": code, "message": message}
    if status:
        body["status"] = status
    if reason:
        body["errors"] = [{"domain": "global", "reason": reason, "message": message}]
    return {"status": str(code), "content-type": "application/json", **headers}, json.dumps({"error": body})


def make(*responses: Any, credentials_for: Any = None, **options: Any) -> tuple[GoogleMeetGateway, Transport,
                                                                                 list[float]]:
    transport = Transport(list(responses))
    sleeps: list[float] = []
    options.setdefault("num_retries", 0)
    gateway = GoogleMeetGateway([HOST, "host-2@example.com"], credentials_for or anonymous_credentials(),
                                http_factory=lambda host: transport, sleep=sleeps.append, rng=HalfRandom(),
                                **options)
    return gateway, transport, sleeps


# ---------------------------------------------------------------- spaces and members

@pytest.mark.parametrize("access_type", ["RESTRICTED", "TRUSTED"])
def test_create_sends_the_verification_config(access_type: str) -> None:
    gateway, transport, _ = make(ok(SPACE))
    space = gateway.create_space(host=HOST, access_type=access_type)
    assert (space.name, space.meeting_uri, space.meeting_code) == (SPACE["name"], SPACE["meetingUri"],
                                                                   SPACE["meetingCode"])
    assert transport.requests() == [("POST", "https://meet.googleapis.com/v2/spaces?alt=json", {"config": {
        "accessType": access_type,
        "entryPointAccess": "ALL",
        "moderation": "ON",
        "moderationRestrictions": {"chatRestriction": "HOSTS_ONLY", "presentRestriction": "HOSTS_ONLY"},
        "attendanceReportGenerationType": "DO_NOT_GENERATE",
        "artifactConfig": {"recordingConfig": {"autoRecordingGeneration": "OFF"},
                           "transcriptionConfig": {"autoTranscriptionGeneration": "OFF"},
                           "smartNotesConfig": {"autoSmartNotesGeneration": "OFF"}},
    }})]


def test_members_are_added_by_email_and_the_reviewer_as_cohost() -> None:
    gateway, transport, _ = make(ok({"name": "spaces/abc/members/1"}), ok({"name": "spaces/abc/members/2"}),
                                 error(409, "ALREADY_EXISTS", "Member already exists"))
    gateway.add_member("spaces/abc", "ana@example.com", host=HOST)
    gateway.add_member("spaces/abc", "rev@example.com", host=HOST, cohost=True)
    gateway.add_member("spaces/abc", "rev@example.com", host=HOST, cohost=True)  # already a member: fine
    url = "https://meet.googleapis.com/v2/spaces/abc/members?alt=json"
    assert transport.requests() == [("POST", url, {"email": "ana@example.com"}),
                                    ("POST", url, {"email": "rev@example.com", "role": "COHOST"}),
                                    ("POST", url, {"email": "rev@example.com", "role": "COHOST"})]


def test_reading_a_missing_space_raises_not_found() -> None:
    gateway, transport, _ = make(ok(SPACE), error(404, "NOT_FOUND", "Requested entity was not found."))
    assert gateway.get_space("spaces/abc", host=HOST) == SPACE
    with pytest.raises(MeetNotFound, match="not found"):
        gateway.get_space("spaces/gone", host=HOST)
    assert [url for _, url, _ in transport.requests()] == ["https://meet.googleapis.com/v2/spaces/abc?alt=json",
                                                           "https://meet.googleapis.com/v2/spaces/gone?alt=json"]


def test_a_malformed_space_name_is_a_meet_error() -> None:
    gateway, transport, _ = make()
    with pytest.raises(MeetError, match="does not match the pattern"):
        gateway.get_space("abc", host=HOST)
    assert transport.requests() == []



def test_unexpected_answers_are_meet_errors() -> None:
    gateway, transport, sleeps = make(ok({}), ({"status": "200"}, "<html>proxy</html>"),
                                      ok({"conferenceRecords": [{"name": "conferenceRecords/c1"}]}), ok({}))
    with pytest.raises(MeetError, match="without a space"):
        gateway.create_space(host=HOST)
    with pytest.raises(MeetError, match="unreadable answer"):
        gateway.get_space("spaces/abc", host=HOST)
    with pytest.raises(MeetError, match="unexpected answer"):  # a record without startTime
        gateway.attendance("spaces/abc", host=HOST)
    assert sleeps == []

# ---------------------------------------------------------------- ending conferences

def test_ending_with_nothing_active_or_no_space_returns_normally() -> None:
    hosts: list[str] = []
    transport = Transport([ok(), error(400, "FAILED_PRECONDITION", "No active conference"),
                           error(404, "NOT_FOUND")])
    gateway = GoogleMeetGateway([HOST, "host-2@example.com"], anonymous_credentials(), num_retries=0,
                                http_factory=lambda host: hosts.append(host) or transport)
    gateway.end_active_conference("spaces/abc", host="host-2@example.com")
    gateway.end_active_conference("spaces/abc")  # no host: the first
    gateway.end_active_conference("spaces/gone")
    assert transport.requests()[0] == (
        "POST", "https://meet.googleapis.com/v2/spaces/abc:endActiveConference?alt=json", {})
    assert hosts == ["host-2@example.com", HOST]  # one client per host


def test_other_errors_on_end_are_raised() -> None:
    gateway, _, _ = make(error(400, "INVALID_ARGUMENT", "bad"), error(500, "INTERNAL"))
    with pytest.raises(MeetError, match="INVALID_ARGUMENT") as raised:
        gateway.end_active_conference("spaces/abc")
    assert type(raised.value) is MeetError
    with pytest.raises(MeetError, match="500"):
        gateway.end_active_conference("spaces/abc")


def test_end_uses_googleapiclients_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)  # googleapiclient sleeps between its own retries
    gateway, transport, own_sleeps = make(error(503, "UNAVAILABLE"), ok(), num_retries=3)
    gateway.end_active_conference("spaces/abc")
    assert len(transport.requests()) == 2 and len(slept) == 1 and own_sleeps == []


# ---------------------------------------------------------------- create retries

def test_create_retries_5xx_with_backoff_and_logs_each_attempt(caplog: pytest.LogCaptureFixture) -> None:
    gateway, transport, sleeps = make(error(500, "INTERNAL"), error(503, "UNAVAILABLE"), ok(SPACE))
    with caplog.at_level(logging.WARNING, logger="integrations.google_meet_adapter"):
        assert gateway.create_space(host=HOST).name == "spaces/abc"
    assert len(transport.requests()) == 3
    assert sleeps == [0.75, 1.5]  # 1s then 2s, each jittered into [half, full]: 0.5 -> three quarters
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2
    assert "attempt 1/4" in messages[0] and "500" in messages[0] and HOST in messages[0]
    assert "attempt 2/4" in messages[1] and "503" in messages[1] and "retrying in 1.50s" in messages[1]


def test_create_retries_network_errors_and_honours_retry_after() -> None:
    gateway, transport, sleeps = make(ConnectionResetError(104, "reset"), TimeoutError("timed out"),
                                      error(503, "UNAVAILABLE", **{"retry-after": "7"}), ok(SPACE))
    assert gateway.create_space(host=HOST).name == "spaces/abc"
    assert sleeps == [0.75, 1.5, 7.0]


@pytest.mark.parametrize("answer", [
    error(429, "RESOURCE_EXHAUSTED", **{"retry-after": "7"}),
    error(429),
    error(403, reason="rateLimitExceeded"),
    error(403, reason="userRateLimitExceeded"),
], ids=["429-retry-after", "429-bare", "403-rateLimitExceeded", "403-userRateLimitExceeded"])
def test_a_rate_limit_on_create_raises_at_once_without_sleeping(answer: Any,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    """The limit is per minute per host user: another host (or the queue job) does better than waiting."""
    gateway, transport, sleeps = make(answer, ok(SPACE))
    with caplog.at_level(logging.WARNING, logger="integrations.google_meet_adapter"), \
            pytest.raises(MeetRateLimited, match="rate limiting"):
        gateway.create_space(host=HOST)
    assert len(transport.requests()) == 1 and sleeps == []
    assert [r.getMessage() for r in caplog.records if "not retried" in r.getMessage() and HOST in r.getMessage()]


def test_a_rate_limit_after_a_retried_5xx_stops_the_retries() -> None:
    gateway, transport, sleeps = make(error(503, "UNAVAILABLE"), error(429, "RESOURCE_EXHAUSTED"), ok(SPACE))
    with pytest.raises(MeetRateLimited):
        gateway.create_space(host=HOST)
    assert len(transport.requests()) == 2 and sleeps == [0.75]  # the 503's backoff only


def test_create_gives_up_on_5xx_with_a_plain_meet_error() -> None:
    gateway, transport, sleeps = make(*[error(500, "INTERNAL")] * 2, create_attempts=2)
    with pytest.raises(MeetError, match="500") as raised:
        gateway.create_space(host=HOST)
    assert type(raised.value) is MeetError and len(sleeps) == 1


def test_create_does_not_retry_a_permission_error_and_explains_delegation() -> None:
    gateway, transport, sleeps = make(error(403, "PERMISSION_DENIED", "The caller does not have permission"))
    with pytest.raises(MeetConfigurationError) as raised:
        gateway.create_space(host=HOST)
    message = str(raised.value)
    assert "PERMISSION_DENIED" in message and "domain-wide delegation" in message.lower()
    assert all(scope in message for scope in SCOPES) and HOST in message
    assert len(transport.requests()) == 1 and sleeps == []


# ---------------------------------------------------------------- credentials

@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    path = tmp_path_factory.mktemp("keys") / "service-account.json"
    path.write_text(json.dumps({
        "type": "service_account", "project_id": "verify-test", "private_key_id": "k1", "private_key": pem,
        "client_email": "verify@verify-test.iam.gserviceaccount.com", "client_id": "1234567890",
        "token_uri": "https://oauth2.googleapis.com/token"}))
    return path


def jwt_claims(token_request_body: bytes) -> dict[str, Any]:
    assertion = urllib.parse.parse_qs(token_request_body.decode())["assertion"][0]
    payload = assertion.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_service_account_credentials_impersonate_the_host_with_explicit_scopes(key_file: Path) -> None:
    credentials_for = service_account_credentials(str(key_file))
    credentials = credentials_for(HOST, SCOPES)
    assert credentials._subject == HOST
    assert tuple(credentials.scopes) == SCOPES
    assert credentials.service_account_email == "verify@verify-test.iam.gserviceaccount.com"
    assert credentials_for.client_id == "1234567890"
    # What the token request asks Google for: this user, exactly these scopes.
    gateway, transport, _ = make(ok({"access_token": "tok", "expires_in": 3600}), ok(SPACE),
                                 credentials_for=credentials_for)
    gateway.create_space(host=HOST)
    (token_url, _, token_body, _), (api_url, _, _, headers) = transport.request_sequence
    assert token_url == "https://oauth2.googleapis.com/token"
    claims = jwt_claims(token_body)
    assert claims["sub"] == HOST and claims["scope"].split() == list(SCOPES)
    assert claims["iss"] == "verify@verify-test.iam.gserviceaccount.com"
    assert headers["authorization"] == "Bearer tok"


def test_undelegated_service_account_gets_an_actionable_configuration_error(key_file: Path) -> None:
    refused = ({"status": "401", "content-type": "application/json"}, json.dumps({
        "error": "unauthorized_client",
        "error_description": "Client is unauthorized to retrieve access tokens using this method, or client "
                             "not authorized for any of the scopes requested."}))
    gateway, transport, sleeps = make(refused, credentials_for=service_account_credentials(str(key_file)))
    with pytest.raises(MeetConfigurationError) as raised:
        gateway.create_space(host=HOST)
    message = str(raised.value)
    assert "unauthorized_client" in message and "client ID 1234567890" in message
    assert "Domain-wide delegation" in message and ", ".join(SCOPES) in message
    assert f"host user {HOST} exists" in message
    assert sleeps == [] and len(transport.request_sequence) == 1


class RefusedCredentials(google.auth.credentials.Credentials):
    def __init__(self, retryable: bool = False) -> None:
        super().__init__()
        self._retryable = retryable

    def refresh(self, request: Any) -> None:
        raise RefreshError("invalid_grant: Invalid email or User ID", retryable=self._retryable)


def test_a_refresh_error_on_any_call_is_a_configuration_error() -> None:
    gateway, transport, _ = make(credentials_for=lambda host, scopes: RefusedCredentials())
    with pytest.raises(MeetConfigurationError, match="invalid_grant.*domain-wide delegation"):
        gateway.end_active_conference("spaces/abc")
    with pytest.raises(MeetConfigurationError, match="Google refused a token"):
        gateway.cancel_invite("vs1", host=HOST)
    assert transport.request_sequence == []


def test_a_retryable_refresh_error_on_create_is_retried() -> None:
    gateway, _, sleeps = make(credentials_for=lambda host, scopes: RefusedCredentials(retryable=True),
                              create_attempts=2)
    with pytest.raises(MeetError) as raised:
        gateway.create_space(host=HOST)
    assert type(raised.value) is MeetError and sleeps == [0.75]


def test_missing_or_unreadable_key_files_say_so(tmp_path: Path) -> None:
    with pytest.raises(MeetConfigurationError, match="cannot read the service-account key file.*No such file"):
        service_account_credentials(str(tmp_path / "missing.json"))
    oauth_client = tmp_path / "client.json"
    oauth_client.write_text(json.dumps({"installed": {"client_id": "x"}}))
    with pytest.raises(MeetConfigurationError, match="not a service-account JSON key"):
        service_account_credentials(str(oauth_client))
    garbage = tmp_path / "garbage.json"
    garbage.write_text("not json")
    with pytest.raises(MeetConfigurationError, match="not a service-account JSON key"):
        service_account_credentials(str(garbage))


# ---------------------------------------------------------------- attendance

def test_attendance_follows_every_page_and_parses_the_times() -> None:
    record_1 = {"name": "conferenceRecords/c1", "space": "spaces/abc", "startTime": "2026-11-22T09:00:00.123456789Z",
                "endTime": "2026-11-22T09:40:00Z"}
    record_0 = {"name": "conferenceRecords/c0", "space": "spaces/abc", "startTime": "2026-11-21T09:00:00Z"}
    ana = {"name": "conferenceRecords/c1/participants/p1",
           "signedinUser": {"user": "users/1", "displayName": "Ana"}}
    guest = {"name": "conferenceRecords/c1/participants/p2", "anonymousUser": {"displayName": "Guest"}}
    phone = {"name": "conferenceRecords/c1/participants/p3", "phoneUser": {"displayName": "+351 ***"}}
    gateway, transport, _ = make(
        ok({"conferenceRecords": [record_1], "nextPageToken": "r2"}),
        ok({"participants": [ana, guest], "nextPageToken": "pp2"}),
        ok({"participantSessions": [{"name": "s2", "startTime": "2026-11-22T09:20:00.5Z"}],
            "nextPageToken": "ss2"}),
        ok({"participantSessions": [{"name": "s1", "startTime": "2026-11-22T09:01:00Z",
                                     "endTime": "2026-11-22T09:10:00Z"}]}),
        ok({"participantSessions": [{"name": "s3", "startTime": "2026-11-22T09:02:00Z",
                                     "endTime": "2026-11-22T09:03:00Z"}]}),
        ok({"participants": [phone]}),
        ok({}),  # a participant with no sessions (yet)
        ok({"conferenceRecords": [record_0]}),
        ok({}),
    )
    conferences = gateway.attendance("spaces/abc", host=HOST)
    assert [c.record for c in conferences] == ["conferenceRecords/c0", "conferenceRecords/c1"]  # oldest first
    c0, c1 = conferences
    assert (c0.end, c0.participants) == (None, ())
    assert c1.start == dt.datetime(2026, 11, 22, 9, 0, 0, 123456, tzinfo=UTC)
    assert c1.end == dt.datetime(2026, 11, 22, 9, 40, tzinfo=UTC)
    first, second, third = c1.participants
    assert (first.kind, first.user, first.display_name) == ("signed_in", "users/1", "Ana")
    assert [(s.start, s.end) for s in first.sessions] == [
        (dt.datetime(2026, 11, 22, 9, 1, tzinfo=UTC), dt.datetime(2026, 11, 22, 9, 10, tzinfo=UTC)),
        (dt.datetime(2026, 11, 22, 9, 20, 0, 500000, tzinfo=UTC), None)]
    assert (second.kind, second.user, second.display_name) == ("anonymous", None, "Guest")
    assert [(s.start, s.end) for s in second.sessions] == [
        (dt.datetime(2026, 11, 22, 9, 2, tzinfo=UTC), dt.datetime(2026, 11, 22, 9, 3, tzinfo=UTC))]
    assert (third.kind, third.display_name, third.sessions) == ("phone", "+351 ***", ())
    queries = [(urllib.parse.urlsplit(url).path, urllib.parse.parse_qs(urllib.parse.urlsplit(url).query))
               for _, url, _ in transport.requests()]
    assert queries[0] == ("/v2/conferenceRecords", {"filter": ['space.name = "spaces/abc"'], "pageSize": ["100"],
                                                    "alt": ["json"]})
    assert queries[1] == ("/v2/conferenceRecords/c1/participants", {"pageSize": ["250"], "alt": ["json"]})
    assert queries[2][0] == "/v2/conferenceRecords/c1/participants/p1/participantSessions"
    assert queries[3][1]["pageToken"] == ["ss2"]
    assert queries[5] == ("/v2/conferenceRecords/c1/participants",
                          {"pageSize": ["250"], "pageToken": ["pp2"], "alt": ["json"]})
    assert queries[7][1]["pageToken"] == ["r2"]


def test_parse_time_reads_rfc_3339() -> None:
    assert parse_time("2026-11-22T09:00:00Z") == dt.datetime(2026, 11, 22, 9, tzinfo=UTC)
    assert parse_time("2026-11-22t09:00:00.1z") == dt.datetime(2026, 11, 22, 9, 0, 0, 100000, tzinfo=UTC)
    assert parse_time("2026-11-22T10:00:00.000000001+01:00") == dt.datetime(2026, 11, 22, 9, tzinfo=UTC)


# ---------------------------------------------------------------- calendar

INVITE = CalendarInvite(event_id="vs0123", summary="Identity verification", description="Bring your ID.",
                        start=dt.datetime(2026, 11, 23, 10, 30, tzinfo=dt.timezone(dt.timedelta(hours=1))),
                        end=dt.datetime(2026, 11, 23, 10, 0, tzinfo=UTC),
                        meeting_uri="https://meet.google.com/abc-mnop-xyz",
                        attendees=("ana@example.com", "rev@example.com"))


def test_insert_sends_the_event_and_a_duplicate_is_fine() -> None:
    gateway, transport, _ = make(ok({"id": "vs0123"}), error(409, reason="duplicate",
                                                             message="The requested identifier already exists."))
    gateway.insert_invite(INVITE, host=HOST, send_updates="none")
    gateway.insert_invite(INVITE, host=HOST)
    (method, url, body), (_, second_url, _) = transport.requests()
    assert (method, url) == ("POST", "https://www.googleapis.com/calendar/v3/calendars/primary/events"
                                     "?sendUpdates=none&alt=json")
    assert "sendUpdates=all" in second_url
    assert body == {
        "id": "vs0123", "summary": "Identity verification",
        "description": "Bring your ID.\n\nJoin with Google Meet: https://meet.google.com/abc-mnop-xyz",
        "location": "https://meet.google.com/abc-mnop-xyz",
        "start": {"dateTime": "2026-11-23T09:30:00Z", "timeZone": "UTC"},
        "end": {"dateTime": "2026-11-23T10:00:00Z", "timeZone": "UTC"},
        "attendees": [{"email": "ana@example.com"}, {"email": "rev@example.com"}],
        "reminders": {"useDefault": False, "overrides": [{"method": "email", "minutes": 1440},
                                                         {"method": "popup", "minutes": 15}]},
        "guestsCanModify": False,
    }


def test_move_patches_the_times_and_a_missing_event_is_not_found() -> None:
    gateway, transport, _ = make(ok({"id": "vs0123"}), error(404, reason="notFound", message="Not Found"))
    start = dt.datetime(2026, 11, 24, 15, tzinfo=UTC)
    gateway.move_invite("vs0123", start, start + dt.timedelta(minutes=30), host=HOST, send_updates="all")
    assert transport.requests()[0] == (
        "PATCH", "https://www.googleapis.com/calendar/v3/calendars/primary/events/vs0123?sendUpdates=all&alt=json",
        {"start": {"dateTime": "2026-11-24T15:00:00Z", "timeZone": "UTC"},
         "end": {"dateTime": "2026-11-24T15:30:00Z", "timeZone": "UTC"}})
    with pytest.raises(MeetNotFound):
        gateway.move_invite("vs0123", start, start, host=HOST)


def test_cancel_treats_gone_as_done() -> None:
    gateway, transport, _ = make(({"status": "204"}, ""), error(410, reason="deleted", message="Resource deleted"),
                                 error(404, reason="notFound"), error(403, reason="rateLimitExceeded"))
    for _ in range(3):
        gateway.cancel_invite("vs0123", host=HOST, send_updates="externalOnly")
    method, url, _ = transport.requests()[0]
    assert (method, url) == ("DELETE", "https://www.googleapis.com/calendar/v3/calendars/primary/events/vs0123"
                                       "?sendUpdates=externalOnly")
    with pytest.raises(MeetRateLimited):  # a 403 that means "slow down" is not a configuration problem
        gateway.cancel_invite("vs0123", host=HOST)


# ---------------------------------------------------------------- endpoints, threads, the live check

def test_sandbox_endpoints_are_joined_with_the_api_paths() -> None:
    gateway, transport, _ = make(ok(SPACE), ok(), meet_endpoint="http://127.0.0.1:8000/sandbox/google/meet/",
                                 calendar_endpoint="http://127.0.0.1:8000/sandbox/google/calendar/v3/")
    gateway.create_space(host=HOST)
    gateway.insert_invite(INVITE, host=HOST)
    assert [url.split("?")[0] for _, url, _ in transport.requests()] == [
        "http://127.0.0.1:8000/sandbox/google/meet/v2/spaces",
        "http://127.0.0.1:8000/sandbox/google/calendar/v3/calendars/primary/events"]
    assert "authorization" not in transport.request_sequence[0][3]  # anonymous


def test_clients_are_per_thread_and_per_host() -> None:
    gateway = GoogleMeetGateway([HOST], anonymous_credentials())
    mine = gateway._meet(HOST)
    assert gateway._meet(HOST) is mine
    assert gateway._meet("host-2@example.com") is not mine
    assert gateway._calendar(HOST) is not mine
    other: list[Any] = []
    thread = threading.Thread(target=lambda: other.extend([gateway._meet(HOST), gateway._meet(HOST)]))
    thread.start()
    thread.join()
    assert other[0] is other[1] and other[0] is not mine
    assert other[0]._http is not mine._http


def test_a_gateway_needs_a_host() -> None:
    with pytest.raises(MeetConfigurationError, match="VERIFY_MEET_HOST_USERS"):
        GoogleMeetGateway([], anonymous_credentials())


def test_meet_check_reports_settings_google_did_not_keep() -> None:
    kept = {**SPACE, "config": space_body("RESTRICTED")["config"]}
    gateway, transport, _ = make(ok(SPACE), ok(kept), error(400, "FAILED_PRECONDITION"))
    assert meet_check(gateway, HOST) == []
    assert [method for method, _, _ in transport.requests()] == ["POST", "GET", "POST"]
    dropped = json.loads(json.dumps(kept))
    dropped["config"]["artifactConfig"]["recordingConfig"]["autoRecordingGeneration"] = "ON"
    del dropped["config"]["moderation"]
    gateway, _, _ = make(ok(SPACE), ok(dropped), ok())
    problems = meet_check(gateway, HOST)
    assert len(problems) == 2
    assert "config.moderation is not set, expected 'ON'" in problems[0]
    assert "config.artifactConfig.recordingConfig.autoRecordingGeneration is 'ON', expected 'OFF'" in problems[1]


def test_meet_check_stops_when_the_space_cannot_be_created() -> None:
    gateway, _, _ = make(error(403, "PERMISSION_DENIED"))
    (problem,) = meet_check(gateway, HOST)
    assert problem.startswith(f"creating a Meet space as {HOST} failed") and "delegation" in problem
