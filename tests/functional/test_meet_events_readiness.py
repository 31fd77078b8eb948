"""/readyz names each Meet host user without a live events subscription; /metrics shows the reads, the quota and
which subscriptions live (verify_service/health.py, verify_service/meet_events/metrics.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from integrations.google_meet import MeetConfigurationError, MeetError
from jobs.meet_events import keep_meet_subscriptions
from tests.conftest import FakeClock, make_settings
from tests.support.fake_meet_events import FakeMeetEventsGateway
from verify_service import create_app, migrate
from verify_service.health import SCHEDULER_GRACE, STARTED_KEY
from verify_service.meet_events.metrics import register_metrics
from verify_service.observability import meet_reads
from verify_service.registry import KEY, Registry

HOSTS = ("host-a@corp.example", "host-b@corp.example")
TOPIC = "projects/verify/topics/meet-events"


@pytest.fixture
def google(clock: FakeClock) -> FakeMeetEventsGateway:
    return FakeMeetEventsGateway(clock)


@pytest.fixture
def events_app(database_url: str, tmp_path: Path, clock: FakeClock, google: FakeMeetEventsGateway,
               monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    # The test schema comes from create_all (no Alembic revision): the migrations check passes here, so the
    # status code shows what the Meet events check makes of readiness.
    monkeypatch.setattr(migrate, "current_revision", lambda _engine: migrate.head_revision())
    app = create_app(make_settings(database_url, tmp_path, meet_events_topic=TOPIC, meet_host_users=HOSTS,
                                   meet_read_quota_per_user=300))
    registry: Registry = app.extensions[KEY]
    registry.clock, registry.meet_events = clock, google
    yield app
    registry.engine.dispose()


def readyz(client: FlaskClient) -> tuple[int, dict]:
    response = client.get("/readyz")
    return response.status_code, response.get_json()["checks"]


def test_no_meet_events_check_while_events_are_off(client: FlaskClient) -> None:
    assert "meet_events" not in client.get("/readyz").get_json()["checks"]


def test_readyz_names_each_host_without_a_live_subscription_until_all_are_live(
        events_app: Flask, google: FakeMeetEventsGateway) -> None:
    client = events_app.test_client()
    status, checks = readyz(client)
    assert status == 200 and checks["meet_events"]["ok"] is True  # a new process gives the first run its grace
    events_app.extensions[STARTED_KEY] -= SCHEDULER_GRACE.total_seconds() + 1
    status, checks = readyz(client)
    assert status == 503 and set(checks["meet_events"]["hosts"]) == set(HOSTS)
    assert "has not run" in checks["meet_events"]["hosts"][HOSTS[0]]

    google.fail_next("user_of", MeetConfigurationError("unauthorized_client: grant the delegation"))
    keep_meet_subscriptions(events_app)
    status, checks = readyz(client)
    check = checks["meet_events"]
    assert status == 503 and check["ok"] is False and list(check["hosts"]) == [HOSTS[0]]
    assert "state MISSING" in check["hosts"][HOSTS[0]] and "grant the delegation" in check["hosts"][HOSTS[0]]
    assert f"host user {HOSTS[0]}" in check["detail"] and HOSTS[1] not in check["detail"]

    keep_meet_subscriptions(events_app)
    status, checks = readyz(client)
    assert status == 200 and checks["meet_events"] == {"ok": True, "topic": TOPIC}


def test_readyz_explains_a_suspension_that_could_not_be_lifted(events_app: Flask,
                                                               google: FakeMeetEventsGateway) -> None:
    client = events_app.test_client()
    keep_meet_subscriptions(events_app)
    [subscription] = google.of_host(HOSTS[1])
    google.suspend(subscription.name, "ENDPOINT_NOT_FOUND")
    google.fail_next("reactivate_subscription", MeetError("404 topic not found"))
    keep_meet_subscriptions(events_app)
    status, checks = readyz(client)
    why = checks["meet_events"]["hosts"]
    assert status == 503 and list(why) == [HOSTS[1]]
    assert "state SUSPENDED" in why[HOSTS[1]] and f"the Pub/Sub topic {TOPIC} no longer exists" in why[HOSTS[1]]


def sample(text: str, name: str, **labels: str) -> float:
    label_text = ",".join(f'{key}="{value}"' for key, value in labels.items())
    pattern = re.escape(name + (f"{{{label_text}}}" if labels else "")) + r" (\S+)"
    found = re.search(r"^" + pattern + r"$", text, re.MULTILINE)
    assert found is not None, f"{name} {labels} is not in /metrics"
    return float(found.group(1))


def test_metrics_show_the_last_minutes_reads_the_quota_and_the_live_subscriptions(
        events_app: Flask, google: FakeMeetEventsGateway, monkeypatch: pytest.MonkeyPatch) -> None:
    seconds = [1000.0]
    monkeypatch.setattr(meet_reads, "WINDOW", meet_reads.ReadWindow(clock=lambda: seconds[0]))
    register_metrics(events_app)  # the feature's blueprint does this
    client = events_app.test_client()
    for _ in range(3):
        meet_reads.note_read(HOSTS[0], "conferenceRecords.participants.list")
    meet_reads.note_read(HOSTS[1], "conferenceRecords.get")
    keep_meet_subscriptions(events_app)
    google.lose(google.of_host(HOSTS[1])[0].name)
    google.fail_next("create_subscription", MeetError("503 backend error"))
    keep_meet_subscriptions(events_app)  # HOSTS[1] is left without one

    text = client.get("/metrics").get_data(as_text=True)
    assert sample(text, "verify_meet_read_calls_per_minute", host=HOSTS[0]) == 3
    assert sample(text, "verify_meet_read_calls_per_minute", host=HOSTS[1]) == 1
    assert sample(text, "verify_meet_read_calls_per_minute_total") == 4
    assert sample(text, "verify_meet_read_quota_per_minute", scope="user") == 300
    assert sample(text, "verify_meet_read_quota_per_minute", scope="project") == 6000
    assert sample(text, "verify_meet_subscription_live", host=HOSTS[0]) == 1
    assert sample(text, "verify_meet_subscription_live", host=HOSTS[1]) == 0

    seconds[0] += 61  # the reads leave the window
    text = client.get("/metrics").get_data(as_text=True)
    assert sample(text, "verify_meet_read_calls_per_minute", host=HOSTS[0]) == 0
    assert sample(text, "verify_meet_read_calls_per_minute_total") == 0
