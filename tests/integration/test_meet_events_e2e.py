"""Meet in real time, end to end on both databases: the app on a loopback port serves the sandbox,
whose Workspace Events subscriptions push Meet's events over real HTTP, with tokens signed by the
sandbox's own key, to ``POST /webhooks/google/meet-events`` — the real verification code.

Covered: events in order, duplicated, out of order, after a subscription was recreated; forged,
expired, misdirected and missing tokens refused (401, nothing changed); a lost event caught by
reconciliation (and no Meet read before it is due); a suspended subscription reactivated by its
lifecycle event.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from flask import Flask

from integrations.meet_events import PARTICIPANT_JOINED, PARTICIPANT_LEFT, CloudEvent, push_body
from integrations.sandbox_google import sandbox_of
from integrations.sandbox_google.push import new_signing_key, sign_push_token
from jobs import calls as call_jobs
from jobs import meet_events as event_jobs
from tests.conftest import FakeClock
from tests.support.sandbox import served
from verify_service.accounts import services
from verify_service.calls import meetings
from verify_service.calls.models import CallParticipantSession, CallSession, MeetingStatus
from verify_service.calls.state import SessionStatus
from verify_service.db import unit_of_work
from verify_service.meet_events.models import MeetEventReceipt, MeetSubscription
from verify_service.observability import meet_reads
from verify_service.registry import KEY, Registry
from verify_service.settings import MEET_EVENTS_PATH
from verify_service.staff.models import Reviewer, Role

TOPIC = "projects/verify-test/topics/meet-events"


@pytest.fixture
def live(database_url: str, tmp_path: Path, clock: FakeClock) -> Iterator[Flask]:
    with served(database_url, tmp_path, clock, meet_events_topic=TOPIC) as app:
        push = sandbox_of(app).push
        push.backoff_base, push.backoff_cap = 0.05, 0.2
        event_jobs.keep_meet_subscriptions(app)  # one subscription per host user, as the scheduler makes at start
        yield app


def _registry(app: Flask) -> Registry:
    return app.extensions[KEY]


def _call(app: Flask, call_id: str) -> CallSession:
    with unit_of_work(_registry(app).sessions, write=False) as db:
        return db.get_one(CallSession, call_id)


def _waiting_call(app: Flask) -> CallSession:
    """A waiting call with its sandbox meeting, claimed by Rita (whose Meet name is her staff name)."""
    registry = _registry(app)
    now = registry.now()
    with unit_of_work(registry.sessions) as db:
        services.upsert_account(db, "acc-1", services.Profile("Ana Lima", "ana@example.com", "PT"), actor="t",
                                now=now)
        rita = Reviewer(email="rita@corp.example", display_name="Rita Reviewer", role=Role.REVIEWER,
                        password_hash="x", created_at=now)
        db.add(rita)
        db.flush()
        call = CallSession(account_id="acc-1", status=SessionStatus.WAITING, created_at=now, updated_at=now,
                           claimed_by_id=rita.id)
        db.add(call)
        db.flush()
        call_id = call.id
    prepared = meetings.prepare_meeting(registry.sessions, registry.meet_gateway(), call_id,
                                        settings=registry.settings, now=now)
    assert prepared.status is MeetingStatus.READY
    return _call(app, call_id)


def _flush(app: Flask) -> None:
    assert sandbox_of(app).push.flush(timeout=20), "the sandbox's pushes did not all go through"


def _list_reads() -> float:
    return sum(sample.value for metric in meet_reads.READS.collect() for sample in metric.samples
               if sample.name.endswith("_total") and sample.labels["method"].endswith(".list"))


def _post(app: Flask, body: dict[str, Any], *, token: str | None = None) -> requests.Response:
    settings = _registry(app).settings
    if token is None:
        token = sign_push_token(settings.meet_events_audience, settings.meet_events_push_account,
                                now=dt.datetime.now(dt.timezone.utc), key=sandbox_of(app).push.key)
    return requests.post(settings.base_url + MEET_EVENTS_PATH, json=body, timeout=10,
                         headers={"Authorization": f"Bearer {token}"} if token else {})


def _state(app: Flask, call_id: str) -> tuple[Any, ...]:
    call = _call(app, call_id)
    with unit_of_work(_registry(app).sessions, write=False) as db:
        receipts = db.scalar(sa.select(sa.func.count()).select_from(MeetEventReceipt))
        spans = db.execute(sa.select(CallParticipantSession.name, CallParticipantSession.started_at,
                                     CallParticipantSession.ended_at).order_by(CallParticipantSession.name)).all()
    return (call.status, call.freelancer_joined_at, call.freelancer_left_at, call.freelancer_connected_seconds,
            call.reviewer_joined_at, call.reviewer_left_at, receipts, tuple(spans))


def test_events_in_order_update_attendance_at_once_without_reading_lists(live: Flask, clock: FakeClock) -> None:
    call = _waiting_call(live)
    sandbox = sandbox_of(live)
    reads = _list_reads()
    freelancer = sandbox.join(call.meet_code, email="ana@example.com", display_name="Ana Lima")
    _flush(live)
    joined = _call(live, call.id)
    assert joined.status is SessionStatus.IN_PROGRESS  # the waiting room shows it on its next poll
    assert joined.freelancer_joined_at == clock() and joined.meet_event_at == clock()
    clock.advance(minutes=1)
    sandbox.join(call.meet_code, email="rita@corp.example", display_name="Rita Reviewer")
    _flush(live)
    assert _call(live, call.id).reviewer_joined_at == clock()
    clock.advance(minutes=4)
    sandbox.leave(freelancer)
    _flush(live)
    left = _call(live, call.id)
    assert left.freelancer_left_at == clock() and left.freelancer_connected_seconds == 300
    assert left.reviewer_left_at is None
    # Events name resources only: the service read the conference and each participant once, never a list.
    assert _list_reads() == reads
    with unit_of_work(_registry(live).sessions, write=False) as db:
        assert db.scalar(sa.select(Reviewer.google_user)).startswith("users/")  # Rita recognised from the event


def test_a_duplicated_event_changes_nothing(live: Flask, clock: FakeClock) -> None:
    call = _waiting_call(live)
    sandbox = sandbox_of(live)
    sandbox.join(call.meet_code, email="ana@example.com", display_name="Ana Lima")
    _flush(live)
    delivered = [attempt for attempt in sandbox.push.attempts if attempt.status == 204]
    before = _state(live, call.id)
    clock.advance(minutes=2)
    for attempt in delivered:  # Pub/Sub delivers at least once: every message again, a little later
        body = push_body(attempt.event, message_id="again", push_subscription="projects/p/subscriptions/s",
                         publish_time=clock())
        assert _post(live, body).status_code == 204
    assert _state(live, call.id) == before


def _captured(app: Flask) -> list[CloudEvent]:
    """Keep the sandbox's pushes instead of delivering them (the test delivers them as it likes)."""
    kept: list[CloudEvent] = []

    def keep(url: str, headers: dict[str, str], body: dict[str, Any]) -> int:
        from integrations.meet_events import event_from_push

        kept.append(event_from_push(body))
        return 204

    sandbox_of(app).push.transport = keep
    return kept


def test_events_out_of_order_end_where_in_order_events_end(live: Flask, clock: FakeClock) -> None:
    call = _waiting_call(live)
    sandbox = sandbox_of(live)
    kept = _captured(live)
    person = sandbox.join(call.meet_code, email="ana@example.com", display_name="Ana Lima")
    clock.advance(minutes=3)
    sandbox.leave(person)  # the last one out: the conference ends too
    _flush(live)
    types = [event.type for event in kept]
    assert PARTICIPANT_JOINED in types and PARTICIPANT_LEFT in types
    for event in reversed(kept):  # the end first, the start last
        body = push_body(event, message_id=event.id, push_subscription="projects/p/subscriptions/s",
                         publish_time=clock())
        assert _post(live, body).status_code == 204
    reversed_state = _state(live, call.id)
    call_after = _call(live, call.id)
    assert call_after.freelancer_joined_at == clock() - dt.timedelta(minutes=3)
    assert call_after.freelancer_left_at == clock() and call_after.freelancer_connected_seconds == 180
    for event in kept:  # then all of them again, in order: nothing moves
        body = push_body(event, message_id=event.id, push_subscription="projects/p/subscriptions/s",
                         publish_time=clock())
        assert _post(live, body).status_code == 204
    assert _state(live, call.id) == reversed_state


def test_events_after_a_subscription_was_recreated(live: Flask, clock: FakeClock) -> None:
    registry = _registry(live)
    sandbox = sandbox_of(live)
    with unit_of_work(registry.sessions, write=False) as db:
        host = registry.meet_gateway().hosts[0]
        old = db.get_one(MeetSubscription, host).name
    sandbox.events.forget(old)  # deleted behind the service's back
    event_jobs.keep_meet_subscriptions(live)
    with unit_of_work(registry.sessions, write=False) as db:
        row = db.get_one(MeetSubscription, host)
        assert row.state == "ACTIVE" and row.name not in (None, old)
    call = _waiting_call(live)
    assert call.meet_host == host
    sandbox.join(call.meet_code, email="ana@example.com", display_name="Ana Lima")
    _flush(live)
    assert _call(live, call.id).status is SessionStatus.IN_PROGRESS


@pytest.mark.parametrize("case", ["forged", "expired", "audience", "email", "missing"])
def test_a_bad_push_token_is_refused_and_changes_nothing(live: Flask, clock: FakeClock, case: str) -> None:
    call = _waiting_call(live)
    sandbox = sandbox_of(live)
    kept = _captured(live)
    sandbox.join(call.meet_code, email="ana@example.com", display_name="Ana Lima")
    _flush(live)
    before = _state(live, call.id)
    settings = _registry(live).settings
    now = dt.datetime.now(dt.timezone.utc)
    audience, email, key = settings.meet_events_audience, settings.meet_events_push_account, sandbox.push.key
    token = {
        "forged": lambda: sign_push_token(audience, email, now=now, key=new_signing_key()),
        "expired": lambda: sign_push_token(audience, email, now=now - dt.timedelta(hours=2), key=key),
        "audience": lambda: sign_push_token("https://elsewhere.example/push", email, now=now, key=key),
        "email": lambda: sign_push_token(audience, "someone@evil.example", now=now, key=key),
        "missing": lambda: "",
    }[case]()
    for event in kept:
        body = push_body(event, message_id=event.id, push_subscription="projects/p/subscriptions/s",
                         publish_time=clock())
        response = _post(live, body, token=token)
        assert response.status_code == 401
        assert response.headers["Content-Type"].startswith("application/problem+json")
        assert "Bearer" in response.headers["WWW-Authenticate"]
    assert _state(live, call.id) == before


def test_a_push_that_is_no_cloud_event_is_400(live: Flask) -> None:
    for body in ({"message": {"data": "e30="}}, {"nope": 1},
                 {"message": {"attributes": {"ce-id": "x", "ce-type": PARTICIPANT_JOINED, "ce-source": "s",
                                             "ce-time": "yesterday", "ce-specversion": "1.0"}}}):
        response = _post(live, body)
        assert response.status_code == 400, response.text
        assert response.json()["code"] == "malformed_request"


def test_a_lost_event_is_caught_by_reconciliation(live: Flask, clock: FakeClock) -> None:
    registry = _registry(live)
    call = _waiting_call(live)
    sandbox = sandbox_of(live)
    _captured(live)  # the join's push is lost on its way
    sandbox.join(call.meet_code, email="ana@example.com", display_name="Ana Lima")
    _flush(live)
    assert _call(live, call.id).status is SessionStatus.WAITING
    reads = _list_reads()
    clock.advance(seconds=registry.settings.attendance_reconcile_seconds - 60)
    assert call_jobs.sync_attendance(live) == 0  # not due yet: the job reads nothing from Meet
    assert _list_reads() == reads and _call(live, call.id).status is SessionStatus.WAITING
    clock.advance(seconds=60)
    assert call_jobs.sync_attendance(live) == 1  # quiet for the reconcile time: read, and the join is found
    caught = _call(live, call.id)
    assert caught.status is SessionStatus.IN_PROGRESS
    assert caught.freelancer_joined_at == clock() - dt.timedelta(seconds=registry.settings.attendance_reconcile_seconds)
    assert _list_reads() > reads


def test_a_suspended_subscription_is_reactivated_by_its_lifecycle_event(live: Flask, clock: FakeClock) -> None:
    registry = _registry(live)
    sandbox = sandbox_of(live)
    host = registry.meet_gateway().hosts[0]
    with unit_of_work(registry.sessions, write=False) as db:
        name = db.get_one(MeetSubscription, host).name
    sandbox.events.suspend(name, "ENDPOINT_PERMISSION_DENIED")  # pushes the suspended lifecycle event
    _flush(live)
    with unit_of_work(registry.sessions, write=False) as db:
        row = db.get_one(MeetSubscription, host)
        assert (row.state, row.name, row.problem) == ("ACTIVE", name, None)  # the push reactivated it at once
    assert next(s for s in sandbox.events.subscriptions if s["name"] == name)["state"] == "ACTIVE"


def test_the_push_verifier_reads_the_certificates_over_http_and_keeps_them(live: Flask,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Production's certificate source (HttpCerts, as for Google's endpoint) against the sandbox's served ones."""
    from verify_service.meet_events.tokens import HttpCerts, PushRefused, PushVerifier
    from verify_service.settings import SANDBOX_EVENTS

    settings = _registry(live).settings
    fetched: list[str] = []
    seconds = [0.0]
    certs = HttpCerts(settings.base_url + SANDBOX_EVENTS["certs"], clock=lambda: seconds[0])
    original = requests.get

    def counting_get(url: str, **kwargs: Any) -> requests.Response:
        fetched.append(url)
        return original(url, **kwargs)

    verifier = PushVerifier(audience=settings.meet_events_audience, email=settings.meet_events_push_account,
                            certs=certs)
    now = dt.datetime.now(dt.timezone.utc)
    token = sign_push_token(settings.meet_events_audience, settings.meet_events_push_account, now=now,
                            key=sandbox_of(live).push.key)
    monkeypatch.setattr(requests, "get", counting_get)  # the module tokens.py reads the certificates with
    for _ in range(3):
        assert verifier.verify(f"Bearer {token}")["email"] == settings.meet_events_push_account
    assert len(fetched) == 1  # kept for the Cache-Control max-age the endpoint sent
    stranger = sign_push_token(settings.meet_events_audience, settings.meet_events_push_account, now=now,
                               key=new_signing_key())
    with pytest.raises(PushRefused, match="does not verify"):
        verifier.verify(f"Bearer {stranger}")
    assert len(fetched) == 1  # an unknown key right after a read: no second read (at most one a minute)
    seconds[0] += 61
    with pytest.raises(PushRefused, match="does not verify"):
        verifier.verify(f"Bearer {stranger}")
    assert len(fetched) == 2  # a minute on, an unknown key reads them once more (Google rotates keys)
    with pytest.raises(PushRefused):
        verifier.verify(f"Bearer {stranger}")
    assert len(fetched) == 2  # and not at every push
    seconds[0] += 3600
    assert verifier.verify(f"Bearer {token}")["email"] == settings.meet_events_push_account
    assert len(fetched) == 3  # past the max-age: read again
