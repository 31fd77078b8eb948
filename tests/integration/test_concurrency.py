"""Concurrent writers on one account never lose an update nor reuse a version or seq.

PostgreSQL serialises them with the account row lock (SELECT … FOR UPDATE);
SQLite with BEGIN IMMEDIATE. Both run here with real threads and real connections.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from tests.conftest import API_KEY
from tests.support.concurrency import run_together
from verify_service.accounts import services
from verify_service.accounts.errors import HoldAlreadyLifted
from verify_service.accounts.restrictions import restrictions_for
from verify_service.accounts.domain import HoldKind
from verify_service.accounts.models import Hold, VerificationRequest
from verify_service.audit.models import AuditEntry
from verify_service.audit.services import verify_chain
from verify_service.db import unit_of_work
from verify_service.webhooks.models import OutboxEvent

WORKERS = 20


def test_twenty_concurrent_place_and_lift_calls_keep_versions_and_seqs_gapless(sessions, clock) -> None:
    now = clock()
    with unit_of_work(sessions) as session:
        services.upsert_account(session, "acc-1", services.Profile("Ana", "ana@example.com", "PT"),
                                actor="test", now=now)
        preplaced = [services.place_hold(session, "acc-1", kind=HoldKind.MANUAL, blocks=["appear_in_search"],
                                         reason=f"pre {i}", actor="lead:1", now=now)[0].id
                     for i in range(WORKERS // 2)]
    # place_hold publishes per call: ten calls, versions 1..10.

    def placer(i: int) -> Callable[[], object]:
        def task() -> object:
            with unit_of_work(sessions) as session:
                return services.place_hold(session, "acc-1", kind=HoldKind.MANUAL, blocks=["withdraw_earnings"],
                                           reason=f"concurrent {i}", actor="lead:2", now=now)[0].id
        return task

    def lifter(hold_id: str) -> Callable[[], object]:
        def task() -> object:
            with unit_of_work(sessions) as session:
                return services.lift_hold(session, hold_id, reason="done", actor="lead:2", now=now).id
        return task

    tasks = [placer(i) for i in range(WORKERS // 2)] + [lifter(h) for h in preplaced]
    results = run_together(tasks)
    assert [r for r in results if isinstance(r, Exception)] == []

    total = WORKERS // 2 + WORKERS
    with unit_of_work(sessions, write=False) as session:
        snapshot = restrictions_for(session, "acc-1")
        assert snapshot.version == total
        assert snapshot.blocked == ["withdraw_earnings"]
        assert len(snapshot.holds) == WORKERS // 2
        outbox = session.execute(sa.select(OutboxEvent.seq, OutboxEvent.data).order_by(OutboxEvent.seq)).all()
        assert [seq for seq, _ in outbox] == list(range(1, total + 1))
        # Each event carries the version its own change produced: gapless and in seq order.
        assert [data["restrictions_version"] for _, data in outbox] == list(range(1, total + 1))
        active = session.scalar(sa.select(sa.func.count()).select_from(Hold).where(Hold.lifted_at.is_(None)))
        assert active == WORKERS // 2
        audit_seqs = session.scalars(sa.select(AuditEntry.seq).order_by(AuditEntry.seq)).all()
        assert audit_seqs == list(range(1, len(audit_seqs) + 1))
        assert verify_chain(session).ok


def test_concurrent_lifts_of_one_hold_lift_it_exactly_once(sessions, clock) -> None:
    now = clock()
    with unit_of_work(sessions) as session:
        services.upsert_account(session, "acc-1", services.Profile("Ana", "ana@example.com", "PT"),
                                actor="test", now=now)
        hold_id = services.place_hold(session, "acc-1", kind=HoldKind.VERIFICATION_PENDING, reason="x",
                                      actor="t", now=now)[0].id

    def task() -> object:
        with unit_of_work(sessions) as session:
            return services.lift_hold(session, hold_id, reason="done", actor="lead", now=now).id

    results = run_together([task for _ in range(8)])
    assert sum(1 for r in results if r == hold_id) == 1
    assert all(isinstance(r, HoldAlreadyLifted) for r in results if r != hold_id)
    with unit_of_work(sessions, write=False) as session:
        assert restrictions_for(session, "acc-1").version == 2


def test_concurrent_first_puts_of_one_account_create_it_once(app, sessions) -> None:
    def task() -> object:
        client = app.test_client()
        return client.put("/api/v1/accounts/new-1", json={"name": "N", "email": "n@example.com", "country": "FR"},
                          headers={"Authorization": f"Bearer {API_KEY}"}).status_code

    codes = run_together([task for _ in range(10)])
    assert sorted(codes) == [200] * 9 + [201]


def test_concurrent_posts_with_one_idempotency_key_have_one_effect(app, sessions) -> None:
    client = app.test_client()
    client.put("/api/v1/accounts/acc-1", json={"name": "N", "email": "n@example.com", "country": "FR"},
               headers={"Authorization": f"Bearer {API_KEY}"})

    def task() -> object:
        response = app.test_client().post(
            "/api/v1/accounts/acc-1/verification-requests", json={"reason": "new_account", "place_hold": True},
            headers={"Authorization": f"Bearer {API_KEY}", "Idempotency-Key": "same"})
        return response.status_code, response.get_json()["request"]["id"]

    results = run_together([task for _ in range(10)])
    assert {status for status, _ in results} == {201}
    assert len({request_id for _, request_id in results}) == 1
    with unit_of_work(sessions, write=False) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(VerificationRequest)) == 1
        assert session.scalar(sa.select(sa.func.count()).select_from(OutboxEvent)) == 2
