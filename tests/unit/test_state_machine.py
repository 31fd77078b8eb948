"""The call-session state machine, checked against an independent table."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from verify_service.calls.models import CallSession
from verify_service.calls.state import EndReason, IllegalTransition, SessionStatus, transition
from verify_service.errors import Conflict

T0 = dt.datetime(2026, 11, 22, 9, 0, tzinfo=dt.timezone.utc)
T1 = T0 + dt.timedelta(minutes=5)
T2 = T0 + dt.timedelta(minutes=10)
T3 = T0 + dt.timedelta(minutes=15)

# Typed out by hand (plain strings, on purpose not derived from TRANSITIONS). A call never goes back to
# waiting (a released claim stays in progress); an abandoned call in progress expires; an account closed
# while a fail waits for its second review cancels it.
STATUSES = ["scheduled", "waiting", "in_progress", "awaiting_second_review", "completed", "expired", "canceled"]
LEGAL: dict[str, set[str]] = {
    "scheduled": {"waiting", "canceled", "expired"},
    "waiting": {"in_progress", "expired", "canceled"},
    "in_progress": {"completed", "awaiting_second_review", "canceled", "expired"},
    "awaiting_second_review": {"completed", "canceled"},
    "completed": set(),
    "expired": set(),
    "canceled": set(),
}
TERMINAL = {"completed", "expired", "canceled"}
ENDED = TERMINAL | {"awaiting_second_review"}  # the call is over: ended_at is stamped once
REASON = {"expired": EndReason.NOT_JOINED, "canceled": EndReason.FREELANCER}
PAIRS = list(itertools.product(STATUSES, STATUSES))


def move(session: CallSession, target: str, now: dt.datetime) -> None:
    transition(session, SessionStatus(target), now=now, reason=REASON.get(target))


def make_session(status: str, **fields: object) -> CallSession:
    values: dict[str, object] = {"account_id": "acc-1", "status": SessionStatus(status), "created_at": T0,
                                 "updated_at": T0}
    values.update(fields)
    return CallSession(**values)


def test_the_table_covers_every_status() -> None:
    assert {s.value for s in SessionStatus} == set(STATUSES)
    assert len(PAIRS) == 49


@pytest.mark.parametrize(("current", "target"), PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_transition_allows_exactly_the_legal_moves(current: str, target: str) -> None:
    session = make_session(current)
    if target in LEGAL[current]:
        move(session, target, T1)
        assert SessionStatus(session.status) is SessionStatus(target)
        assert session.updated_at == T1
    else:
        with pytest.raises(IllegalTransition) as info:
            move(session, target, T1)
        assert SessionStatus(session.status) is SessionStatus(current)
        assert session.updated_at == T0
        assert info.value.current is SessionStatus(current)
        assert info.value.target is SessionStatus(target)
        assert f"from {current} to {target}" in str(info.value)


@pytest.mark.parametrize("status", STATUSES)
def test_same_status_is_not_a_move(status: str) -> None:
    session = make_session(status)
    with pytest.raises(IllegalTransition):
        move(session, status, T1)
    assert SessionStatus(session.status) is SessionStatus(status)


def test_illegal_transition_is_a_409_conflict() -> None:
    error = IllegalTransition(SessionStatus.COMPLETED, SessionStatus.WAITING)
    assert isinstance(error, Conflict)
    assert error.status == 409
    assert error.code == "illegal_session_transition"


def test_started_at_is_set_on_the_move_to_in_progress_and_kept() -> None:
    session = make_session("waiting", claimed_by_id=7, claimed_at=T1)
    assert session.started_at is None
    transition(session, SessionStatus.IN_PROGRESS, now=T1)
    assert session.started_at == T1
    transition(session, SessionStatus.AWAITING_SECOND_REVIEW, now=T2)
    transition(session, SessionStatus.COMPLETED, now=T3)
    assert session.started_at == T1
    assert session.updated_at == T3


def test_started_at_is_not_set_by_other_moves() -> None:
    session = make_session("scheduled")
    transition(session, SessionStatus.WAITING, now=T1)
    assert session.started_at is None
    assert session.ended_at is None


def test_a_call_in_progress_never_goes_back_to_waiting() -> None:
    session = make_session("in_progress", claimed_by_id=7, claimed_at=T1, started_at=T1)
    with pytest.raises(IllegalTransition):
        transition(session, SessionStatus.WAITING, now=T2)
    assert (session.status, session.claimed_by_id) == (SessionStatus.IN_PROGRESS, 7)


@pytest.mark.parametrize(("target", "reason"), [
    ("expired", EndReason.NOT_JOINED), ("expired", EndReason.ABANDONED), ("canceled", EndReason.FREELANCER),
    ("canceled", EndReason.ACCOUNT_CLOSED), ("canceled", EndReason.LEAD)])
def test_an_ending_records_its_reason(target: str, reason: EndReason) -> None:
    session = make_session("in_progress", started_at=T1)
    transition(session, SessionStatus(target), now=T2, reason=reason)
    assert (session.status, session.end_reason, session.ended_at) == (SessionStatus(target), reason, T2)


@pytest.mark.parametrize(("current", "target", "reason"), [
    ("waiting", "expired", None), ("waiting", "canceled", None), ("waiting", "expired", EndReason.LEAD),
    ("waiting", "canceled", EndReason.ABANDONED), ("in_progress", "completed", EndReason.FREELANCER),
    ("waiting", "in_progress", EndReason.NOT_JOINED)])
def test_a_reason_is_required_for_an_ending_and_refused_elsewhere(current: str, target: str,
                                                                  reason: EndReason | None) -> None:
    session = make_session(current)
    with pytest.raises(ValueError):
        transition(session, SessionStatus(target), now=T2, reason=reason)
    assert (session.status, session.end_reason, session.updated_at) == (SessionStatus(current), None, T0)


def test_other_moves_keep_the_claim() -> None:
    session = make_session("in_progress", claimed_by_id=7, claimed_at=T1, started_at=T1)
    transition(session, SessionStatus.AWAITING_SECOND_REVIEW, now=T2)
    assert session.claimed_by_id == 7
    assert session.claimed_at == T1


ENDING_MOVES = [(a, b) for a, b in PAIRS if b in LEGAL[a] and b in ENDED]


@pytest.mark.parametrize(("current", "target"), ENDING_MOVES,
                         ids=[f"{a}->{b}" for a, b in ENDING_MOVES])
def test_the_first_ending_sets_ended_at(current: str, target: str) -> None:
    session = make_session(current)
    move(session, target, T2)
    assert session.ended_at == T2
    assert session.updated_at == T2


NON_ENDING_MOVES = [(a, b) for a, b in PAIRS if b in LEGAL[a] and b not in ENDED]


@pytest.mark.parametrize(("current", "target"), NON_ENDING_MOVES,
                         ids=[f"{a}->{b}" for a, b in NON_ENDING_MOVES])
def test_moves_before_the_end_leave_ended_at_alone(current: str, target: str) -> None:
    session = make_session(current)
    move(session, target, T2)
    assert session.ended_at is None


def test_ended_at_is_the_first_decision_not_the_second_review_hours_later() -> None:
    session = make_session("scheduled")
    transition(session, SessionStatus.WAITING, now=T1)
    transition(session, SessionStatus.IN_PROGRESS, now=T2)
    transition(session, SessionStatus.AWAITING_SECOND_REVIEW, now=T3)
    assert session.ended_at == T3
    later = T3 + dt.timedelta(hours=20)
    transition(session, SessionStatus.COMPLETED, now=later)
    assert (session.started_at, session.ended_at, session.updated_at) == (T2, T3, later)


def test_a_plain_string_status_is_accepted_as_current() -> None:
    session = make_session("waiting")
    session.status = "waiting"  # type: ignore[assignment]  (as loaded before coercion)
    transition(session, SessionStatus.IN_PROGRESS, now=T1)
    assert SessionStatus(session.status) is SessionStatus.IN_PROGRESS
