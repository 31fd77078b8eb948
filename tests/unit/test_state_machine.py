"""The call-session state machine (DESIGN §3.4), checked against an independent table."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from verify_service.calls.models import CallSession
from verify_service.calls.state import IllegalTransition, SessionStatus, transition
from verify_service.errors import Conflict

T0 = dt.datetime(2026, 11, 22, 9, 0, tzinfo=dt.timezone.utc)
T1 = T0 + dt.timedelta(minutes=5)
T2 = T0 + dt.timedelta(minutes=10)
T3 = T0 + dt.timedelta(minutes=15)

# Copied from DESIGN by hand (plain strings, on purpose not derived from TRANSITIONS).
STATUSES = ["scheduled", "waiting", "in_progress", "awaiting_second_review", "completed", "expired", "canceled"]
LEGAL: dict[str, set[str]] = {
    "scheduled": {"waiting", "canceled", "expired"},
    "waiting": {"in_progress", "expired", "canceled"},
    "in_progress": {"waiting", "completed", "awaiting_second_review", "canceled"},
    "awaiting_second_review": {"completed"},
    "completed": set(),
    "expired": set(),
    "canceled": set(),
}
TERMINAL = {"completed", "expired", "canceled"}
PAIRS = list(itertools.product(STATUSES, STATUSES))


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
        transition(session, SessionStatus(target), now=T1)
        assert SessionStatus(session.status) is SessionStatus(target)
        assert session.updated_at == T1
    else:
        with pytest.raises(IllegalTransition) as info:
            transition(session, SessionStatus(target), now=T1)
        assert SessionStatus(session.status) is SessionStatus(current)
        assert session.updated_at == T0
        assert info.value.current is SessionStatus(current)
        assert info.value.target is SessionStatus(target)
        assert f"from {current} to {target}" in str(info.value)


@pytest.mark.parametrize("status", STATUSES)
def test_same_status_is_not_a_move(status: str) -> None:
    session = make_session(status)
    with pytest.raises(IllegalTransition):
        transition(session, SessionStatus(status), now=T1)
    assert SessionStatus(session.status) is SessionStatus(status)


def test_illegal_transition_is_a_409_conflict() -> None:
    error = IllegalTransition(SessionStatus.COMPLETED, SessionStatus.WAITING)
    assert isinstance(error, Conflict)
    assert error.status == 409
    assert error.code == "illegal_session_transition"


def test_started_at_is_set_on_first_move_to_in_progress_and_kept() -> None:
    session = make_session("waiting", claimed_by_id=7, claimed_at=T1)
    assert session.started_at is None
    transition(session, SessionStatus.IN_PROGRESS, now=T1)
    assert session.started_at == T1
    transition(session, SessionStatus.WAITING, now=T2)
    transition(session, SessionStatus.IN_PROGRESS, now=T3)
    assert session.started_at == T1
    assert session.updated_at == T3


def test_started_at_is_not_set_by_other_moves() -> None:
    session = make_session("scheduled")
    transition(session, SessionStatus.WAITING, now=T1)
    assert session.started_at is None
    assert session.ended_at is None


def test_release_to_waiting_clears_the_claim() -> None:
    session = make_session("in_progress", claimed_by_id=7, claimed_at=T1, started_at=T1)
    transition(session, SessionStatus.WAITING, now=T2)
    assert session.claimed_by_id is None
    assert session.claimed_at is None
    assert session.ended_at is None
    assert session.updated_at == T2


def test_other_moves_keep_the_claim() -> None:
    session = make_session("in_progress", claimed_by_id=7, claimed_at=T1, started_at=T1)
    transition(session, SessionStatus.AWAITING_SECOND_REVIEW, now=T2)
    assert session.claimed_by_id == 7
    assert session.claimed_at == T1


TERMINAL_MOVES = [(a, b) for a, b in PAIRS if b in LEGAL[a] and b in TERMINAL]


@pytest.mark.parametrize(("current", "target"), TERMINAL_MOVES,
                         ids=[f"{a}->{b}" for a, b in TERMINAL_MOVES])
def test_terminal_statuses_set_ended_at(current: str, target: str) -> None:
    session = make_session(current)
    transition(session, SessionStatus(target), now=T2)
    assert session.ended_at == T2
    assert session.updated_at == T2


NON_TERMINAL_MOVES = [(a, b) for a, b in PAIRS if b in LEGAL[a] and b not in TERMINAL]


@pytest.mark.parametrize(("current", "target"), NON_TERMINAL_MOVES,
                         ids=[f"{a}->{b}" for a, b in NON_TERMINAL_MOVES])
def test_non_terminal_statuses_leave_ended_at_alone(current: str, target: str) -> None:
    session = make_session(current)
    transition(session, SessionStatus(target), now=T2)
    assert session.ended_at is None


def test_full_happy_path_timestamps() -> None:
    session = make_session("scheduled")
    transition(session, SessionStatus.WAITING, now=T1)
    transition(session, SessionStatus.IN_PROGRESS, now=T2)
    transition(session, SessionStatus.AWAITING_SECOND_REVIEW, now=T3)
    assert session.ended_at is None
    end = T3 + dt.timedelta(hours=1)
    transition(session, SessionStatus.COMPLETED, now=end)
    assert (session.started_at, session.ended_at, session.updated_at) == (T2, end, end)


def test_a_plain_string_status_is_accepted_as_current() -> None:
    session = make_session("waiting")
    session.status = "waiting"  # type: ignore[assignment]  (as loaded before coercion)
    transition(session, SessionStatus.IN_PROGRESS, now=T1)
    assert SessionStatus(session.status) is SessionStatus.IN_PROGRESS
