"""The events feed never skips an event that commits late (verify_service/events/feed.py).

The trap: an outbox read in id order. A transaction that took id 41 and commits after the one
that took 42 is skipped by a reader who already passed 42. These tests force that interleaving
with real connections and follow the feed's cursor through it.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
import time

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import FakeClock
from tests.support.concurrency import run_together
from verify_service.accounts import services
from verify_service.db import begin_write, lock_busy, run_read, unit_of_work
from verify_service.events import feed
from verify_service.webhooks.models import OutboxEvent
from verify_service.webhooks.event_examples import examples
from verify_service.webhooks.outbox import enqueue_event

RETENTION = dt.timedelta(days=30)


# A well-formed event's data (the outbox writes only what its type's model accepts); enqueue_event adds the
# account and its seq.
REQUIRED = {name: value for name, value in examples()["verification.required"].items()
            if name not in ("account_id", "seq")}


def _accounts(sessions: sessionmaker[Session], now: dt.datetime, *ids: str) -> None:
    with unit_of_work(sessions) as db:
        for account_id in ids:
            services.upsert_account(db, account_id, services.Profile("Ana", "ana@example.com", "PT"),
                                    actor="test", now=now)


def _enqueue(db: Session, account_id: str, now: dt.datetime) -> OutboxEvent:
    event = enqueue_event(db, services.lock_account(db, account_id), "verification.required", REQUIRED, now=now)
    db.flush()  # the INSERT: the row has its id (and, on PostgreSQL, its transaction's id)
    return event


def _read(engine: sa.Engine, after: str | None, now: dt.datetime) -> tuple[list[str], str]:
    """Follow the cursor until the feed has nothing more visible; the event ids and the last cursor."""
    seen: list[str] = []
    while True:
        page = run_read(engine, lambda connection: feed.read_page(
            connection, feed.Filters(), after=after, limit=2, now=now, retention=RETENTION))
        seen += [event["id"] for event in page.data]
        after = page.next_cursor
        if not page.has_more:
            return seen, after


def _drain(engine: sa.Engine, after: str, now: dt.datetime, expect: set[str]) -> list[str]:
    """Poll from ``after`` until every id of ``expect`` came (other databases' writers may hold the horizon)."""
    seen: list[str] = []
    deadline = time.monotonic() + 20
    while not expect <= set(seen) and time.monotonic() < deadline:
        more, after = _read(engine, after, now)
        seen += more
        time.sleep(0.02)
    return seen


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_the_earlier_id_committing_last_is_returned_once_after_it_commits(
        sessions: sessionmaker[Session], engine: sa.Engine, clock: FakeClock) -> None:
    now = clock()
    _accounts(sessions, now, "acc-a", "acc-b")
    a = sessions()
    try:
        begin_write(a)
        event_a = _enqueue(a, "acc-a", now)              # takes the lower id, and stays open
        with unit_of_work(sessions) as b:
            event_b = _enqueue(b, "acc-b", now)          # the higher id, committed first
            b_id, b_event_id = event_b.id, event_b.event_id
        a_id, a_event_id = event_a.id, event_a.event_id
        assert a_id < b_id
        # The trap is real: in id order, B is there and A is not, so "id > 42" would skip A for ever.
        with engine.connect() as connection:
            committed = connection.scalars(sa.select(OutboxEvent.id).order_by(OutboxEvent.id)).all()
        assert b_id in committed and a_id not in committed

        before, cursor = _read(engine, None, now)
        assert b_event_id not in before and a_event_id not in before   # B waits for A: nothing shows behind it
        a.commit()
    finally:
        a.close()
    after = _drain(engine, cursor, now, {a_event_id, b_event_id})
    seen = before + after
    assert seen.count(a_event_id) == 1 and seen.count(b_event_id) == 1
    assert after[-2:] == [a_event_id, b_event_id]  # in the order they became visible: A's transaction is older
    assert _read(engine, None, now)[0][-2:] == [a_event_id, b_event_id]  # and so from the start, too


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_sqlite_serialises_writers_so_the_id_order_is_the_commit_order(
        sessions: sessionmaker[Session], engine: sa.Engine, clock: FakeClock) -> None:
    now = clock()
    _accounts(sessions, now, "acc-a", "acc-b")
    a = sessions()
    try:
        begin_write(a)                                   # BEGIN IMMEDIATE: the database's write lock
        event_a = _enqueue(a, "acc-a", now)
        a_event_id = event_a.event_id
        # The interleaving cannot happen: a second writer cannot even begin, let alone take id 42.
        with pytest.raises(sa.exc.OperationalError) as refused:
            with unit_of_work(sessions, lock_wait=0.2) as b:
                _enqueue(b, "acc-b", now)
        assert lock_busy(refused.value)
        before, cursor = _read(engine, None, now)
        assert before == []                               # A is not committed: nothing to show
        a.commit()
    finally:
        a.close()
    with unit_of_work(sessions) as b:
        event_b = _enqueue(b, "acc-b", now)
        b_event_id = event_b.event_id
    assert event_b.id > event_a.id
    after, _ = _read(engine, cursor, now)
    assert after == [a_event_id, b_event_id]


def test_writers_racing_a_reader_never_make_it_skip_or_repeat(
        sessions: sessionmaker[Session], engine: sa.Engine, clock: FakeClock) -> None:
    """Writers that hold their transaction open for a random while, and a reader following the cursor meanwhile."""
    now = clock()
    accounts = [f"acc-{i}" for i in range(6)]
    _accounts(sessions, now, *accounts)
    done = threading.Event()
    seen: list[str] = []

    def writer(account_id: str) -> None:
        rng = random.Random(account_id)
        for _ in range(8):
            with unit_of_work(sessions) as db:
                _enqueue(db, account_id, now)
                time.sleep(rng.random() * 0.02)           # commit late, while others commit

    def reader() -> None:
        after = None
        while not done.is_set():
            more, after = _read(engine, after, now)
            seen.extend(more)
        with engine.connect() as connection:
            every = set(connection.scalars(sa.select(OutboxEvent.event_id)).all())
        seen.extend(_drain(engine, after, now, every - set(seen)))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        results = run_together([lambda account_id=account_id: writer(account_id) for account_id in accounts])
    finally:
        done.set()
        thread.join()
    assert results == [None] * len(accounts)
    with engine.connect() as connection:
        every = connection.scalars(sa.select(OutboxEvent.event_id)).all()
    assert len(every) == 6 * 8
    assert sorted(seen) == sorted(every)                  # each exactly once
