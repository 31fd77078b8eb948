"""The relay's batched database work (runs of an account's events), on both backends.

The relay leases an account's following events a run at a time and writes
their acknowledgements together (tests/bench/bench_relay.py shows why). These
tests pin what that must not cost: a lease never runs out under a slow
receiver, a crash resends only what was not written yet, and the statements
per delivered event stay well under one. And the sender, which reads the
environment's proxy settings once per session, still goes through the proxy.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import sqlalchemy as sa

from integrations.account_service import DeliveryResult, OutboundMessage, WebhookSender
from tests.conftest import ACCOUNT_SERVICE_SECRET, FakeClock
from tests.integration.test_outbox_relay import make_events, rows
from tests.support.receiver import Receiver
from verify_service.db import unit_of_work
from verify_service.webhooks.models import DeliveryStatus, OutboxEvent
from verify_service.webhooks.relay import LEASE, Relay


class SlowSender(WebhookSender):
    """Each send takes 40% of a lease (on the fake clock) and first checks that the relay still holds the event."""

    def __init__(self, url: str, sessions: Any, clock: FakeClock) -> None:
        super().__init__(url, ACCOUNT_SERVICE_SECRET, connect_timeout=1, read_timeout=1.5)
        self.sessions, self.clock = sessions, clock
        self.relay_id = ""
        self.unleased: list[str] = []

    def send(self, message: OutboundMessage) -> DeliveryResult:
        with unit_of_work(self.sessions, write=False) as session:
            by, until = session.execute(sa.select(OutboxEvent.claimed_by, OutboxEvent.claimed_until)
                                        .where(OutboxEvent.event_id == message.event_id)).one()
        if by != self.relay_id or until is None or until <= self.clock():
            self.unleased.append(message.event_id)
        self.clock.advance(seconds=LEASE.total_seconds() * 0.4)
        return super().send(message)


def test_a_slow_receiver_never_outlives_the_lease(sessions, clock, receiver: Receiver) -> None:
    ids = make_events(sessions, clock, accounts=2, per_account=8)
    sender = SlowSender(receiver.url, sessions, clock)
    relay = Relay(sessions, sender, clock=clock, workers=1, rng=random.Random(7))
    sender.relay_id = relay.relay_id
    assert relay.run_once().delivered == 16
    assert sender.unleased == []  # every event was sent while this relay's lease on it was still running
    assert receiver.applied == {account_id: list(range(1, 9)) for account_id in ids}
    assert receiver.violations == []


def test_a_crash_mid_run_resends_only_what_was_not_written(sessions, clock, receiver: Receiver) -> None:
    class CrashOnThird(WebhookSender):
        sent = 0

        def send(self, message: OutboundMessage) -> DeliveryResult:
            result = super().send(message)
            CrashOnThird.sent += 1
            if CrashOnThird.sent == 3:
                raise RuntimeError("process died after the 2xx, before writing it")
            return result

    make_events(sessions, clock, accounts=1, per_account=6)
    relay = Relay(sessions, CrashOnThird(receiver.url, ACCOUNT_SERVICE_SECRET), clock=clock, workers=1)
    report = relay.run_once()
    assert (report.delivered, report.errors) == (2, 1)
    events = rows(sessions)
    assert [e.status for e in events] == [DeliveryStatus.DELIVERED] * 2 + [DeliveryStatus.PENDING] * 4
    assert events[2].claimed_until is not None  # the crashed one keeps its lease (another relay would wait)...
    assert [e.claimed_until for e in events[3:]] == [None] * 3  # ...the rest of its run was released
    clock.advance(seconds=LEASE.total_seconds() + 1)
    assert relay.run_once().delivered == 4
    seqs = [d.seq for d in receiver.deliveries]
    assert seqs == [1, 2, 3, 3, 4, 5, 6]  # only seq 3, whose 2xx was never written, went twice
    assert receiver.applied == {"acc-0": [1, 2, 3, 4, 5, 6]} and receiver.violations == []


def test_database_statements_per_delivered_event_stay_under_one(sessions, engine, clock, receiver: Receiver) -> None:
    make_events(sessions, clock, accounts=4, per_account=10)
    relay = Relay(sessions, WebhookSender(receiver.url, ACCOUNT_SERVICE_SECRET), clock=clock, workers=2)
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.strip().upper() not in ("BEGIN", "BEGIN IMMEDIATE", "COMMIT", "ROLLBACK"):
            statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        assert relay.run_once().delivered == 40
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    # One claim for the heads, then per account a run's lease and one write of its acknowledgements:
    # about half a statement per event here (sending each event with its own claim and record took ~5).
    assert len(statements) <= 40 * 0.75, len(statements)
    assert all(e.status == DeliveryStatus.DELIVERED and e.attempts == 1 and e.delivered_at == clock()
               for e in rows(sessions))
    assert receiver.violations == []


def test_the_sender_goes_through_the_environments_proxy(monkeypatch, receiver: Receiver) -> None:
    """It reads the proxy settings once per session (not per POST), but still honours them."""
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{receiver.port}")  # the receiver plays the proxy
    sender = WebhookSender("http://account-service.invalid/hooks/verify", ACCOUNT_SERVICE_SECRET,
                           connect_timeout=1, read_timeout=1.5)
    message = OutboundMessage("evt_proxy", "verification.passed", dt.datetime(2026, 11, 22, tzinfo=dt.timezone.utc),
                              {"account_id": "acc-p", "seq": 1}, 1)
    assert sender.send(message).delivered  # account-service.invalid does not resolve: only the proxy can answer
    assert receiver.ids() == ["evt_proxy"]
