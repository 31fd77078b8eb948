"""The Workspace Events adapter and the shared Google plumbing against recorded HTTP: Google's URLs and bodies,
answers the sandbox never gives (a failed operation, a retried read), and the sandbox credentials."""

from __future__ import annotations

import datetime as dt
from typing import Any

import googleapiclient.http
import pytest
from prometheus_client import REGISTRY

from integrations.google_credentials import SandboxCredentials, refreshable, sandbox_credentials
from integrations.google_meet import MeetConfigurationError, MeetError, MeetNotFound
from integrations.google_meet_adapter import GoogleMeetGateway
from integrations.meet_events import MEET_EVENT_TYPES
from integrations.meet_events_adapter import GoogleMeetEventsGateway
from tests.unit.test_google_meet import HOST, Transport, error, ok

SUBSCRIPTION = {"name": "subscriptions/s1", "targetResource": "//cloudidentity.googleapis.com/users/7",
                "eventTypes": list(MEET_EVENT_TYPES), "notificationEndpoint": {"pubsubTopic": "projects/p/topics/t"},
                "state": "ACTIVE", "expireTime": "2026-11-29T09:00:00Z"}
EVENTS = "https://workspaceevents.googleapis.com/v1/"


def make(*responses: Any, **options: Any) -> tuple[GoogleMeetEventsGateway, Transport, list[float]]:
    transport = Transport(list(responses))
    sleeps: list[float] = []
    gateway = GoogleMeetEventsGateway(sandbox_credentials(), http_factory=lambda host: transport,
                                      sleep=sleeps.append, num_retries=0, **options)
    return gateway, transport, sleeps


def test_create_sends_googles_body_and_polls_a_pending_operation() -> None:
    gateway, transport, sleeps = make(ok({"name": "operations/o1"}), ok({"name": "operations/o1"}),
                                      ok({"name": "operations/o1", "done": True, "response": SUBSCRIPTION}))
    created = gateway.create_subscription(host=HOST, user="users/7", topic="projects/p/topics/t",
                                          ttl=dt.timedelta(days=7))
    assert created.name == "subscriptions/s1" and created.event_types == MEET_EVENT_TYPES
    (method, url, body), *polls = transport.requests()
    assert (method, url) == ("POST", EVENTS + "subscriptions?alt=json")
    assert body == {"targetResource": "//cloudidentity.googleapis.com/users/7", "eventTypes": list(MEET_EVENT_TYPES),
                    "notificationEndpoint": {"pubsubTopic": "projects/p/topics/t"}, "ttl": "604800s"}
    assert [(m, u) for m, u, _ in polls] == [("GET", EVENTS + "operations/o1?alt=json")] * 2
    assert sleeps == [0.25, 0.5]
    assert transport.request_sequence[0][3]["authorization"] == f"Bearer sandbox:{HOST}"


def test_renew_patches_the_ttl_only() -> None:
    gateway, transport, _ = make(ok({"name": "operations/o2", "done": True, "response": SUBSCRIPTION}))
    gateway.renew_subscription("subscriptions/s1", host=HOST, ttl=dt.timedelta(hours=36))
    assert transport.requests() == [("PATCH", EVENTS + "subscriptions/s1?updateMask=ttl&alt=json",
                                     {"ttl": "129600s"})]


def test_a_failed_operation_is_an_error_of_its_kind() -> None:
    for code, kind in ((5, MeetNotFound), (7, MeetConfigurationError), (9, MeetError)):
        gateway, _, _ = make(ok({"name": "operations/o3", "done": True,
                                 "error": {"code": code, "message": "no"}}))
        with pytest.raises(kind, match=f"code {code}"):
            gateway.reactivate_subscription("subscriptions/s1", host=HOST)


def test_already_exists_from_the_error_info_reads_the_named_subscription() -> None:
    conflict = error(409, "ALREADY_EXISTS")
    headers, body = conflict
    body = body.replace('"message"', '"details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", '
                                     '"metadata": {"current_subscription": "subscriptions/s1"}}], "message"')
    gateway, transport, _ = make((headers, body), ok(SUBSCRIPTION))
    assert gateway.create_subscription(host=HOST, user="users/7", topic="projects/p/topics/t").name == \
        "subscriptions/s1"
    assert transport.requests()[1][:2] == ("GET", EVENTS + "subscriptions/s1?alt=json")


def test_a_bad_answer_is_a_meet_error() -> None:
    gateway, _, _ = make(ok({"name": "subscriptions/s1", "expireTime": "soon"}))
    with pytest.raises(MeetError, match="unexpected answer"):
        gateway.get_subscription("subscriptions/s1", host=HOST)
    gateway, _, _ = make(error(500, "INTERNAL"))
    with pytest.raises(MeetError, match="HTTP 500"):
        gateway.delete_subscription("subscriptions/s1", host=HOST)


def test_sandbox_credentials_are_valid_and_never_refreshed_on_a_401() -> None:
    credentials = SandboxCredentials(HOST)
    assert credentials.valid and not refreshable(credentials)
    transport = Transport([error(401, "UNAUTHENTICATED")])
    gateway = GoogleMeetGateway([HOST], sandbox_credentials(), http_factory=lambda host: transport, num_retries=0)
    with pytest.raises(MeetConfigurationError, match="Domain-wide delegation"):
        gateway.get_space("spaces/a", host=HOST)
    assert len(transport.request_sequence) == 1


def test_every_read_request_is_counted_retries_too(monkeypatch: pytest.MonkeyPatch) -> None:
    def count() -> float:
        return REGISTRY.get_sample_value("verify_meet_read_calls_total",
                                         {"host": "counted@example.com", "method": "conferenceRecords.get"}) or 0.0

    monkeypatch.setattr(googleapiclient.http.time, "sleep", lambda seconds: None)  # googleapiclient's backoff
    record = {"name": "conferenceRecords/c", "space": "spaces/a", "startTime": "2026-11-22T09:00:00Z"}
    transport = Transport([error(503, "UNAVAILABLE"), ok(record)])
    gateway = GoogleMeetGateway(["counted@example.com"], sandbox_credentials(), http_factory=lambda host: transport,
                                num_retries=1)
    before = count()
    assert gateway.conference("conferenceRecords/c", host="counted@example.com").space == "spaces/a"
    assert count() - before == 2
