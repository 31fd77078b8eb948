"""The real GoogleMeetGateway over real HTTP against the sandbox emulator (both database backends).

The app runs on a loopback port and serves the emulator itself, exactly as
`make run` does; the gateway reaches it through googleapiclient and httplib2.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from integrations.google_meet import calendar_event_id, meet_check
from integrations.google_meet_adapter import GoogleMeetGateway
from integrations.sandbox_google import sandbox_of
from jobs import calls as call_jobs
from tests.conftest import FakeClock
from tests.integration.test_cli import SCRIPT
from tests.support.sandbox import served
from verify_service.accounts import services
from verify_service.calls import attendance, booking, meetings
from verify_service.calls.models import CallSession, MeetingStatus
from verify_service.calls.state import SessionStatus
from verify_service.db import unit_of_work
from verify_service.freelancer import journey
from verify_service.registry import KEY, Registry
from verify_service.staff.models import Reviewer, Role

TTL = dt.timedelta(minutes=30)


@pytest.fixture
def live(database_url: str, tmp_path: Path, clock: FakeClock) -> Iterator[Flask]:
    with served(database_url, tmp_path, clock) as app:
        yield app


def _registry(app: Flask) -> Registry:
    return app.extensions[KEY]


def _account_and_session(registry: Registry) -> str:
    now = registry.now()
    with unit_of_work(registry.sessions) as session:
        services.upsert_account(session, "acc-1", services.Profile("Ana Lima", "ana@example.com", "PT"),
                                actor="t", now=now)
        reviewer = Reviewer(email="rita@corp.example", display_name="Rita Reviewer", role=Role.REVIEWER,
                            password_hash="x", created_at=now)
        session.add(reviewer)
        session.flush()
        call = CallSession(account_id="acc-1", status=SessionStatus.WAITING, created_at=now, updated_at=now,
                           claimed_by_id=reviewer.id)
        session.add(call)
        session.flush()
        return call.id


def _call(registry: Registry, call_id: str) -> CallSession:
    with unit_of_work(registry.sessions, write=False) as session:
        return session.get_one(CallSession, call_id)


def test_create_members_join_leave_attendance_and_end(live: Flask, clock: FakeClock) -> None:
    registry = _registry(live)
    gateway = registry.meet_gateway()
    assert isinstance(gateway, GoogleMeetGateway)
    call_id = _account_and_session(registry)

    prepared = meetings.prepare_meeting(registry.sessions, gateway, call_id, settings=registry.settings,
                                        now=clock())
    assert prepared.status is MeetingStatus.READY
    call = _call(registry, call_id)
    assert call.meet_uri.startswith(f"{registry.settings.base_url}/sandbox/meet/")
    meetings.add_reviewer(gateway, call, "rita@corp.example")
    client = live.test_client()
    members = client.get(f"/sandbox/google/meet/v2/{call.meet_space}/members").get_json()["members"]
    assert {(m["email"], m.get("role")) for m in members} == {("ana@example.com", None),
                                                               ("rita@corp.example", "COHOST")}
    space = client.get(f"/sandbox/google/meet/v2/{call.meet_space}").get_json()
    assert space["config"]["accessType"] == "RESTRICTED"
    assert space["config"]["artifactConfig"]["recordingConfig"]["autoRecordingGeneration"] == "OFF"

    sandbox = sandbox_of(live)
    freelancer = sandbox.join(call.meet_code, email="ana@example.com", display_name="Ana Lima")
    clock.advance(minutes=1)
    sandbox.join(call.meet_code, email="rita@corp.example", display_name="Rita Reviewer")
    clock.advance(minutes=4)
    synced = attendance.sync_attendance(registry.sessions, gateway, call_id, ttl=TTL, now=clock())
    assert synced.status is SessionStatus.IN_PROGRESS
    assert synced.freelancer.joined_at == clock() - dt.timedelta(minutes=5)
    assert synced.reviewer.joined_at == clock() - dt.timedelta(minutes=4)

    sandbox.leave(freelancer)
    clock.advance(minutes=1)
    gateway.end_active_conference(call.meet_space, host=call.meet_host)  # disconnects the reviewer
    gateway.end_active_conference(call.meet_space, host=call.meet_host)  # nothing live: fine
    synced = attendance.sync_attendance(registry.sessions, gateway, call_id, ttl=TTL, now=clock())
    assert synced.freelancer.left_at == clock() - dt.timedelta(minutes=1)
    assert synced.freelancer.connected_seconds == 5 * 60
    assert synced.reviewer.left_at == clock() and synced.reviewer.connected_seconds == 5 * 60
    stored = _call(registry, call_id)
    assert (stored.freelancer_connected_seconds, stored.reviewer_connected_seconds) == (300, 300)
    with unit_of_work(registry.sessions, write=False) as session:
        assert session.scalar(sa.select(Reviewer.google_user)).startswith("users/")


def test_a_booked_call_puts_the_meet_link_on_the_calendar_then_cancels(live: Flask, clock: FakeClock) -> None:
    registry = _registry(live)
    gateway = registry.meet_gateway()
    _account_and_session(registry)
    start = clock() + dt.timedelta(days=1)
    call_id = booking.book_slot(registry.sessions, gateway, "acc-1", start=start, settings=registry.settings,
                                now=clock(), tz=dt.timezone.utc)
    call = _call(registry, call_id)
    sandbox = sandbox_of(live)
    event = next(e for e in sandbox.calendar.events() if e["id"] == calendar_event_id(call_id))
    assert call.meet_uri in event["description"] and event["location"] == call.meet_uri
    assert [a["email"] for a in event["attendees"]] == ["ana@example.com"]
    assert event["reminders"]["useDefault"] is False
    assert sandbox.notifications[-1].send_updates == "all"

    booking.reschedule_booking(registry.sessions, gateway, "acc-1", call_id, start=start + dt.timedelta(hours=2),
                               settings=registry.settings, now=clock(), tz=dt.timezone.utc)
    event = next(e for e in sandbox.calendar.events() if e["id"] == calendar_event_id(call_id))
    assert event["start"]["dateTime"].startswith((start + dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"))
    journey.cancel_call(registry.sessions, gateway, "acc-1", call_id, settings=registry.settings, now=clock())
    event = next(e for e in sandbox.calendar.events() if e["id"] == calendar_event_id(call_id))
    assert event["status"] == "cancelled"


def test_the_jobs_create_queued_meetings_and_read_attendance(live: Flask, clock: FakeClock) -> None:
    registry = _registry(live)
    call_id = _account_and_session(registry)
    with unit_of_work(registry.sessions) as session:
        row = session.get_one(CallSession, call_id)
        row.meet_status, row.meet_queued_at = MeetingStatus.QUEUED, clock()
    assert call_jobs.prepare_queued_meetings(live) == 1
    call = _call(registry, call_id)
    assert call.meet_status is MeetingStatus.READY
    sandbox_of(live).join(call.meet_code, email="ana@example.com", display_name="Ana Lima")
    clock.advance(minutes=2)
    assert call_jobs.sync_attendance(live) == 1
    assert _call(registry, call_id).status is SessionStatus.IN_PROGRESS
    assert live.test_client().get("/readyz").get_json()["checks"]["meet"]["ok"] is True


def test_meet_check_passes_against_the_sandbox(live: Flask, tmp_path: Path) -> None:
    registry = _registry(live)
    gateway = registry.meet_gateway()
    assert meet_check(gateway, gateway.hosts[0]) == []
    # The command, as an operator runs it, against the running sandbox.
    env = {k: v for k, v in os.environ.items() if not k.startswith("VERIFY_")}
    env.update(VERIFY_ENV="development", VERIFY_INSTANCE_DIR=str(tmp_path / "cli"),
               VERIFY_BASE_URL=registry.settings.base_url)
    result = subprocess.run([str(SCRIPT), "meet", "check"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "Meet works" in result.stdout
