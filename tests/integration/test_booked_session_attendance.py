"""Booked (scheduled) sessions in the attendance job: synced once their time comes, expired after the TTL."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from integrations.google_meet import ConferenceAttendance
from tests.integration.test_meetings import RecordingGateway, person
from verify_service.accounts import services
from verify_service.calls import attendance
from verify_service.calls.models import CallSession, MeetingStatus
from verify_service.calls.state import SessionStatus
from verify_service.db import unit_of_work
from verify_service.webhooks.models import OutboxEvent

TTL = dt.timedelta(minutes=30)


def booked(sessions, clock, *, start: dt.datetime, meeting: bool = True) -> str:
    with unit_of_work(sessions) as session:
        services.upsert_account(session, "acc-1", services.Profile("Ana", "ana@example.com", "PT"),
                                actor="t", now=clock())
        call = CallSession(account_id="acc-1", status=SessionStatus.SCHEDULED, scheduled_for=start,
                           created_at=clock(), updated_at=clock())
        if meeting:
            call.meet_space, call.meet_host, call.meet_uri = "spaces/s1", "host-a@example.com", "https://meet/x"
            call.meet_status, call.meet_ready_at = MeetingStatus.READY, clock()
        session.add(call)
        session.flush()
        return call.id


def due(sessions, now: dt.datetime) -> list[str]:
    with unit_of_work(sessions, write=False) as session:
        return attendance.sessions_to_sync(session, now=now)


def row(sessions, call_id: str) -> CallSession:
    with unit_of_work(sessions, write=False) as session:
        found = session.get_one(CallSession, call_id)
        session.expunge(found)
        return found


def events(sessions) -> list[str]:
    with unit_of_work(sessions, write=False) as session:
        return list(session.scalars(sa.select(OutboxEvent.type).order_by(OutboxEvent.id)))


def test_a_booked_call_nobody_joins_expires_after_its_time_plus_the_ttl(sessions, clock) -> None:
    gateway = RecordingGateway()
    start = clock() + dt.timedelta(days=1)
    call_id = booked(sessions, clock, start=start)
    assert due(sessions, start - dt.timedelta(seconds=1)) == []  # not before its time
    assert due(sessions, start) == [call_id]
    sync = lambda now: attendance.sync_attendance(sessions, gateway, call_id, ttl=TTL, now=now)
    assert sync(start + TTL - dt.timedelta(seconds=1)).status is SessionStatus.SCHEDULED
    assert sync(start + TTL).status is SessionStatus.EXPIRED
    expired = row(sessions, call_id)
    assert expired.ended_at == start + TTL and expired.conference_end_requested_at == start + TTL
    assert events(sessions) == ["verification.session.expired"]
    assert sync(start + TTL + dt.timedelta(minutes=1)).status is SessionStatus.EXPIRED
    assert events(sessions) == ["verification.session.expired"]  # once


def test_a_booked_call_without_a_meeting_expires_too(sessions, clock) -> None:
    start = clock() + dt.timedelta(hours=2)
    call_id = booked(sessions, clock, start=start, meeting=False)
    assert due(sessions, start + TTL) == [call_id]
    result = attendance.sync_attendance(sessions, RecordingGateway(), call_id, ttl=TTL, now=start + TTL)
    assert result.status is SessionStatus.EXPIRED
    assert row(sessions, call_id).conference_end_requested_at is None  # no conference to end
    assert due(sessions, start + TTL + dt.timedelta(hours=2)) == []


def test_a_booked_call_someone_joins_moves_to_in_progress(sessions, clock) -> None:
    start = clock() + dt.timedelta(days=1)
    call_id = booked(sessions, clock, start=start)
    gateway = RecordingGateway()
    gateway.conferences = [ConferenceAttendance("conferenceRecords/c1", start, None, (
        person("p1", "signed_in", "users/111", "Ana Lima", start + dt.timedelta(minutes=2), None),))]
    result = attendance.sync_attendance(sessions, gateway, call_id, ttl=TTL, now=start + dt.timedelta(minutes=3))
    assert result.status is SessionStatus.IN_PROGRESS
    assert events(sessions) == ["verification.session.started"]


def test_a_waiting_session_that_expires_asks_for_its_conference_to_end(sessions, clock) -> None:
    call_id = booked(sessions, clock, start=clock())
    with unit_of_work(sessions) as session:
        session.get_one(CallSession, call_id).status = SessionStatus.WAITING
    attendance.sync_attendance(sessions, RecordingGateway(), call_id, ttl=TTL, now=clock() + TTL)
    assert row(sessions, call_id).conference_end_requested_at == clock() + TTL
