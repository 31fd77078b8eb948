"""The verification-deadline job and the retention purge, with the FakeClock (both backends)."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from jobs import maintenance
from tests.support.concurrency import run_together
from tests.support.staff import staff_member
from verify_service import closure
from verify_service.accounts import services
from verify_service.accounts.domain import HoldKind
from verify_service.accounts.models import Account, Hold
from verify_service.audit.models import AuditEntry
from verify_service.calls.models import CallParticipant, CallSession, OutcomeRecord
from verify_service.calls.state import Outcome, SessionStatus
from verify_service.db import unit_of_work
from verify_service.review.models import DocumentType, IdentityDocument
from verify_service.review.retention import RetentionReport
from verify_service.webhooks.models import OutboxEvent


def add_account(registry, account_id: str = "acc-1") -> None:
    with unit_of_work(registry.sessions) as session:
        services.upsert_account(session, account_id, services.Profile("Ana Lima", f"{account_id}@example.com", "PT"),
                                actor="t", now=registry.now())


def ask(registry, account_id: str = "acc-1", *, days: int = 3, place_hold: bool = False) -> None:
    with unit_of_work(registry.sessions) as session:
        services.request_verification(session, account_id, reason=services.RequestReason.NEW_ACCOUNT,
                                      deadline=registry.now() + dt.timedelta(days=days), place_hold=place_hold,
                                      actor="t", now=registry.now())


def holds(registry, account_id: str = "acc-1") -> list[Hold]:
    with unit_of_work(registry.sessions, write=False) as session:
        rows = session.scalars(sa.select(Hold).where(Hold.account_id == account_id).order_by(Hold.placed_at)).all()
        session.expunge_all()
        return list(rows)


def event_types(registry, account_id: str = "acc-1") -> list[str]:
    with unit_of_work(registry.sessions, write=False) as session:
        return list(session.scalars(sa.select(OutboxEvent.type).where(OutboxEvent.account_id == account_id)
                                    .order_by(OutboxEvent.id)))


def version(registry, account_id: str = "acc-1") -> int:
    with unit_of_work(registry.sessions, write=False) as session:
        return session.get_one(Account, account_id).restrictions_version


# ---------------------------------------------------------------- deadlines

def test_a_passed_deadline_places_the_pending_hold_once(app, registry, clock) -> None:
    add_account(registry)
    ask(registry, days=3)
    clock.advance(days=3, seconds=-1)
    assert maintenance.enforce_deadlines(app) == 0
    before = version(registry)
    clock.advance(seconds=1)
    assert maintenance.enforce_deadlines(app) == 1
    [hold] = holds(registry)
    assert hold.kind is HoldKind.VERIFICATION_PENDING and hold.reason == "Verification deadline passed"
    assert hold.lifted_at is None and version(registry) == before + 1
    assert event_types(registry)[-1] == "account.hold.placed"
    clock.advance(minutes=1)
    assert maintenance.enforce_deadlines(app) == 0  # once
    assert len(holds(registry)) == 1 and version(registry) == before + 1


def test_a_lead_lifting_the_deadline_hold_is_not_overruled(app, registry, clock) -> None:
    add_account(registry)
    ask(registry, days=1)
    clock.advance(days=1)
    assert maintenance.enforce_deadlines(app) == 1
    with unit_of_work(registry.sessions) as session:
        services.lift_hold(session, holds(registry)[0].id, reason="spoke to them", actor="lead", now=clock())
    clock.advance(minutes=5)
    assert maintenance.enforce_deadlines(app) == 0
    assert [h.lifted_at is not None for h in holds(registry)] == [True]


def test_no_second_hold_when_one_is_active_and_none_for_closed_accounts(app, registry, clock) -> None:
    for account_id in ("acc-1", "acc-2"):
        add_account(registry, account_id)
    ask(registry, "acc-1", days=1, place_hold=True)
    ask(registry, "acc-2", days=1)
    with unit_of_work(registry.sessions) as session:
        closure.close_account(session, "acc-2", actor="account-service", now=clock())
    clock.advance(days=2)
    assert maintenance.enforce_deadlines(app) == 0
    assert len(holds(registry, "acc-1")) == 1 and holds(registry, "acc-2") == []


def test_two_schedulers_racing_place_one_hold_and_one_event(app, registry, clock, backend) -> None:
    for n in range(5):
        add_account(registry, f"acc-{n}")
        ask(registry, f"acc-{n}", days=1)
    clock.advance(days=1)
    results = run_together([lambda: maintenance.enforce_deadlines(app)] * 2)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(results) == 5  # type: ignore[arg-type]
    for n in range(5):
        assert len(holds(registry, f"acc-{n}")) == 1
        assert event_types(registry, f"acc-{n}").count("account.hold.placed") == 1


# ---------------------------------------------------------------- retention

def decided_call(registry, account_id: str, decided_at: dt.datetime, *, tag: str) -> str:
    """A completed call with notes, an ID document and a participant's display name."""
    reviewer = staff_member(registry)
    with unit_of_work(registry.sessions) as session:
        call = CallSession(account_id=account_id, status=SessionStatus.COMPLETED, created_at=decided_at,
                           updated_at=decided_at, ended_at=decided_at, outcome=Outcome.PASSED)
        session.add(call)
        session.flush()
        session.add(OutcomeRecord(call_session_id=call.id, account_id=account_id, result=Outcome.PASSED,
                                  decided_by_id=reviewer.id, decided_at=decided_at, notes=f"notes {tag}", final=True))
        session.add(IdentityDocument(account_id=account_id, call_session_id=call.id, doc_type=DocumentType.PASSPORT,
                                     issuing_country="PT", fingerprint=f"fp-{tag}".ljust(64, "0"), last4="1234",
                                     recorded_by_id=reviewer.id, recorded_at=decided_at))
        session.add(CallParticipant(call_session_id=call.id, participant=f"p-{tag}", kind="signed_in",
                                    role="freelancer", display_name="Ana Lima", first_joined_at=decided_at))
        return call.id


def personal_data(registry, call_id: str) -> tuple[str | None, int, list[str | None]]:
    with unit_of_work(registry.sessions, write=False) as session:
        notes = session.scalar(sa.select(OutcomeRecord.notes).where(OutcomeRecord.call_session_id == call_id))
        documents = session.scalar(sa.select(sa.func.count()).select_from(IdentityDocument)
                                   .where(IdentityDocument.call_session_id == call_id))
        names = list(session.scalars(sa.select(CallParticipant.display_name)
                                     .where(CallParticipant.call_session_id == call_id)))
        return notes, documents, names


@pytest.mark.parametrize("batch", [500, 1])
def test_data_89_days_after_the_decision_stays_and_91_days_goes(app, registry, clock, batch, monkeypatch) -> None:
    if batch == 1:  # the same result one row per batch
        from verify_service.review import retention
        monkeypatch.setitem(retention.purge_personal_data.__kwdefaults__, "batch", 1)
    add_account(registry)
    now = clock()
    old = decided_call(registry, "acc-1", now - dt.timedelta(days=91), tag="old")
    older = decided_call(registry, "acc-1", now - dt.timedelta(days=200), tag="older")
    recent = decided_call(registry, "acc-1", now - dt.timedelta(days=89), tag="recent")
    with unit_of_work(registry.sessions, write=False) as session:
        audit_before = session.scalar(sa.select(sa.func.count()).select_from(AuditEntry))
    report = maintenance.purge_personal_data(app)
    assert (report.sessions, report.documents) == (2, 2)
    assert personal_data(registry, old) == (None, 0, [None])
    assert personal_data(registry, older) == (None, 0, [None])
    assert personal_data(registry, recent) == ("notes recent", 1, ["Ana Lima"])
    with unit_of_work(registry.sessions, write=False) as session:
        assert session.get_one(OutcomeRecord, session.scalar(sa.select(OutcomeRecord.id).where(
            OutcomeRecord.call_session_id == old))).result is Outcome.PASSED  # the decision itself stays
        assert session.scalar(sa.select(sa.func.count()).select_from(AuditEntry)) == audit_before
    assert maintenance.purge_personal_data(app).sessions == 0  # nothing left to do
    clock.advance(days=2)
    assert maintenance.purge_personal_data(app).sessions == 1
    assert personal_data(registry, recent) == (None, 0, [None])


def test_the_retention_period_is_a_setting(app, registry, clock) -> None:
    registry.settings = registry.settings.replace(retention_days=30)
    add_account(registry)
    call_id = decided_call(registry, "acc-1", clock() - dt.timedelta(days=31), tag="a")
    assert maintenance.purge_personal_data(app).sessions == 1
    assert personal_data(registry, call_id)[1] == 0


def ended_call(registry, account_id: str, status: SessionStatus, ended_at: dt.datetime, *, tag: str) -> str:
    """A call that ended without a decision (expired or canceled), with two participants' display names."""
    with unit_of_work(registry.sessions) as session:
        call = CallSession(account_id=account_id, status=status, created_at=ended_at - dt.timedelta(hours=1),
                           updated_at=ended_at, ended_at=ended_at)
        session.add(call)
        session.flush()
        for role, name in (("freelancer", "Ana Lima"), ("reviewer", "Rui Reviewer")):
            session.add(CallParticipant(call_session_id=call.id, participant=f"p-{tag}-{role}", kind="signed_in",
                                        role=role, display_name=name, first_joined_at=ended_at - dt.timedelta(hours=1),
                                        last_left_at=ended_at, connected_seconds=600))
        return call.id


def attendance(registry, call_id: str) -> list[tuple[object, ...]]:
    """(display name, first joined, last left, seconds connected) of each participant, the freelancer first."""
    with unit_of_work(registry.sessions, write=False) as session:
        return [tuple(row) for row in session.execute(
            sa.select(CallParticipant.display_name, CallParticipant.first_joined_at, CallParticipant.last_left_at,
                      CallParticipant.connected_seconds)
            .where(CallParticipant.call_session_id == call_id).order_by(CallParticipant.role))]


@pytest.mark.parametrize("status", [SessionStatus.EXPIRED, SessionStatus.CANCELED])
def test_display_names_of_a_call_that_ended_undecided_go_after_the_period(app, registry, clock,
                                                                         status: SessionStatus) -> None:
    add_account(registry)
    ended_at = clock()
    call_id = ended_call(registry, "acc-1", status, ended_at, tag="a")
    clock.advance(days=89)
    assert maintenance.purge_personal_data(app) == RetentionReport(0, 0)
    assert [row[0] for row in attendance(registry, call_id)] == ["Ana Lima", "Rui Reviewer"]
    clock.advance(days=1, seconds=1)
    assert maintenance.purge_personal_data(app) == RetentionReport(1, 0)
    joined = ended_at - dt.timedelta(hours=1)
    assert attendance(registry, call_id) == [(None, joined, ended_at, 600)] * 2  # the attendance times stay
    assert maintenance.purge_personal_data(app).sessions == 0  # counted once


def test_a_fail_awaiting_its_second_review_is_kept_until_the_lead_decides(app, registry, clock) -> None:
    add_account(registry)
    first_decision = clock()
    call_id = decided_call(registry, "acc-1", first_decision, tag="fail")
    with unit_of_work(registry.sessions) as session:
        session.get_one(CallSession, call_id).status = SessionStatus.AWAITING_SECOND_REVIEW
        outcome = session.scalars(sa.select(OutcomeRecord).where(OutcomeRecord.call_session_id == call_id)).one()
        outcome.result, outcome.final = Outcome.FAILED, False
    clock.advance(days=200)  # the call ended long ago, but it is not over for the lead yet
    assert maintenance.purge_personal_data(app).sessions == 0
    assert personal_data(registry, call_id) == ("notes fail", 1, ["Ana Lima"])
    second_decision = clock()
    with unit_of_work(registry.sessions) as session:
        session.get_one(CallSession, call_id).status = SessionStatus.COMPLETED
        outcome = session.scalars(sa.select(OutcomeRecord).where(OutcomeRecord.call_session_id == call_id)).one()
        outcome.final, outcome.second_decision, outcome.second_decided_at = True, "confirmed", second_decision
    clock.advance(days=89)  # its end is now the second review: the first decision is 289 days old
    assert maintenance.purge_personal_data(app).sessions == 0
    assert personal_data(registry, call_id) == ("notes fail", 1, ["Ana Lima"])
    clock.advance(days=2)
    assert maintenance.purge_personal_data(app) == RetentionReport(1, 1)
    assert personal_data(registry, call_id) == (None, 0, [None])


@pytest.mark.parametrize("batch", [500, 1])
def test_every_kind_of_ended_call_is_purged_and_counted_once(app, registry, clock, batch, monkeypatch) -> None:
    from verify_service.review import retention
    monkeypatch.setitem(retention.purge_personal_data.__kwdefaults__, "batch", batch)
    add_account(registry)
    old = clock() - dt.timedelta(days=91)
    decided = decided_call(registry, "acc-1", old, tag="decided")
    expired = ended_call(registry, "acc-1", SessionStatus.EXPIRED, old, tag="expired")
    canceled = ended_call(registry, "acc-1", SessionStatus.CANCELED, old - dt.timedelta(days=1), tag="canceled")
    recent = ended_call(registry, "acc-1", SessionStatus.EXPIRED, clock() - dt.timedelta(days=89), tag="recent")
    assert maintenance.purge_personal_data(app) == RetentionReport(3, 1)
    assert personal_data(registry, decided) == (None, 0, [None])
    for call_id in (expired, canceled):
        assert [row[0] for row in attendance(registry, call_id)] == [None, None]
    assert [row[0] for row in attendance(registry, recent)] == ["Ana Lima", "Rui Reviewer"]
    assert maintenance.purge_personal_data(app).sessions == 0
