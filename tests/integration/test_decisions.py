"""Reviewer decisions: claims, outcomes, the four-eyes second review, on both backends.

The decision service is called directly here, with the evidence each
decision needs put in place as the attendance re-read would store it
(:func:`give_evidence`); the rules of evidence themselves, and the re-read
from Meet, are tested in test_evidence.py.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import FakeClock
from tests.support.review_desk import POLICY, REASONS, give_evidence
from verify_service.accounts import services
from verify_service.accounts.errors import AccountClosed
from verify_service.accounts.restrictions import Restrictions, restrictions_for
from verify_service.closure import close_account
from verify_service.accounts.domain import HoldKind, RequestReason, RequestStatus, VerificationStatus
from verify_service.accounts.models import Account, Hold, VerificationRequest
from verify_service.audit.models import AuditEntry
from verify_service.audit.services import verify_chain
from verify_service.calls.errors import CallSessionNotFound
from verify_service.calls.models import CallSession, OutcomeRecord
from verify_service.calls.state import Outcome, SessionStatus
from verify_service.db import unit_of_work
from verify_service.errors import InvalidInput
from verify_service.review import decisions, queue
from verify_service.review.errors import (
    FourEyes,
    NotSessionClaimer,
    OutcomeNotFound,
    OutcomeNotPendingReview,
    SessionAlreadyClaimed,
    SessionNotClaimable,
    SessionNotClaimed,
    SessionNotInProgress,
)
from verify_service.staff.errors import LeadRequired, ReviewerInactive, ReviewerNotFound
from verify_service.staff.models import Reviewer, Role
from verify_service.staff.passwords import create_reviewer
from verify_service.webhooks.models import OutboxEvent

PROFILE = services.Profile(display_name="Ana Lima", email="ana@example.com", country="PT")
PENDING = ["submit_proposals", "change_profile_photo"]
FAILED = ["submit_proposals", "withdraw_earnings", "accept_direct_hires", "appear_in_search"]


@pytest.fixture
def staff(sessions: sessionmaker[Session], clock: FakeClock) -> dict[str, int]:
    """Two reviewers and two leads, by name → id."""
    ids = {}
    with unit_of_work(sessions) as session:
        for name, role in [("rita", Role.REVIEWER), ("bo", Role.REVIEWER), ("lea", Role.LEAD), ("max", Role.ADMIN)]:
            ids[name] = create_reviewer(session, email=f"{name}@example.com", display_name=name.title(), role=role,
                                        password="correct horse battery", actor="test", now=clock()).id
    return ids


@pytest.fixture
def call_id(sessions: sessionmaker[Session], clock: FakeClock) -> str:
    """acc-1, verification requested with a pending hold (version 1, events 1–2), and a waiting session."""
    with unit_of_work(sessions) as session:
        services.upsert_account(session, "acc-1", PROFILE, actor="test", now=clock())
        request, _, _ = services.request_verification(session, "acc-1", reason=RequestReason.NEW_ACCOUNT,
                                                      deadline=None, place_hold=True, actor="account-service",
                                                      now=clock())
    return new_session(sessions, clock, request.id)


def new_session(sessions, clock, request_id: str | None, status: SessionStatus = SessionStatus.WAITING) -> str:
    with unit_of_work(sessions) as session:
        call = CallSession(account_id="acc-1", verification_request_id=request_id, status=status,
                           created_at=clock(), updated_at=clock())
        session.add(call)
        session.flush()
        return call.id


def run(sessions, clock, fn, *args: Any, **kwargs: Any) -> Any:
    """Call a decision service in its own unit of work, a second later."""
    with unit_of_work(sessions) as session:
        return fn(session, *args, now=clock.advance(seconds=1), **kwargs)


def claim(sessions, clock, call_id: str, reviewer_id: int) -> CallSession:
    return run(sessions, clock, decisions.claim_session, call_id, reviewer_id=reviewer_id)


def decide(sessions, clock, call_id: str, reviewer_id: int, result: Outcome, notes: str | None = None,
           evidence: bool = True) -> OutcomeRecord:
    if evidence:
        give_evidence(sessions, call_id, reviewer_id, result, clock())
    return run(sessions, clock, decisions.record_outcome, call_id, reviewer_id=reviewer_id, result=result,
               notes=notes, reason_codes=REASONS.get(result, []), checklist=dict.fromkeys(POLICY.checklist, True),
               policy=POLICY)


def review(sessions, clock, outcome_id: str, lead_id: int, decision: str, notes: str | None = None) -> OutcomeRecord:
    return run(sessions, clock, decisions.second_review, outcome_id, lead_id=lead_id, decision=decision,
               notes=notes)


def events(sessions) -> list[OutboxEvent]:
    with unit_of_work(sessions, write=False) as session:
        return list(session.scalars(sa.select(OutboxEvent).order_by(OutboxEvent.seq)))


def load(sessions, model: type, key: Any) -> Any:
    with unit_of_work(sessions, write=False) as session:
        return session.get_one(model, key)


def the_request(sessions) -> VerificationRequest:
    with unit_of_work(sessions, write=False) as session:
        return session.scalars(sa.select(VerificationRequest)).one()


def holds(sessions) -> dict[HoldKind, Hold]:
    with unit_of_work(sessions, write=False) as session:
        return {h.kind: h for h in session.scalars(sa.select(Hold).where(Hold.kind != HoldKind.MANUAL))}


def state(sessions, call_id: str) -> tuple[Any, ...]:
    """Everything a refused decision must leave alone."""
    with unit_of_work(sessions, write=False) as session:
        account = session.get_one(Account, "acc-1")
        call = session.get_one(CallSession, call_id)
        count = session.scalar(sa.select(sa.func.count()).select_from(OutboxEvent))
        outcomes = session.execute(sa.select(OutcomeRecord.id, OutcomeRecord.final,
                                             OutcomeRecord.second_decision)).all()
        audit = session.scalar(sa.select(sa.func.count()).select_from(AuditEntry))
        return (account.restrictions_version, account.verification_status, count, call.status, call.claimed_by_id,
                call.outcome, sorted(outcomes), audit, restrictions_for(session, "acc-1").blocked)


def restrictions(sessions) -> Restrictions:
    with unit_of_work(sessions, write=False) as session:
        return restrictions_for(session, "acc-1")


def audit_actions(sessions) -> list[str]:
    with unit_of_work(sessions, write=False) as session:
        assert verify_chain(session).ok
        return list(session.scalars(sa.select(AuditEntry.action).order_by(AuditEntry.seq)))


# ---------------------------------------------------------------- passing

def test_a_pass_verifies_and_lifts_the_verification_holds_in_one_change(sessions, clock, staff, call_id) -> None:
    with unit_of_work(sessions) as session:  # an earlier fail's hold, and a lead's manual hold that must stay
        services.place_hold(session, "acc-1", kind=HoldKind.VERIFICATION_FAILED, reason="old fail", actor="t",
                            now=clock())
        services.place_hold(session, "acc-1", kind=HoldKind.MANUAL, blocks=["appear_in_search"], reason="risk",
                            actor="t", now=clock())
    claimed = claim(sessions, clock, call_id, staff["rita"])
    assert (claimed.status, claimed.claimed_by_id, claimed.started_at) == (SessionStatus.IN_PROGRESS, staff["rita"],
                                                                          clock())
    outcome = decide(sessions, clock, call_id, staff["rita"], Outcome.PASSED, notes="  ID matched the profile.  ")

    assert (outcome.final, outcome.result, outcome.notes) == (True, Outcome.PASSED, "ID matched the profile.")
    call = load(sessions, CallSession, call_id)
    assert (call.status, call.outcome, call.ended_at) == (SessionStatus.COMPLETED, Outcome.PASSED, clock())
    request = the_request(sessions)
    assert (request.status, request.closed_at) == (RequestStatus.PASSED, clock())
    account = load(sessions, Account, "acc-1")
    assert (account.verification_status, account.verification_changed_at) == (VerificationStatus.VERIFIED, clock())
    for hold in holds(sessions).values():
        assert (hold.lifted_at, hold.lifted_by, hold.lift_reason) == (
            clock(), f"reviewer:{staff['rita']}", "Identity verified on a video call")

    started = events(sessions)[4]  # 1–2: the request; 3–4: the two holds placed above; 5: the claim
    assert (started.seq, started.type, started.data["session"]["id"]) == (5, "verification.session.started", call_id)
    assert "restrictions_version" not in started.data  # a call starting changes no restriction
    new = events(sessions)[5:]
    assert [(e.seq, e.type) for e in new] == [
        (6, "verification.passed"), (7, "account.hold.lifted"), (8, "account.hold.lifted")]
    assert {e.data["restrictions_version"] for e in new} == {4}
    assert new[0].data["verification"]["status"] == "verified"
    assert new[0].data["request_id"] == request.id and new[0].data["session"]["id"] == call_id
    assert "notes" not in str(new[0].data) and "ID matched" not in str([e.data for e in new])
    assert {e.data["hold"]["kind"] for e in new[1:]} == {"verification_pending", "verification_failed"}
    assert new[-1].data["restrictions"]["blocked"] == ["appear_in_search"]
    snapshot = restrictions(sessions)
    assert (snapshot.version, snapshot.blocked) == (4, ["appear_in_search"])
    assert audit_actions(sessions)[-5:] == [
        "session.claimed", "outcome.recorded", "verification.passed", "hold.lifted", "hold.lifted"]


def test_a_session_the_freelancer_joined_first_can_be_claimed(sessions, clock, staff, call_id) -> None:
    request_id = the_request(sessions).id
    joined = new_session(sessions, clock, request_id, status=SessionStatus.IN_PROGRESS)
    claimed = claim(sessions, clock, joined, staff["bo"])
    assert (claimed.status, claimed.claimed_by_id, claimed.claimed_at) == (
        SessionStatus.IN_PROGRESS, staff["bo"], clock())


# ---------------------------------------------------------------- failing: four eyes

def test_a_fail_waits_for_a_second_review_and_publishes_nothing(sessions, clock, staff, call_id) -> None:
    claim(sessions, clock, call_id, staff["rita"])
    outcome = decide(sessions, clock, call_id, staff["rita"], Outcome.FAILED, notes="Face did not match the ID")
    assert (outcome.final, outcome.result) == (False, Outcome.FAILED)
    call = load(sessions, CallSession, call_id)
    assert (call.status, call.ended_at) == (SessionStatus.AWAITING_SECOND_REVIEW, clock())  # the call is over
    assert [e.type for e in events(sessions)][2:] == ["verification.session.started"]  # nothing of the fail yet
    assert the_request(sessions).status is RequestStatus.OPEN
    assert restrictions(sessions).version == 1
    assert HoldKind.VERIFICATION_FAILED not in holds(sessions)
    with unit_of_work(sessions, write=False) as session:
        assert [pending.outcome.id for pending in queue.second_reviews(session)] == [outcome.id]


def test_a_lead_confirming_a_fail_places_the_failed_hold(sessions, clock, staff, call_id) -> None:
    claim(sessions, clock, call_id, staff["rita"])
    outcome = decide(sessions, clock, call_id, staff["rita"], Outcome.FAILED, notes="Face did not match the ID")
    decided_at = clock()
    clock.advance(hours=20)  # the lead comes the next day
    confirmed = review(sessions, clock, outcome.id, staff["lea"], "confirm", notes="Agreed after the recording")

    assert (confirmed.final, confirmed.result, confirmed.second_decision) == (True, Outcome.FAILED, "confirmed")
    assert (confirmed.second_reviewer_id, confirmed.second_decided_at) == (staff["lea"], clock())
    assert confirmed.notes.startswith("Face did not match the ID") and "Agreed after the recording" in confirmed.notes
    call = load(sessions, CallSession, call_id)
    # The call ended at its first decision, not when the lead confirmed it (wait estimates use its length).
    assert (call.status, call.outcome, call.ended_at) == (SessionStatus.COMPLETED, Outcome.FAILED, decided_at)
    request = the_request(sessions)
    assert (request.status, request.closed_at) == (RequestStatus.FAILED, clock())
    assert load(sessions, Account, "acc-1").verification_status is VerificationStatus.FAILED
    failed = holds(sessions)[HoldKind.VERIFICATION_FAILED]
    assert (failed.blocks, failed.verification_request_id, failed.placed_by, failed.lifted_at) == (
        FAILED, request.id, f"reviewer:{staff['lea']}", None)
    pending = holds(sessions)[HoldKind.VERIFICATION_PENDING]  # the request is over, and its pending hold with it
    assert (pending.lifted_at, pending.lifted_by) == (clock(), f"reviewer:{staff['lea']}")

    new = events(sessions)[3:]
    assert [(e.seq, e.type) for e in new] == [
        (4, "verification.failed"), (5, "account.hold.placed"), (6, "account.hold.lifted"),
        (7, "account.proposals.cancel_requested")]
    assert {e.data["restrictions_version"] for e in new} == {2}
    assert new[2].data["hold"]["kind"] == "verification_pending"
    assert new[2].data["restrictions"]["blocked"] == FAILED
    assert new[0].data["verification"]["status"] == "failed"
    assert new[1].data["hold"]["id"] == failed.id
    assert new[1].data["restrictions"]["blocked"] == FAILED
    with unit_of_work(sessions, write=False) as session:
        assert queue.second_reviews(session) == []
    assert audit_actions(sessions)[-5:] == [
        "outcome.recorded", "outcome.second_review", "verification.failed", "hold.placed", "hold.lifted"]


def test_nobody_reviews_their_own_fail_and_only_leads_review(sessions, clock, staff, call_id) -> None:
    claim(sessions, clock, call_id, staff["lea"])
    outcome = decide(sessions, clock, call_id, staff["lea"], Outcome.FAILED)
    before = state(sessions, call_id)
    with pytest.raises(FourEyes) as error:
        review(sessions, clock, outcome.id, staff["lea"], "confirm")
    assert (error.value.code, error.value.status) == ("four_eyes", 403)
    with pytest.raises(LeadRequired):
        review(sessions, clock, outcome.id, staff["bo"], "confirm")
    with pytest.raises(InvalidInput):
        review(sessions, clock, outcome.id, staff["max"], "maybe")
    assert state(sessions, call_id) == before
    assert review(sessions, clock, outcome.id, staff["max"], "confirm").second_reviewer_id == staff["max"]
    with pytest.raises(OutcomeNotPendingReview):  # decided once, never twice
        review(sessions, clock, outcome.id, staff["lea"], "overturn")


def test_an_overturned_fail_counts_as_a_pass(sessions, clock, staff, call_id) -> None:
    claim(sessions, clock, call_id, staff["rita"])
    outcome = decide(sessions, clock, call_id, staff["rita"], Outcome.FAILED)
    overturned = review(sessions, clock, outcome.id, staff["lea"], "overturn", notes="The ID was valid")

    assert (overturned.result, overturned.second_decision, overturned.final) == (Outcome.FAILED, "overturned", True)
    assert overturned.notes == "Second review (overturned): The ID was valid"
    assert load(sessions, CallSession, call_id).outcome is Outcome.PASSED
    assert the_request(sessions).status is RequestStatus.PASSED
    assert load(sessions, Account, "acc-1").verification_status is VerificationStatus.VERIFIED
    pending = holds(sessions)[HoldKind.VERIFICATION_PENDING]
    assert (pending.lifted_at, pending.lifted_by) == (clock(), f"reviewer:{staff['lea']}")
    assert [(e.seq, e.type, e.data["restrictions_version"]) for e in events(sessions)[3:]] == [
        (4, "verification.passed", 2), (5, "account.hold.lifted", 2)]


# ---------------------------------------------------------------- retries

@pytest.mark.parametrize(("result", "published"), [
    (Outcome.INCONCLUSIVE, ["verification.inconclusive"]),
    (Outcome.NO_SHOW, ["verification.no_show"]),
])
def test_inconclusive_and_no_show_keep_the_request_open(sessions, clock, staff, call_id, result, published) -> None:
    claim(sessions, clock, call_id, staff["rita"])
    outcome = decide(sessions, clock, call_id, staff["rita"], result)
    assert outcome.final and outcome.result is result
    assert load(sessions, CallSession, call_id).status is SessionStatus.COMPLETED
    assert the_request(sessions).status is RequestStatus.OPEN
    assert load(sessions, Account, "acc-1").verification_status is VerificationStatus.REQUIRED
    assert holds(sessions)[HoldKind.VERIFICATION_PENDING].lifted_at is None
    assert [e.type for e in events(sessions)[3:]] == published
    assert restrictions(sessions).version == 1 + len(published)
    assert events(sessions)[3].data["session"] == {**events(sessions)[3].data["session"], "id": call_id,
                                                  "outcome": result.value, "status": "completed"}
    assert events(sessions)[3].data["verification"]["status"] == "required"  # the request stays open
    assert audit_actions(sessions)[-1] == "outcome.recorded"

    retry = new_session(sessions, clock, the_request(sessions).id)  # the freelancer tries again
    claim(sessions, clock, retry, staff["bo"])
    decide(sessions, clock, retry, staff["bo"], Outcome.PASSED)
    assert the_request(sessions).status is RequestStatus.PASSED


# ---------------------------------------------------------------- claims and refusals

def test_a_session_has_one_claimer(sessions, clock, staff, call_id) -> None:
    first = claim(sessions, clock, call_id, staff["rita"])
    before = state(sessions, call_id)
    with pytest.raises(SessionAlreadyClaimed) as error:
        claim(sessions, clock, call_id, staff["bo"])
    assert error.value.code == "session_already_claimed"
    with pytest.raises(SessionAlreadyClaimed):
        claim(sessions, clock, call_id, staff["lea"])  # leads do not snatch claims either
    again = claim(sessions, clock, call_id, staff["rita"])  # a double click changes nothing
    assert (again.claimed_by_id, again.claimed_at) == (staff["rita"], first.claimed_at)
    assert state(sessions, call_id) == before


def test_only_the_claimer_or_a_lead_decides_or_releases(sessions, clock, staff, call_id) -> None:
    claim(sessions, clock, call_id, staff["rita"])
    before = state(sessions, call_id)
    with pytest.raises(NotSessionClaimer):
        decide(sessions, clock, call_id, staff["bo"], Outcome.PASSED)
    with pytest.raises(NotSessionClaimer):
        run(sessions, clock, decisions.release_session, call_id, reviewer_id=staff["bo"])
    assert state(sessions, call_id) == before

    released = run(sessions, clock, decisions.release_session, call_id, reviewer_id=staff["rita"])
    # Released, the call waits for the next reviewer without moving back: it stays in progress.
    assert (released.status, released.claimed_by_id, released.claimed_at) == (SessionStatus.IN_PROGRESS, None, None)
    with pytest.raises(SessionNotClaimed):
        run(sessions, clock, decisions.release_session, call_id, reviewer_id=staff["rita"])
    claim(sessions, clock, call_id, staff["bo"])
    run(sessions, clock, decisions.release_session, call_id, reviewer_id=staff["lea"])  # a lead may release
    claim(sessions, clock, call_id, staff["rita"])
    assert decide(sessions, clock, call_id, staff["lea"], Outcome.PASSED).decided_by_id == staff["lea"]
    assert audit_actions(sessions).count("session.released") == 2


def test_a_reviewer_must_claim_before_deciding(sessions, clock, staff, call_id) -> None:
    joined = new_session(sessions, clock, the_request(sessions).id, status=SessionStatus.IN_PROGRESS)
    before = state(sessions, joined)
    with pytest.raises(NotSessionClaimer):
        decide(sessions, clock, joined, staff["rita"], Outcome.PASSED, evidence=False)
    assert state(sessions, joined) == before


@pytest.mark.parametrize("status", [SessionStatus.SCHEDULED, SessionStatus.WAITING, SessionStatus.COMPLETED,
                                    SessionStatus.CANCELED, SessionStatus.EXPIRED])
def test_only_sessions_in_progress_are_decided(sessions, clock, staff, call_id, status) -> None:
    other = new_session(sessions, clock, the_request(sessions).id, status=status)
    before = state(sessions, other)
    with pytest.raises(SessionNotInProgress):
        decide(sessions, clock, other, staff["lea"], Outcome.PASSED, evidence=False)
    if status is not SessionStatus.WAITING:
        with pytest.raises(SessionNotClaimable):
            claim(sessions, clock, other, staff["rita"])
    assert state(sessions, other) == before


def test_refusals_change_nothing(sessions, clock, staff, call_id) -> None:
    claim(sessions, clock, call_id, staff["rita"])
    passed = decide(sessions, clock, call_id, staff["rita"], Outcome.PASSED)
    before = state(sessions, call_id)
    with pytest.raises(OutcomeNotPendingReview):
        review(sessions, clock, passed.id, staff["lea"], "confirm")
    with pytest.raises(SessionNotInProgress):
        decide(sessions, clock, call_id, staff["rita"], Outcome.FAILED, evidence=False)
    with pytest.raises(OutcomeNotFound):
        review(sessions, clock, "no-such-outcome", staff["lea"], "confirm")
    with pytest.raises(CallSessionNotFound):
        claim(sessions, clock, "no-such-session", staff["rita"])
    with pytest.raises(ReviewerNotFound):
        claim(sessions, clock, call_id, 999)
    assert state(sessions, call_id) == before


def test_inactive_staff_and_overlong_notes_are_refused(sessions, clock, staff, call_id) -> None:
    with unit_of_work(sessions) as session:
        session.get_one(Reviewer, staff["bo"]).active = False
    before = state(sessions, call_id)
    with pytest.raises(ReviewerInactive):
        claim(sessions, clock, call_id, staff["bo"])
    claim(sessions, clock, call_id, staff["rita"])
    claimed = state(sessions, call_id)
    with pytest.raises(InvalidInput) as error:
        decide(sessions, clock, call_id, staff["rita"], Outcome.PASSED, notes="x" * 2001, evidence=False)
    assert error.value.errors[0].field == "notes"
    assert state(sessions, call_id) == claimed and claimed[2] == before[2] + 1  # the claim's started event only
    assert decide(sessions, clock, call_id, staff["rita"], Outcome.PASSED, notes="x" * 2000).final


def test_a_closed_account_is_not_decided(sessions, clock, staff, call_id) -> None:
    claim(sessions, clock, call_id, staff["rita"])
    outcome = decide(sessions, clock, call_id, staff["rita"], Outcome.FAILED)
    with unit_of_work(sessions) as session:
        close_account(session, "acc-1", actor="account-service", now=clock())
    before = state(sessions, call_id)
    with pytest.raises(AccountClosed):
        review(sessions, clock, outcome.id, staff["lea"], "overturn")
    assert state(sessions, call_id) == before
    with unit_of_work(sessions, write=False) as session:
        assert queue.second_reviews(session) == []
