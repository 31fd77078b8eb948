"""Faults: PostgreSQL restarted under load, a web worker and the relay SIGKILLed, the receiver down for 4 days.

Real processes where the fault is a process's death (gunicorn, the relay
CLI), a real PostgreSQL server that really stops (a throwaway cluster of its
own: the machine's shared one is never touched), and the FakeClock where the
fault is days long. What must hold each time: the API answers (2xx, or a
503 problem while the database is down, never a 500 or a hang), every write
the service acknowledged is in the database once, and every event reaches
the account service in per-account order with its one ``webhook-id``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import random
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests
import sqlalchemy as sa
from flask import Flask

from integrations.account_service import WebhookSender
from tests.conftest import ACCOUNT_SERVICE_SECRET, FakeClock, assert_problem
from tests.integration.test_outbox_relay import outbound_app  # noqa: F401  (a fixture)
from tests.integration.test_scale_out import BIN, Cluster, wait_until
from tests.support.api_client import AUTH, REQUEST_TIMEOUT, AccountService, Answer, Load
from tests.support.pg_cluster import ThrowawayCluster, throwaway_cluster
from tests.support.receiver import Delivery, DropConnection, Receiver
from tests.support.staff import csrf_token, signed_in
from verify_service.accounts import services
from verify_service.accounts.domain import HoldKind
from verify_service.accounts.models import Account, Hold, VerificationRequest
from verify_service.api.models import IdempotencyKey
from verify_service.audit.services import verify_chain
from verify_service.db import make_engine, make_sessionmaker, unit_of_work
from verify_service.errors import database_unavailable
from verify_service.freelancer.models import LaunchLink
from verify_service.registry import KEY
from verify_service.staff.models import Role
from verify_service.webhooks.models import DeliveryStatus, OutboxEvent
from verify_service.webhooks.relay import LEASE, MAX_ATTEMPTS, RETRY_SCHEDULE, Relay

PG_ONLY = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)


def check_acknowledged(sessions: Any, done: list[dict[str, str]]) -> None:
    """Every acknowledged write is in the database exactly once; seqs gapless; the audit chain intact."""
    ids = [item["account_id"] for item in done]
    with sessions() as session:
        accounts = set(session.scalars(sa.select(Account.id).where(Account.id.in_(ids))))
        requests_per = dict(session.execute(sa.select(VerificationRequest.account_id, sa.func.count())
                                            .where(VerificationRequest.account_id.in_(ids))
                                            .group_by(VerificationRequest.account_id)).all())
        holds_per = dict(session.execute(sa.select(Hold.account_id, sa.func.count())
                                         .where(Hold.account_id.in_(ids)).group_by(Hold.account_id)).all())
        links = dict(session.execute(sa.select(LaunchLink.token_hash, LaunchLink.account_id)
                                     .where(LaunchLink.account_id.in_(ids))).all())
        seqs: dict[str, list[int]] = {}
        for account_id, seq in session.execute(sa.select(OutboxEvent.account_id, OutboxEvent.seq)
                                               .where(OutboxEvent.account_id.in_(ids)).order_by(OutboxEvent.seq)):
            seqs.setdefault(account_id, []).append(seq)
        assert verify_chain(session).ok
    assert accounts == set(ids)
    assert requests_per == dict.fromkeys(ids, 1) and holds_per == dict.fromkeys(ids, 1)
    # One link per key (a retry replays it, never issues a second), and it is the acknowledged one.
    assert sorted(links.values()) == sorted(ids)
    for item in done:
        token = item["link"].rsplit("/", 1)[1]
        assert links[hashlib.sha256(token.encode()).hexdigest()] == item["account_id"]
    # verification.required and account.hold.placed, once each.
    assert seqs == {account_id: [1, 2] for account_id in ids}


def gunicorn_workers(cluster: Cluster, name: str = "web0") -> list[psutil.Process]:
    return psutil.Process(cluster.processes[name].pid).children()


def booted_workers(cluster: Cluster, name: str = "web0") -> set[int]:
    """The pids of the master's workers, once it has forked them all (the first may answer before the last boots)."""
    count = int(cluster.env["VERIFY_WEB_WORKERS"])
    wait_until(lambda: len(gunicorn_workers(cluster, name)) == count, 30, f"{count} gunicorn workers", every=0.1)
    return {w.pid for w in gunicorn_workers(cluster, name)}


# ---------------------------------------------------------------- PostgreSQL restarted under load

@pytest.fixture(scope="module")
def pg() -> Iterator[ThrowawayCluster]:
    """A PostgreSQL cluster of this module's own, which the tests may stop and restart."""
    with throwaway_cluster() as cluster:
        yield cluster


@pytest.fixture
def on_throwaway(pg: ThrowawayCluster, tmp_path: Path, receiver: Receiver) -> Iterator[Cluster]:
    database = f"verify_{uuid.uuid4().hex[:8]}"
    pg.psql(f"CREATE DATABASE {database}")
    cluster = Cluster(tmp_path, pg.url(database), receiver)
    cluster.env.update(VERIFY_WEB_WORKERS="2", VERIFY_WEB_THREADS="4", VERIFY_SCHEDULER_BEAT_SECONDS="1",
                       VERIFY_SCHEDULER_POLL_SECONDS="0.5")
    cluster.start("upgrade", [str(BIN / "verify-service"), "db", "upgrade"]).wait(timeout=120)
    assert cluster.processes["upgrade"].returncode == 0, cluster.log("upgrade")
    try:
        yield cluster
    finally:
        cluster.stop_all()


@dataclasses.dataclass(frozen=True)
class Outage:
    mode: str
    stopped: float   # time.monotonic() when the stop command returned (the server is down)
    starting: float  # ... when the start command was run
    started: float   # ... when the server accepted connections again


def outage(pg: ThrowawayCluster, client: AccountService, mode: str) -> Outage:
    """Stop PostgreSQL under load, keep it down 3 s, start it; returns once the service answered a 2xx again."""
    pg.stop(mode)
    stopped = time.monotonic()
    time.sleep(3)
    starting = time.monotonic()
    pg.start()
    started = time.monotonic()
    wait_until(lambda: any(a.status and a.status < 300 and a.at > started for a in client.answers), 30,
               "the service to recover by itself")
    return Outage(mode, stopped, starting, started)


def check_outage(answers: list[Answer], out: Outage) -> str:
    """While down: every answer a 503. After: a 2xx within seconds. Returns the figures."""
    down = [a for a in answers if out.stopped <= a.at and a.at + a.took <= out.starting]
    assert down and all(a.status == 503 for a in down), [a for a in down if a.status != 503][:3]
    recovered = min(a.at + a.took for a in answers if a.status and a.status < 300 and a.at > out.started)
    assert recovered - out.started < 10
    return (f"{out.mode} stop: {len(down)} answers while down, all 503; start took {out.started - out.starting:.1f} s;"
            f" first 2xx {recovered - out.started:.2f} s after PostgreSQL accepted connections")


@pytest.mark.slow
def test_postgresql_restart_under_load(pg: ThrowawayCluster, on_throwaway: Cluster, receiver: Receiver) -> None:
    cluster = on_throwaway
    cluster.start_web(0)
    cluster.start_scheduler("scheduler")
    workers = booted_workers(cluster)
    client = AccountService(cluster.webs[0])
    outages = []
    with Load(client, "pg") as load:
        for mode in ("fast", "immediate"):  # a clean restart (clients told), then a crash (WAL recovery)
            wait_until(lambda: len(load.done) >= 4 * (len(outages) + 1), 60, "the load to go on", every=0.1)
            outages.append(outage(pg, client, mode))
        time.sleep(1)
    answers = client.answers
    # Never a 500, never a cut connection, never a hang: 2xx, or a 503 problem with Retry-After.
    assert all(a.took < REQUEST_TIMEOUT - 2 for a in answers), max(a.took for a in answers)
    failed = [a for a in answers if a.status is None or a.status >= 300]
    assert all(a.status == 503 and "application/problem+json" in a.detail and '"database_unavailable"' in a.detail
               and "Retry-After=5" in a.detail for a in failed), failed[:3]
    figures = [check_outage(answers, out) for out in outages]
    # The service recovered by itself: the same gunicorn workers and scheduler, no restart.
    assert {w.pid for w in gunicorn_workers(cluster)} == workers
    assert cluster.processes["scheduler"].poll() is None
    engine = make_engine(cluster.database_url)
    try:
        check_acknowledged(make_sessionmaker(engine), load.done)
        # The scheduler's relay too: every event reaches the account service, in order.
        wait_until(lambda: undelivered(engine) == 0, 60, "every event to be delivered", every=0.5)
    finally:
        engine.dispose()
    assert receiver.violations == [] and receiver.rejected == []
    print(f"\nPostgreSQL restarts under load: {'; '.join(figures)}; {len(load.done)} accounts onboarded, "
          f"{len(failed)} answers 503 in all")


def undelivered(engine: sa.Engine) -> int:
    with engine.connect() as connection:
        return connection.scalar(sa.select(sa.func.count()).select_from(OutboxEvent)
                                 .where(OutboxEvent.status != DeliveryStatus.DELIVERED))


# ---------------------------------------------------------------- a web worker SIGKILLed mid-request

@pytest.fixture
def processes_on_pg(database_url: str, tmp_path: Path, receiver: Receiver) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path, database_url, receiver)
    cluster.env.update(VERIFY_WEB_WORKERS="2", VERIFY_WEB_THREADS="4")
    try:
        yield cluster
    finally:
        cluster.stop_all()


@pytest.mark.slow
@PG_ONLY
def test_a_web_worker_killed_mid_request(processes_on_pg: Cluster, sessions: Any, engine: sa.Engine) -> None:
    cluster = processes_on_pg
    cluster.start_web(0)
    booted_workers(cluster)
    client = AccountService(cluster.webs[0])
    client.acknowledged("PUT", "/api/v1/accounts/held", {"name": "Held", "email": "h@example.com", "country": "PT"})
    first_try: list[requests.Response | None] = []
    with Load(client, "kill") as load, engine.connect() as blocker:
        # Hold the account's row lock, so its request is surely in flight inside one worker when that worker dies.
        blocker.execute(sa.select(Account).where(Account.id == "held").with_for_update())
        blocker_pid = blocker.scalar(sa.text("SELECT pg_backend_pid()"))
        stuck = threading.Thread(target=lambda: first_try.append(client.once(
            "POST", "/api/v1/accounts/held/verification-requests", {"reason": "risk_signal", "place_hold": True},
            "req-held")))
        stuck.start()
        victim = worker_blocked_by(cluster, engine, blocker_pid)
        others = {w.pid for w in gunicorn_workers(cluster)} - {victim.pid}
        killed_at = time.monotonic()
        victim.send_signal(signal.SIGKILL)
        stuck.join(timeout=REQUEST_TIMEOUT)
        blocker.rollback()
        wait_until(lambda: replaced(cluster, victim.pid, others), 30, "the master to replace the worker", every=0.1)
        respawn = time.monotonic() - killed_at
        time.sleep(1)  # the load goes on across the respawn
    assert first_try == [None]  # the client saw the connection cut, not an answer
    retried = client.acknowledged("POST", "/api/v1/accounts/held/verification-requests",
                                  {"reason": "risk_signal", "place_hold": True}, key="req-held")
    assert retried.status_code == 201
    # Only 2xx or cut connections (requests in flight in the dead worker): never a 500 or a 503.
    assert {a.status for a in client.answers} <= {200, 201, None}
    check_acknowledged(sessions, load.done)
    with sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(VerificationRequest)
                              .where(VerificationRequest.account_id == "held")) == 1
        assert session.scalar(sa.select(sa.func.count()).select_from(IdempotencyKey)
                              .where(IdempotencyKey.key == "req-held")) == 1
        assert session.scalars(sa.select(OutboxEvent.seq).where(OutboxEvent.account_id == "held")
                               .order_by(OutboxEvent.seq)).all() == [1, 2]
    cut = sum(1 for a in client.answers if a.status is None)
    print(f"\nworker SIGKILL: replaced in {respawn:.2f} s; {cut} requests cut; {len(load.done)} accounts onboarded")


def replaced(cluster: Cluster, killed: int, others: set[int]) -> bool:
    pids = {w.pid for w in gunicorn_workers(cluster)}
    return killed not in pids and len(pids - others) == 1


def worker_blocked_by(cluster: Cluster, engine: sa.Engine, blocker_pid: int) -> psutil.Process:
    """The gunicorn worker whose PostgreSQL connection waits for ``blocker_pid``'s lock (matched by client port)."""
    def port() -> int | None:
        with engine.connect() as connection:
            return connection.scalar(sa.text(
                "SELECT client_port FROM pg_stat_activity WHERE :blocker = ANY(pg_blocking_pids(pid))"),
                {"blocker": blocker_pid})

    client_port = wait_until(port, 30, "the request to wait on the account's lock", every=0.05)
    for worker in gunicorn_workers(cluster):
        if any(c.laddr.port == client_port for c in worker.net_connections(kind="tcp")):
            return worker
    raise AssertionError(f"no gunicorn worker owns the connection from port {client_port}")


# ---------------------------------------------------------------- the relay SIGKILLed mid-delivery

def hold_events(sessions: Any, clock: FakeClock, account_id: str, count: int) -> None:
    """An account with ``count`` hold events (seq 1..count)."""
    with unit_of_work(sessions) as session:
        services.upsert_account(session, account_id, services.Profile("A", "a@example.com", "PT"), actor="test",
                                now=clock())
    for n in range(count):
        with unit_of_work(sessions) as session:
            services.place_hold(session, account_id, kind=HoldKind.MANUAL, blocks=["appear_in_search"],
                                reason=f"r{n}", actor="lead:1", now=clock())


@pytest.mark.slow
@PG_ONLY
def test_the_relay_killed_mid_delivery(processes_on_pg: Cluster, sessions: Any, engine: sa.Engine,
                                       receiver: Receiver) -> None:
    cluster = processes_on_pg
    clock = FakeClock(dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc))  # the events are due by the real clock
    accounts = [f"acc-{n}" for n in range(4)]
    for account_id in accounts:
        hold_events(sessions, clock, account_id, 3)
    killed = threading.Event()
    in_flight: list[Delivery] = []

    def slow(delivery: Delivery) -> tuple[int, dict[str, str]]:
        if not killed.is_set():
            in_flight.append(delivery)
            killed.wait(20)  # still working on it when the relay dies
            # Both sides of the crash: the receiver finishes some (the relay never hears the 2xx) and not others.
            if int(delivery.account_id.rsplit("-", 1)[1]) % 2:
                raise DropConnection
        return 204, {}

    receiver.policy = slow
    relay = [str(BIN / "verify-service"), "outbox", "deliver", "--once"]
    cluster.start("relay-1", relay)
    wait_until(lambda: len(in_flight) == len(accounts), 30, "a delivery in flight on every account", every=0.05)
    cluster.kill("relay-1")
    killed.set()
    with sessions() as session:
        leased = session.scalars(sa.select(OutboxEvent).where(OutboxEvent.claimed_by.is_not(None))).all()
        # The relay leases each account's run (its head and the events after it), none written as attempted.
        assert {(e.account_id, e.seq, e.attempts) for e in leased} == {(a, s, 0) for a in accounts for s in (1, 2, 3)}
    # The dead relay's lease runs out (2 minutes; moved here rather than waited for), then a new relay starts.
    with unit_of_work(sessions) as session:
        for event in session.scalars(sa.select(OutboxEvent).where(OutboxEvent.claimed_by.is_not(None))):
            event.claimed_until -= LEASE
    assert cluster.start("relay-2", relay).wait(timeout=60) == 0, cluster.log("relay-2")
    assert "delivered 12, failed 0" in cluster.log("relay-2")
    with sessions() as session:
        events = {(e.account_id, e.seq): e.event_id for e in session.scalars(sa.select(OutboxEvent))}
    assert undelivered(engine) == 0
    seen: dict[tuple[str, int], list[str]] = {}
    for delivery in receiver.deliveries:
        seen.setdefault((delivery.account_id, delivery.seq), []).append(delivery.webhook_id)
    # Each event arrived under its own webhook-id; the ones in flight at the kill arrived twice, same id.
    assert {key: set(ids) for key, ids in seen.items()} == {key: {event_id} for key, event_id in events.items()}
    assert {key for key, ids in seen.items() if len(ids) > 1} == {(d.account_id, d.seq) for d in in_flight}
    assert receiver.applied == {a: [1, 2, 3] for a in accounts}
    assert receiver.violations == [] and receiver.rejected == []


# ---------------------------------------------------------------- the receiver down for 4 days

class NoJitter(random.Random):
    """The retry delays exactly as scheduled (the jitter's bounds are tested in test_retry_schedule)."""

    def uniform(self, a: float, b: float) -> float:
        return (a + b) / 2


def test_receiver_down_for_four_days(outbound_app: Flask, clock: FakeClock, receiver: Receiver) -> None:
    registry = outbound_app.extensions[KEY]
    sessions, t0 = registry.sessions, clock()
    relay = Relay(sessions, WebhookSender(receiver.url, ACCOUNT_SERVICE_SECRET), clock=clock, rng=NoJitter())
    back_at = t0 + dt.timedelta(days=4)
    attempts: list[tuple[dt.datetime, str, int]] = []

    def down_for_four_days(delivery: Delivery) -> tuple[int, dict[str, str]]:
        attempts.append((clock(), delivery.webhook_id, delivery.attempt))
        return (503, {}) if clock() < back_at else (204, {})

    receiver.policy = down_for_four_days
    hold_events(sessions, clock, "acc-a", 3)
    run_passes(relay, sessions, clock, until=t0 + dt.timedelta(days=1))
    hold_events(sessions, clock, "acc-b", 2)  # a day later
    run_passes(relay, sessions, clock, until=t0 + dt.timedelta(days=10))
    assert relay.run_once().delivered == 0  # day 10: nothing more goes out by itself

    offsets = [sum(RETRY_SCHEDULE[:n], dt.timedelta()) for n in range(MAX_ATTEMPTS)]  # 0, 5 s, 5 min 5 s, ...
    events = {(e.account_id, e.seq): e for e in rows(sessions)}
    a1, b1 = events[("acc-a", 1)], events[("acc-b", 1)]
    # acc-a's first event: tried exactly per schedule, then dead-lettered at its 11th attempt (day 3.57).
    assert [(at, n) for at, event_id, n in attempts if event_id == a1.event_id] == \
        [(t0 + offset, n) for n, offset in enumerate(offsets, start=1)]
    assert (a1.status, a1.attempts, a1.last_attempt_at, a1.last_status_code) == \
        (DeliveryStatus.DEAD, MAX_ATTEMPTS, t0 + offsets[-1], 503)
    # ... and the account's later events wait behind it, never sent, even days after the receiver is back.
    assert {events[("acc-a", s)].status for s in (2, 3)} == {DeliveryStatus.PENDING}
    assert {d.seq for d in receiver.deliveries if d.account_id == "acc-a"} == {1}
    # acc-b started a day later: its 11th and last attempt falls after the receiver is back and succeeds.
    b_times = [at for at, event_id, _ in attempts if event_id == b1.event_id]
    assert b_times == [t0 + dt.timedelta(days=1) + offset for offset in offsets]
    assert (b1.status, b1.attempts, events[("acc-b", 2)].status) == \
        (DeliveryStatus.DELIVERED, MAX_ATTEMPTS, DeliveryStatus.DELIVERED)

    # A lead sees the dead event on the dashboard and redelivers it; the account's queue follows in order.
    lead = outbound_app.test_client()
    signed_in(lead, registry, role=Role.LEAD)
    assert a1.event_id in lead.get("/review/lead/deliveries").get_data(as_text=True)
    redelivered = lead.post("/review/lead/deliveries/redeliver",
                            data={"event_id": a1.event_id, "csrf_token": csrf_token(lead, "/review/lead/deliveries")})
    assert redelivered.status_code == 303
    sent_before = len(receiver.deliveries)
    assert relay.run_once().delivered == 3
    after = receiver.deliveries[sent_before:]
    assert [(d.seq, d.webhook_id, d.attempt) for d in after] == \
        [(1, a1.event_id, 1), (2, events[("acc-a", 2)].event_id, 1), (3, events[("acc-a", 3)].event_id, 1)]
    assert receiver.applied == {"acc-a": [1, 2, 3], "acc-b": [1, 2]} and receiver.violations == []


def rows(sessions: Any) -> list[OutboxEvent]:
    with sessions() as session:
        return list(session.scalars(sa.select(OutboxEvent)))


def run_passes(relay: Relay, sessions: Any, clock: FakeClock, *, until: dt.datetime) -> None:
    """Run a relay pass at each moment an account's head event falls due (and one second before), up to ``until``.

    What a scheduler running the relay every few seconds would do, without the 150,000 empty passes.
    """
    while True:
        events = rows(sessions)
        heads = [e for e in events if e.status == DeliveryStatus.PENDING and not any(
            o.account_id == e.account_id and o.seq < e.seq and o.status != DeliveryStatus.DELIVERED for o in events)]
        due = min((e.next_attempt_at for e in heads), default=until)
        if due >= until:
            clock.current = until
            return
        if due > clock():
            clock.current = due - dt.timedelta(seconds=1)
            early = relay.run_once()
            assert (early.delivered, early.failed, early.dead) == (0, 0, 0), "an attempt before its time"
        clock.current = max(due, clock())
        relay.run_once()


# ---------------------------------------------------------------- 503, not 500, in-process

@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # the app's own database is swapped out
def test_an_unreachable_database_is_a_503_for_the_api_and_the_pages(client, registry, monkeypatch) -> None:
    unreachable = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    monkeypatch.setattr(registry, "engine", unreachable)
    monkeypatch.setattr(registry, "sessions", make_sessionmaker(unreachable))
    api = client.get("/api/v1/accounts/acc-1/restrictions", headers=AUTH)
    body = assert_problem(api, 503, "database_unavailable")
    assert api.headers["Retry-After"] == "5" and "Idempotency-Key" in body["detail"]
    write = client.post("/api/v1/accounts/acc-1/verification-requests", json={"reason": "manual"},
                        headers={**AUTH, "Idempotency-Key": "k-1"})
    assert_problem(write, 503, "database_unavailable")
    page = client.get("/verify/launch/some-token")
    assert page.status_code == 503 and page.mimetype == "text/html" and page.headers["Retry-After"] == "5"
    text = page.get_data(as_text=True)
    assert "try again in a few seconds" in text and "Idempotency-Key" not in text  # the freelancer's wording


def test_only_operational_database_errors_are_503() -> None:
    gone = sa.exc.OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))
    assert database_unavailable(gone)
    assert not database_unavailable(sa.exc.IntegrityError("INSERT", {}, Exception("duplicate key")))
    assert database_unavailable(sa.exc.InterfaceError("SELECT 1", {}, Exception("closed"), connection_invalidated=True))
