"""The events API on PostgreSQL at 10 million events: a page at a random position, and the whole feed.

    .venv/bin/python tests/bench/bench_events.py [--size 10000000] [--pages 300] [--read 1000000] [--check]

PostgreSQL: ``VERIFY_BENCH_DATABASE_URL`` (default
postgresql+psycopg://postgres@127.0.0.1:5432/bench_events), created, migrated and seeded with
--size delivered events when it holds fewer (a later run reuses them; seeding 10 million takes
minutes): 100 events on each of size/100 accounts, spread over the last 29 days, written by
generate_series in transactions of 100,000 rows, so the rows carry real transaction ids.

Both figures go through the real app's view, ``GET /api/v1/events`` with the API key, in
production settings, through Flask's test client (routing, the key check, query validation,
the feed's one statement, the JSON body; no socket):
  page   --pages requests of ``limit=500`` after a cursor at a random seeded event: p50/p95/p99.
         The feed function alone (no Flask) is shown beside it.
  read   following ``next_cursor`` from the start of the feed over the first --read events, 500
         at a time: events per second.
Targets: page p95 < 50 ms; read >= 20,000 events/s.
Not a test: pytest does not collect tests/bench (setup.cfg norecursedirs).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from tests.bench import support  # noqa: E402
from tests.bench.bench_restrictions import service_env  # noqa: E402
from verify_service import create_app  # noqa: E402
from verify_service.db import run_read  # noqa: E402
from verify_service.events import feed  # noqa: E402
from verify_service.registry import KEY  # noqa: E402
from verify_service.settings import load_settings  # noqa: E402

EVENTS_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_events"
PREFIX = "evb-"  # the seeded accounts: evb-0000001 …
PER_ACCOUNT = 100
BATCH = 100_000
PAGE = 500
P95_TARGET_MS = 50.0
READ_TARGET = 20_000.0  # events/s

_ACCOUNTS_SQL = """
INSERT INTO accounts (id, verification_status, restrictions_version, last_event_seq, created_at, updated_at)
SELECT %(prefix)s || lpad(a::text, 7, '0'), 'required', %(per)s / 2, %(per)s, now() - interval '60 days', now()
FROM generate_series(%(first)s::int, %(last)s::int) AS a
ON CONFLICT DO NOTHING
"""
# Event i is account 1 + (i-1)/per's event 1 + (i-1)%per; ids ascend with i. A realistic body for each type.
_EVENTS_SQL = """
INSERT INTO outbox_events (event_id, account_id, seq, type, data, created_at, status, attempts, next_attempt_at,
                           delivered_at)
SELECT 'evt_' || lpad(to_hex(i), 32, '0'), acc, seq, t,
       json_build_object('account_id', acc, 'seq', seq, 'restrictions_version', seq / 2,
                         'reason', 'new_account', 'blocked', json_build_array('submit_proposals')),
       at, 'delivered', 1, at, at + interval '1 second'
FROM (SELECT i, %(prefix)s || lpad((1 + (i - 1) / %(per)s)::text, 7, '0') AS acc, 1 + (i - 1) %% %(per)s AS seq,
             (ARRAY['verification.required', 'account.hold.placed', 'verification.session.started',
                    'verification.passed', 'account.hold.lifted'])[1 + i %% 5] AS t,
             now() - interval '29 days' + i * (interval '29 days' / %(size)s) AS at
      FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS i) AS s
"""


def seed(url: str, size: int) -> float:
    """Make sure ``size`` seeded events exist; returns the seconds spent inserting (0: reused)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            present = conn.scalar(sa.text("SELECT coalesce(max(id), 0) FROM outbox_events")) or 0
        if present >= size:
            return 0.0
        started = time.perf_counter()
        params = {"prefix": PREFIX, "per": PER_ACCOUNT, "size": size}
        with engine.begin() as conn:
            conn.exec_driver_sql(_ACCOUNTS_SQL, {**params, "first": 1, "last": -(-size // PER_ACCOUNT)})
        for first in range(present + 1, size + 1, BATCH):  # one transaction per batch: real, distinct txids
            with engine.begin() as conn:
                conn.exec_driver_sql(_EVENTS_SQL, {**params, "first": first, "last": min(size, first + BATCH - 1)})
            print(f"  seeded {min(size, first + BATCH - 1):,} events ({time.perf_counter() - started:.0f} s)",
                  flush=True)
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE outbox_events")
        return time.perf_counter() - started
    finally:
        engine.dispose()


def random_cursors(url: str, size: int, count: int, rng: random.Random) -> list[str]:
    """Cursors at ``count`` random seeded events, at least a page before the end (each page is then full)."""
    ids = [rng.randint(1, max(1, size - PAGE - 1)) for _ in range(count)]
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = dict(conn.execute(sa.text("SELECT id, txid FROM outbox_events WHERE id = ANY(:ids)"),
                                     {"ids": ids}).all())
    finally:
        engine.dispose()
    now = int(time.time())
    return [feed.Cursor(feed.Filters(), (rows[i], i), now).encode() for i in ids]


def time_pages(client: Any, cursors: list[str]) -> list[float]:
    """Milliseconds of each GET of a full page after each cursor. Raises: SystemExit on a wrong answer."""
    auth = {"Authorization": f"Bearer {support.API_KEY}"}
    timings = []
    for cursor in cursors:
        started = time.perf_counter()
        response = client.get("/api/v1/events", query_string={"after": cursor, "limit": PAGE}, headers=auth)
        timings.append(1000 * (time.perf_counter() - started))
        if response.status_code != 200 or len(response.get_json()["data"]) != PAGE:
            raise SystemExit(f"unexpected answer: {response.status_code} {response.get_data(as_text=True)[:300]}")
    return timings


def time_function(engine: sa.Engine, cursors: list[str]) -> list[float]:
    timings = []
    for cursor in cursors:
        started = time.perf_counter()
        run_read(engine, lambda connection, after=cursor: feed.read_page(
            connection, feed.Filters(), after=after, limit=PAGE, now=dt.datetime.now(dt.timezone.utc),
            retention=dt.timedelta(days=30)))
        timings.append(1000 * (time.perf_counter() - started))
    return timings


def read_feed(client: Any, events: int) -> tuple[int, float]:
    """Follow next_cursor from the start until ``events`` came; (how many, seconds)."""
    auth = {"Authorization": f"Bearer {support.API_KEY}"}
    seen, after, last_id = 0, None, None
    started = time.perf_counter()
    while seen < events:
        query = {"limit": PAGE, **({"after": after} if after else {})}
        response = client.get("/api/v1/events", query_string=query, headers=auth)
        page = response.get_json()
        if response.status_code != 200 or not page["data"] or page["data"][0]["id"] == last_id:
            raise SystemExit(f"unexpected answer: {response.status_code} {response.get_data(as_text=True)[:300]}")
        seen += len(page["data"])
        after, last_id = page["next_cursor"], page["data"][-1]["id"]
        if not page["has_more"]:
            break
    return seen, time.perf_counter() - started


def _stats(label: str, timings: list[float]) -> str:
    return (f"{label}: p50 {support.percentile(timings, 50):.1f} ms, p95 {support.percentile(timings, 95):.1f} ms, "
            f"p99 {support.percentile(timings, 99):.1f} ms over {len(timings)} pages")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=10_000_000, help="events in the outbox (default 10,000,000)")
    parser.add_argument("--pages", type=int, default=300, help="timed pages at random positions (default 300)")
    parser.add_argument("--read", type=int, default=1_000_000, help="events to read from the start (default 1M)")
    parser.add_argument("--seed", type=int, default=20261204, help="the random positions")
    parser.add_argument("--database-url", help="default: $VERIFY_BENCH_DATABASE_URL or bench_events")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    url = support.database_url(args.database_url, EVENTS_DATABASE_URL)
    support.prepare_database(url)
    load_before = os.getloadavg()
    seconds = seed(url, args.size)
    print(f"events: {args.size:,} ({'seeded in %.0f s' % seconds if seconds else 'reused'})")
    with tempfile.TemporaryDirectory(prefix="verify-bench-") as scratch:
        app = create_app(load_settings(service_env(url, 0, Path(scratch), {})))  # production settings
        client = app.test_client()
        rng = random.Random(args.seed)
        warm = random_cursors(url, args.size, 20, rng)
        time_pages(client, warm)
        cursors = random_cursors(url, args.size, args.pages, rng)
        view = time_pages(client, cursors)
        function = time_function(app.extensions[KEY].engine, cursors)
        count, elapsed = read_feed(client, min(args.read, args.size))
    rate = count / elapsed
    p95 = support.percentile(view, 95)
    print(_stats("page of 500 at a random position, GET through the app (test client)", view))
    print(f"  target p95 < {P95_TARGET_MS:.0f} ms: {p95 / P95_TARGET_MS:.2f} x the target")
    print(_stats("  the same pages, the feed function alone (no Flask)", function))
    print(f"read the feed from the start: {count:,} events in {elapsed:.1f} s = {rate:,.0f} events/s "
          f"({rate / READ_TARGET:.2f} x the {READ_TARGET:,.0f}/s target)")
    for line in [support.machine_line(load_before), support.postgres_line(url)]:
        print(line)
    missed = p95 >= P95_TARGET_MS or rate < READ_TARGET
    if missed:
        print("TARGET MISSED")
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
