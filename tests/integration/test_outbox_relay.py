"""The outbox relay against a real HTTP receiver on loopback, on both database backends.

Time is a FakeClock: retry timing is checked by moving it, never by sleeping.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from integrations.account_service import DeliveryResult, OutboundMessage, WebhookSender
from jobs.outbox import deliver_outbox, relay_for
from tests.conftest import ACCOUNT_SERVICE_SECRET, FakeClock, make_settings
from tests.support.receiver import Delivery, DropConnection, Receiver, always
from verify_service import create_app
from verify_service.accounts import services
from verify_service.accounts.domain import HoldKind
from verify_service.db import unit_of_work
from verify_service.registry import KEY
from verify_service.webhooks.models import DeliveryStatus, OutboxEvent
from verify_service.webhooks.outbox import enable_endpoint, redeliver
from verify_service.webhooks.relay import JITTER, LEASE, MAX_ATTEMPTS, RETRY_SCHEDULE, Relay



@pytest.fixture
def sender(receiver: Receiver) -> WebhookSender:
    # Short enough for the slow-receiver cases to time out quickly, long enough that a busy CI machine
    # does not turn a prompt answer into a timeout (0.5 s did, once).
    return WebhookSender(receiver.url, ACCOUNT_SERVICE_SECRET, connect_timeout=1, read_timeout=1.5)


@pytest.fixture
def relay(sessions, sender, clock: FakeClock) -> Relay:
    return Relay(sessions, sender, clock=clock, workers=4, rng=random.Random(7))


def make_events(sessions, clock: FakeClock, accounts: int, per_account: int) -> list[str]:
    """``per_account`` hold events on each of ``accounts`` accounts (seq 1..per_account each)."""
    ids = [f"acc-{i}" for i in range(accounts)]
    with unit_of_work(sessions) as session:
        for account_id in ids:
            services.upsert_account(session, account_id, services.Profile("A", "a@example.com", "PT"),
                                    actor="test", now=clock())
    for n in range(per_account):
        for account_id in ids:
            with unit_of_work(sessions) as session:
                services.place_hold(session, account_id, kind=HoldKind.MANUAL, blocks=["appear_in_search"],
                                    reason=f"r{n}", actor="lead:1", now=clock())
    return ids


def rows(sessions) -> list[OutboxEvent]:
    with unit_of_work(sessions, write=False) as session:
        return list(session.scalars(sa.select(OutboxEvent).order_by(OutboxEvent.account_id, OutboxEvent.seq)))


def test_delivers_every_event_signed_and_in_order(sessions, clock, relay, receiver) -> None:
    ids = make_events(sessions, clock, accounts=3, per_account=4)
    report = relay.run_once()
    assert (report.delivered, report.failed, report.errors) == (12, 0, 0)
    assert receiver.rejected == [] and receiver.violations == []
    assert receiver.applied == {account_id: [1, 2, 3, 4] for account_id in ids}
    first = next(d for d in receiver.deliveries if d.account_id == "acc-0" and d.seq == 1)
    assert first.type == "account.hold.placed" and first.attempt == 1
    assert first.data["restrictions_version"] == 1
    assert first.data["restrictions"]["blocked"] == ["appear_in_search"]
    assert all(r.status == DeliveryStatus.DELIVERED and r.attempts == 1 for r in rows(sessions))
    assert relay.run_once().delivered == 0


def _flaky(seed: int):
    """Fails about 40% of deliveries in every way a receiver can."""
    rng = random.Random(seed)
    lock = threading.Lock()

    def policy(_delivery: Delivery) -> tuple[int, dict[str, str]]:
        with lock:
            roll = rng.random()
        if roll < 0.1:
            raise DropConnection
        if roll < 0.2:
            time.sleep(1.7)  # past the sender's read timeout
            return 204, {}
        if roll < 0.3:
            return 500, {}
        if roll < 0.4:
            return 429, {"Retry-After": "30"}
        return 200, {}

    return policy


def test_injected_failures_keep_order_and_apply_each_event_once(sessions, clock, relay, receiver) -> None:
    ids = make_events(sessions, clock, accounts=6, per_account=5)
    receiver.policy = _flaky(seed=3)
    for _ in range(60):
        relay.run_once()
        if all(r.status == DeliveryStatus.DELIVERED for r in rows(sessions)):
            break
        clock.advance(days=1)  # every scheduled retry is due again
    assert all(r.status == DeliveryStatus.DELIVERED for r in rows(sessions))
    assert receiver.violations == []
    assert receiver.rejected == []
    assert receiver.applied == {account_id: [1, 2, 3, 4, 5] for account_id in ids}
    # The failures really happened, and retries kept their webhook-id.
    assert len(receiver.deliveries) > 30
    assert len(set(receiver.ids())) == 30


def test_retry_timing_follows_the_schedule_then_dead_letters(sessions, clock, relay, receiver) -> None:
    make_events(sessions, clock, accounts=1, per_account=1)
    receiver.policy = always(500)
    for attempt, base in enumerate(RETRY_SCHEDULE, start=1):
        assert relay.run_once().failed == 1
        event = rows(sessions)[0]
        delay = event.next_attempt_at - clock()
        assert base * (1 - JITTER) <= delay <= base * (1 + JITTER), (attempt, delay)
        assert (event.attempts, event.last_status_code) == (attempt, 500)
        clock.current = event.next_attempt_at - dt.timedelta(seconds=1)
        assert relay.run_once().failed == 0  # not due yet
        clock.advance(seconds=1)
    assert relay.run_once().dead == 1
    assert rows(sessions)[0].status == DeliveryStatus.DEAD
    assert [d.attempt for d in receiver.deliveries] == list(range(1, MAX_ATTEMPTS + 1))
    assert len(set(receiver.ids())) == 1
    clock.advance(days=30)
    assert relay.run_once().failed == 0 and len(receiver.deliveries) == MAX_ATTEMPTS
    assert sum(RETRY_SCHEDULE, dt.timedelta()) * (1 - JITTER) >= dt.timedelta(days=3)


def test_retry_after_is_honoured(sessions, clock, relay, receiver) -> None:
    make_events(sessions, clock, accounts=1, per_account=1)
    receiver.policy = always(429, **{"Retry-After": "600"})
    relay.run_once()
    assert rows(sessions)[0].next_attempt_at - clock() == dt.timedelta(seconds=600)


def test_a_dead_letter_holds_back_its_account_until_redelivered(sessions, clock, relay, receiver) -> None:
    make_events(sessions, clock, accounts=2, per_account=2)
    receiver.policy = lambda d: (500, {}) if (d.account_id, d.seq) == ("acc-0", 1) else (204, {})
    for _ in range(MAX_ATTEMPTS):
        relay.run_once()
        clock.advance(days=2)
    status = {(r.account_id, r.seq): r.status for r in rows(sessions)}
    assert status[("acc-0", 1)] == DeliveryStatus.DEAD
    assert status[("acc-0", 2)] == DeliveryStatus.PENDING  # never sent ahead of seq 1
    assert receiver.applied == {"acc-1": [1, 2]}
    receiver.policy = always(204)
    with unit_of_work(sessions) as session:
        assert redeliver(session, event_id=None, all_dead=True, actor="lead:1", now=clock()) == 1
    assert relay.run_once().delivered == 2
    assert receiver.applied["acc-0"] == [1, 2] and receiver.violations == []


def test_receiver_down_then_up(sessions, clock, relay, receiver) -> None:
    make_events(sessions, clock, accounts=2, per_account=2)
    receiver.stop()
    report = relay.run_once()
    assert (report.delivered, report.failed) == (0, 2)
    assert all("ConnectionError" in (r.last_error or "") for r in rows(sessions) if r.seq == 1)
    receiver.start()
    clock.advance(minutes=1)
    assert relay.run_once().delivered == 4
    assert receiver.violations == []


def test_a_crash_after_the_2xx_sends_the_event_again_with_the_same_id(sessions, clock, receiver) -> None:
    class CrashOnce(WebhookSender):
        crashed = False

        def send(self, message: OutboundMessage) -> DeliveryResult:
            result = super().send(message)
            if not CrashOnce.crashed:
                CrashOnce.crashed = True
                raise RuntimeError("process died before the commit")
            return result

    relay = Relay(sessions, CrashOnce(receiver.url, ACCOUNT_SERVICE_SECRET), clock=clock, workers=1)
    make_events(sessions, clock, accounts=1, per_account=2)
    assert relay.run_once().errors == 1
    assert rows(sessions)[0].status == DeliveryStatus.PENDING
    assert relay.run_once().delivered == 0  # still leased
    clock.advance(seconds=LEASE.total_seconds() + 1)
    assert relay.run_once().delivered == 2
    first_id = rows(sessions)[0].event_id
    assert receiver.ids().count(first_id) == 2
    assert [d.attempt for d in receiver.deliveries if d.webhook_id == first_id] == [1, 1]
    assert receiver.applied == {"acc-0": [1, 2]}
    assert receiver.violations == []


def test_two_relays_racing_deliver_each_event_once(sessions, clock, sender, receiver) -> None:
    ids = make_events(sessions, clock, accounts=12, per_account=4)
    relays = [Relay(sessions, sender, clock=clock, workers=4) for _ in range(2)]
    barrier = threading.Barrier(2)
    reports = []

    def run(relay: Relay) -> None:
        barrier.wait()
        reports.append(relay.run_once())

    threads = [threading.Thread(target=run, args=(r,)) for r in relays]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(r.delivered for r in reports) == 48
    assert sorted(receiver.ids()) == sorted(set(receiver.ids()))  # no event sent twice
    assert receiver.applied == {account_id: [1, 2, 3, 4] for account_id in ids}
    assert receiver.violations == []


# ---------------------------------------------------------------- through the app

@pytest.fixture
def outbound_app(database_url: str, tmp_path: Path, clock: FakeClock, receiver: Receiver) -> Iterator[Flask]:
    app = create_app(make_settings(database_url, tmp_path, account_service_webhook_url=receiver.url,
                                   account_service_webhook_secret=ACCOUNT_SERVICE_SECRET))
    app.extensions[KEY].clock = clock
    yield app
    app.extensions[KEY].engine.dispose()


def test_410_disables_delivery_until_enabled_and_readiness_alerts(outbound_app, clock, receiver) -> None:
    registry = outbound_app.extensions[KEY]
    make_events(registry.sessions, clock, accounts=1, per_account=2)
    receiver.policy = always(410)
    report = deliver_outbox(outbound_app)
    assert report is not None and report.disabled and report.delivered == 0
    assert deliver_outbox(outbound_app).disabled
    assert len(receiver.deliveries) == 1
    alerts = outbound_app.test_client().get("/readyz").get_json()["alerts"]
    assert [a["code"] for a in alerts] == ["webhook_delivery_disabled"]
    receiver.policy = always(204)
    with unit_of_work(registry.sessions) as session:
        assert enable_endpoint(session, receiver.url, actor="cli", now=clock()) is True
    assert deliver_outbox(outbound_app).delivered == 2
    assert outbound_app.test_client().get("/readyz").get_json()["alerts"] == []


def test_without_a_url_nothing_is_sent(app) -> None:
    assert relay_for(app) is None
    assert deliver_outbox(app) is None
