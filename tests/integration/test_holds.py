"""Holds, versions, outbox events and audit entries, through the services, on both backends."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import FakeClock
from verify_service.accounts import services
from verify_service.accounts.errors import AccountNotFound, HoldAlreadyLifted, HoldNotFound
from verify_service.accounts.restrictions import Restrictions, restrictions_for
from verify_service.accounts.domain import Capability, HoldKind, RequestReason
from verify_service.audit.models import AuditEntry
from verify_service.audit.services import verify_chain
from verify_service.db import unit_of_work
from verify_service.errors import InvalidInput
from verify_service.webhooks.models import OutboxEvent

PROFILE = services.Profile(display_name="Ana Lima", email="ana@example.com", country="PT")
PENDING = ["submit_proposals", "change_profile_photo"]
FAILED = ["submit_proposals", "withdraw_earnings", "accept_direct_hires", "appear_in_search"]


@pytest.fixture
def account(sessions: sessionmaker[Session], clock: FakeClock) -> str:
    with unit_of_work(sessions) as session:
        services.upsert_account(session, "acc-1", PROFILE, actor="test", now=clock())
    return "acc-1"


def place(sessions, clock, kind: HoldKind, blocks=None, reason: str = "because") -> tuple[str, bool]:
    with unit_of_work(sessions) as session:
        hold, placed = services.place_hold(session, "acc-1", kind=kind, blocks=blocks, reason=reason,
                                           actor="lead:1", now=clock.advance(seconds=1))
        return hold.id, placed


def lift(sessions, clock, hold_id: str) -> None:
    with unit_of_work(sessions) as session:
        services.lift_hold(session, hold_id, reason="resolved", actor="lead:1", now=clock.advance(seconds=1))


def restrictions(sessions) -> Restrictions:
    with unit_of_work(sessions, write=False) as session:
        return restrictions_for(session, "acc-1")


def events(sessions) -> list[OutboxEvent]:
    with unit_of_work(sessions, write=False) as session:
        return list(session.scalars(sa.select(OutboxEvent).order_by(OutboxEvent.seq)))


def test_blocked_is_the_union_of_active_holds(sessions, clock, account) -> None:
    pending, _ = place(sessions, clock, HoldKind.VERIFICATION_PENDING)
    assert restrictions(sessions).blocked == PENDING
    failed, _ = place(sessions, clock, HoldKind.VERIFICATION_FAILED)
    # Canonical capability order; submit_proposals counted once.
    assert restrictions(sessions).blocked == [
        "submit_proposals", "withdraw_earnings", "accept_direct_hires", "appear_in_search", "change_profile_photo"]
    manual, _ = place(sessions, clock, HoldKind.MANUAL, blocks=[Capability.SUBMIT_PROPOSALS])
    lift(sessions, clock, failed)
    # submit_proposals stays blocked while any active hold blocks it.
    assert restrictions(sessions).blocked == PENDING
    lift(sessions, clock, pending)
    assert restrictions(sessions).blocked == ["submit_proposals"]
    lift(sessions, clock, manual)
    snapshot = restrictions(sessions)
    assert snapshot.blocked == [] and snapshot.holds == []
    assert snapshot.version == 6


def test_automatic_kinds_are_placed_once_manual_ones_stack(sessions, clock, account) -> None:
    first, placed = place(sessions, clock, HoldKind.VERIFICATION_PENDING)
    again, placed_again = place(sessions, clock, HoldKind.VERIFICATION_PENDING)
    assert placed and not placed_again and again == first
    assert restrictions(sessions).version == 1
    place(sessions, clock, HoldKind.MANUAL, blocks=["appear_in_search"])
    place(sessions, clock, HoldKind.MANUAL, blocks=["appear_in_search"])
    assert len(restrictions(sessions).holds) == 3
    assert restrictions(sessions).version == 3


def test_every_change_bumps_the_version_and_writes_one_event_with_the_snapshot(sessions, clock, account) -> None:
    pending, _ = place(sessions, clock, HoldKind.VERIFICATION_PENDING)
    lift(sessions, clock, pending)
    placed, lifted = events(sessions)
    assert (placed.seq, placed.type) == (1, "account.hold.placed")
    assert (lifted.seq, lifted.type) == (2, "account.hold.lifted")
    assert placed.data["account_id"] == "acc-1"
    assert placed.data["restrictions_version"] == 1
    assert placed.data["restrictions"]["blocked"] == PENDING
    assert placed.data["hold"]["id"] == pending
    assert lifted.data["restrictions_version"] == 2
    assert lifted.data["restrictions"] == {"version": 2, "blocked": [], "holds": []}
    assert lifted.data["hold"]["lift_reason"] == "resolved"
    assert placed.event_id != lifted.event_id


def test_request_with_hold_is_one_version_and_two_ordered_events(sessions, clock, account) -> None:
    with unit_of_work(sessions) as session:
        services.request_verification(session, "acc-1", reason=RequestReason.NEW_ACCOUNT, deadline=None,
                                      place_hold=True, actor="account-service", now=clock())
    assert [(e.seq, e.type) for e in events(sessions)] == [(1, "verification.required"), (2, "account.hold.placed")]
    assert {e.data["restrictions_version"] for e in events(sessions)} == {1}
    assert events(sessions)[0].data["verification"]["status"] == "required"


def test_every_version_bump_comes_with_an_event(sessions, clock, account) -> None:
    """A consumer that applies the events in order always ends at the API's version."""
    later, sooner = clock() + dt.timedelta(days=9), clock() + dt.timedelta(days=3)
    for deadline, hold in [(later, False), (sooner, False), (sooner, True), (later, True)]:
        with unit_of_work(sessions) as session:
            services.request_verification(session, "acc-1", reason=RequestReason.RISK_SIGNAL, deadline=deadline,
                                          place_hold=hold, actor="account-service", now=clock())
    seen = [e.data["restrictions_version"] for e in events(sessions)]
    assert seen == sorted(seen)
    assert seen[-1] == restrictions(sessions).version == 3
    assert [e.type for e in events(sessions)] == [
        "verification.required", "verification.required", "verification.required", "account.hold.placed"]
    assert events(sessions)[1].data["verification"]["request"]["deadline"].startswith(sooner.date().isoformat())


def test_lifting_twice_or_an_unknown_hold_is_refused_and_changes_nothing(sessions, clock, account) -> None:
    hold_id, _ = place(sessions, clock, HoldKind.MANUAL, blocks=["withdraw_earnings"])
    lift(sessions, clock, hold_id)
    with pytest.raises(HoldAlreadyLifted):
        lift(sessions, clock, hold_id)
    with pytest.raises(HoldNotFound):
        lift(sessions, clock, "no-such-hold")
    assert restrictions(sessions).version == 2
    assert len(events(sessions)) == 2


@pytest.mark.parametrize(("kind", "blocks", "field"), [
    (HoldKind.MANUAL, [], "blocks"),
    (HoldKind.MANUAL, ["teleport"], "blocks"),
    (HoldKind.VERIFICATION_PENDING, ["withdraw_earnings"], "blocks"),
])
def test_bad_capability_sets_are_refused(sessions, clock, account, kind, blocks, field) -> None:
    with pytest.raises(InvalidInput) as error:
        place(sessions, clock, kind, blocks=blocks)
    assert error.value.errors[0].field == field
    assert restrictions(sessions).version == 0


def test_a_hold_needs_a_reason(sessions, clock, account) -> None:
    with pytest.raises(InvalidInput):
        place(sessions, clock, HoldKind.MANUAL, blocks=["appear_in_search"], reason="  ")


def test_unknown_accounts_are_refused(sessions, clock) -> None:
    with pytest.raises(AccountNotFound), unit_of_work(sessions) as session:
        services.place_hold(session, "ghost", kind=HoldKind.VERIFICATION_PENDING, reason="x", actor="t", now=clock())


def test_changes_are_audited_and_the_chain_verifies(sessions, clock, account) -> None:
    hold_id, _ = place(sessions, clock, HoldKind.VERIFICATION_FAILED)
    lift(sessions, clock, hold_id)
    with unit_of_work(sessions, write=False) as session:
        entries = session.scalars(sa.select(AuditEntry).order_by(AuditEntry.seq)).all()
        assert [e.action for e in entries] == ["account.created", "hold.placed", "hold.lifted"]
        assert entries[1].details == {"kind": "verification_failed", "blocks": FAILED}
        assert entries[1].subject_id == hold_id
        assert verify_chain(session).ok


def test_a_failed_service_call_leaves_no_partial_write(sessions, clock, account) -> None:
    """An error after the hold was flushed rolls back the hold, version, audit and event together."""

    class Boom(Exception):
        pass

    with pytest.raises(Boom), unit_of_work(sessions) as session:
        services.place_hold(session, "acc-1", kind=HoldKind.VERIFICATION_PENDING, reason="x", actor="t",
                            now=clock())
        raise Boom
    assert restrictions(sessions).version == 0
    assert events(sessions) == []
    with unit_of_work(sessions, write=False) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(AuditEntry)) == 1  # account.created only
