"""``account.closed`` end to end: sessions, conferences, erasure, and the job that ends conferences."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa

from integrations.google_meet import MeetConfigurationError, MeetError
from integrations.google_meet_adapter import GoogleMeetGateway
from jobs.calls import end_requested_conferences, sync_attendance
from tests.functional.test_inbound_webhooks import PROFILE, ok, send
from tests.support.fake_meet import FakeMeetGateway
from tests.support.review_desk import attend, waiting
from verify_service.accounts.domain import RequestStatus
from verify_service.accounts.models import Account, Hold, VerificationRequest
from verify_service.audit.models import AuditEntry
from verify_service.audit.services import verify_chain
from verify_service.calls.models import CallParticipant, CallSession, OutcomeRecord
from verify_service.calls.state import Outcome, SessionStatus
from verify_service.review.models import DocumentType, IdentityDocument
from verify_service.staff.models import Reviewer, Role
from verify_service.webhooks.models import OutboxEvent

S = SessionStatus
# (name, status, meet space): every status, with and without a meeting.
SESSIONS = [
    ("scheduled", S.SCHEDULED, None),
    ("scheduled_meet", S.SCHEDULED, "spaces/scheduled"),
    ("waiting", S.WAITING, "spaces/waiting"),
    ("in_progress", S.IN_PROGRESS, "spaces/in-progress"),
    ("in_progress_bare", S.IN_PROGRESS, None),
    ("second_review", S.AWAITING_SECOND_REVIEW, "spaces/second-review"),
    ("completed", S.COMPLETED, "spaces/completed"),
    ("canceled", S.CANCELED, "spaces/canceled"),
]


def add_sessions(registry, account_id: str, specs: list[tuple[str, SessionStatus, str | None]]) -> dict[str, str]:
    now = registry.now() - dt.timedelta(minutes=30)
    ids = {}
    with registry.sessions.begin() as session:
        for name, status, space in specs:
            row = CallSession(account_id=account_id, status=status, meet_space=space, created_at=now, updated_at=now)
            session.add(row)
            session.flush()
            ids[name] = row.id
    return ids


def add_outcome(registry, account_id: str, call_session_id: str, notes: str) -> None:
    now = registry.now()
    with registry.sessions.begin() as session:
        reviewer = session.scalar(sa.select(Reviewer).where(Reviewer.email == "rev@example.com"))
        if reviewer is None:
            reviewer = Reviewer(email="rev@example.com", display_name="Rev", role=Role.REVIEWER,
                                password_hash="x", created_at=now)
            session.add(reviewer)
            session.flush()
        session.add(OutcomeRecord(call_session_id=call_session_id, account_id=account_id, result=Outcome.PASSED,
                                  decided_by_id=reviewer.id, decided_at=now, notes=notes))
        session.add(IdentityDocument(account_id=account_id, call_session_id=call_session_id,
                                     doc_type=DocumentType.PASSPORT, issuing_country="PT", fingerprint="f" * 64,
                                     last4="1234", recorded_by_id=reviewer.id, recorded_at=now))


def sessions_by_id(registry) -> dict[str, CallSession]:
    with registry.sessions() as session:
        return {row.id: row for row in session.scalars(sa.select(CallSession))}


def counts(registry) -> dict[str, Any]:
    with registry.sessions() as session:
        return {model.__name__: session.scalar(sa.select(sa.func.count()).select_from(model))
                for model in (Hold, AuditEntry, OutboxEvent)}


@pytest.fixture
def closed_account(client, registry) -> dict[str, Any]:
    """acc-1 with a pending hold, sessions in every status and notes, then closed; acc-2 untouched."""
    for account_id in ("acc-1", "acc-2"):
        ok(send(client, registry, "account.upserted", {"account_id": account_id, **PROFILE,
                                                       "photo_url": "https://cdn.example.com/p.jpg",
                                                       "timezone": "Europe/Lisbon", "locale": "pt-PT"}))
    ok(send(client, registry, "verification.requested",
            {"account_id": "acc-1", "reason": "new_account", "place_hold": True}))
    ids = add_sessions(registry, "acc-1", SESSIONS)
    other = add_sessions(registry, "acc-2", [("other_waiting", S.WAITING, "spaces/other")])
    add_outcome(registry, "acc-1", ids["completed"], "Ana showed a passport ending 1234")
    add_outcome(registry, "acc-2", other["other_waiting"], "notes about someone else")
    before = counts(registry)
    ok(send(client, registry, "account.closed", {"account_id": "acc-1"}))
    return {"ids": ids, "other": other, "before": before}


def test_account_closed_cancels_sessions_and_requests_conference_ends(registry, closed_account) -> None:
    ids, rows = closed_account["ids"], sessions_by_id(registry)
    status = {name: rows[ids[name]].status for name, _, _ in SESSIONS}
    # Every call that is not over, a fail waiting for its second review included, ends canceled.
    assert status == {"scheduled": S.CANCELED, "scheduled_meet": S.CANCELED, "waiting": S.CANCELED,
                      "in_progress": S.CANCELED, "in_progress_bare": S.CANCELED,
                      "second_review": S.CANCELED, "completed": S.COMPLETED, "canceled": S.CANCELED}
    closed = {"scheduled", "scheduled_meet", "waiting", "in_progress", "in_progress_bare", "second_review"}
    assert {name for name in status if rows[ids[name]].end_reason is not None and
            rows[ids[name]].end_reason.value == "account_closed"} == closed
    requested = {name for name, _, _ in SESSIONS if rows[ids[name]].conference_end_requested_at is not None}
    # Only meetings that could be live; a scheduled meeting is not open yet.
    assert requested == {"waiting", "in_progress", "second_review"}
    assert rows[ids["waiting"]].ended_at == registry.now()
    with registry.sessions() as session:
        request = session.scalars(sa.select(VerificationRequest).where(VerificationRequest.account_id == "acc-1")).one()
        canceled = session.scalars(sa.select(OutboxEvent).where(
            OutboxEvent.type == "verification.session.canceled").order_by(OutboxEvent.seq)).all()
    assert (request.status, request.closed_at) == (RequestStatus.CANCELED, registry.now())
    # Each canceled call is announced once, by account_closed; together they are one published change.
    assert sorted(e.data["session"]["id"] for e in canceled) == sorted(ids[name] for name in closed)
    assert {(e.data["by"], e.data["restrictions_version"]) for e in canceled} == {("account_closed", 2)}
    assert canceled[-1].data["verification"]["request"] is None
    other = rows[closed_account["other"]["other_waiting"]]
    assert other.status is S.WAITING and other.conference_end_requested_at is None


def test_account_closed_erases_personal_data_and_keeps_the_record(client, registry, closed_account) -> None:
    with registry.sessions() as session:
        account = session.get(Account, "acc-1")
        assert [account.display_name, account.email, account.country, account.photo_url, account.timezone,
                account.locale] == [None] * 6
        assert account.closed_at == registry.now()
        assert account.restrictions_version == 2  # the open request closed: one change
        assert session.get(Account, "acc-2").email == "ana@example.com"
        rows = session.execute(sa.select(OutcomeRecord.account_id, OutcomeRecord.notes))
        notes = {account_id: note for account_id, note in rows}
        assert notes == {"acc-1": None, "acc-2": "notes about someone else"}
        # The ID evidence of the closed account is gone; the other account's stays.
        assert session.scalars(sa.select(IdentityDocument.account_id)).all() == ["acc-2"]
        assert session.scalars(sa.select(Hold.lifted_at)).all() == [None]
        entry = session.scalars(sa.select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1)).one()
        assert (entry.action, entry.actor, entry.account_id) == ("account.closed", "account-service:webhook",
                                                                 "acc-1")
        assert entry.details == {"sessions_canceled": 6, "conferences_to_end": 3, "invites_to_delete": 0,
                                 "request_canceled": True, "freelancer_sessions_revoked": 0}
        assert verify_chain(session).ok
        every_detail = str(session.scalars(sa.select(AuditEntry.details)).all())
        every_event = str(session.scalars(sa.select(OutboxEvent.data)).all())
    assert "ana@example.com" not in every_detail + every_event
    before = closed_account["before"]
    assert counts(registry) == {**before, "AuditEntry": before["AuditEntry"] + 1,
                                "OutboxEvent": before["OutboxEvent"] + 6}


def test_closing_again_or_closing_an_unknown_account_changes_nothing(client, registry, closed_account) -> None:
    after = counts(registry)
    ok(send(client, registry, "account.closed", {"account_id": "acc-1"}))
    ok(send(client, registry, "account.closed", {"account_id": "never-seen"}))
    assert counts(registry) == after
    with registry.sessions() as session:
        assert session.get(Account, "never-seen") is None


def test_the_job_ends_requested_conferences_and_retries_failures(app, registry, clock, closed_account) -> None:
    ids = closed_account["ids"]
    gateway = FakeMeetGateway()
    registry.meet = gateway
    for space in ("spaces/waiting", "spaces/in-progress", "spaces/other"):
        gateway.start_conference(space)
    gateway.fail_next(MeetError("Meet answered 503"))
    first = end_requested_conferences(app)
    assert (first.ended, first.failed) == (2, 1)
    rows = sessions_by_id(registry)
    pending = [name for name in ("waiting", "in_progress", "second_review")
               if rows[ids[name]].conference_ended_at is None]
    assert len(pending) == 1 and rows[ids[pending[0]]].conference_end_requested_at is not None

    clock.advance(minutes=1)
    second = end_requested_conferences(app)
    assert (second.ended, second.failed) == (1, 0)
    assert sessions_by_id(registry)[ids[pending[0]]].conference_ended_at == clock()
    assert sorted(gateway.ended) == ["spaces/in-progress", "spaces/waiting"]
    assert gateway.is_live("spaces/other")  # another account's call goes on
    assert end_requested_conferences(app).ended == 0


def test_a_conference_nobody_is_in_counts_as_ended(app, registry, closed_account) -> None:
    registry.meet = FakeMeetGateway()  # knows no live conference at all
    assert end_requested_conferences(app).ended == 3
    assert registry.meet.ended == []


def test_the_registry_builds_one_sandbox_gateway(registry) -> None:
    assert registry.meet is None
    gateway = registry.meet_gateway()
    assert isinstance(gateway, GoogleMeetGateway)  # pointed at the sandbox emulator
    assert registry.meet_gateway() is gateway


def test_the_job_fails_loudly_without_a_usable_backend(app, registry, closed_account) -> None:
    registry.settings = registry.settings.replace(meet_backend="google")
    with pytest.raises(MeetConfigurationError, match="VERIFY_GOOGLE_SERVICE_ACCOUNT_FILE"):
        end_requested_conferences(app)
    rows = sessions_by_id(registry).values()
    assert all(row.conference_ended_at is None for row in rows)
    assert sum(row.conference_end_requested_at is not None for row in rows) == 3


def test_once_closed_the_attendance_job_never_writes_the_display_names_back(app, api, registry, clock) -> None:
    gateway = registry.meet = FakeMeetGateway()
    call_id = waiting(api, registry, gateway, "acc-9")
    attend(registry, call_id, minutes_ago=2)
    assert sync_attendance(app) == 1

    def names() -> list[str | None]:
        with registry.sessions() as session:
            return list(session.scalars(sa.select(CallParticipant.display_name)
                                        .where(CallParticipant.call_session_id == call_id)))

    assert names() == ["The Freelancer"]
    ok(send(app.test_client(), registry, "account.closed", {"account_id": "acc-9"}))
    assert names() == [None]
    for _ in range(3):  # the job's next runs, within the hour it still reads ended calls
        clock.advance(seconds=30)
        sync_attendance(app)
    assert names() == [None]
    with registry.sessions() as session:
        call = session.get_one(CallSession, call_id)
    assert call.status is S.CANCELED and call.attendance_synced_at < clock()
