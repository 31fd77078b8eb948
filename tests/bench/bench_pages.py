"""Reviewer queue and account page latency at 10k, 100k and 1M historical call sessions on PostgreSQL.

    make bench                                   # every tests/bench/bench_*.py
    .venv/bin/python tests/bench/bench_pages.py [--sizes 10000,100000,1000000] [--requests 200] [--check]

Each size has its own database, named after ``VERIFY_BENCH_DATABASE_URL``
(default postgresql+psycopg://postgres@127.0.0.1:5432/bench_pages) with a
suffix: ``bench_pages_10k``, ``bench_pages_100k``, ``bench_pages_1m``. The
script creates and migrates them and generates the data in SQL (INSERT …
SELECT generate_series; a few minutes for 1M on a small busy machine), and reuses
a database whose data is complete (marked in its COMMENT) on the next run.

The data: a service that has been running for a while at 1,000 call sessions
a day, so a bigger history is a longer one, and today's work is the same at
every size. Five sessions per account (N/5 accounts), 40 reviewers and a
lead; 80% of the history completed with an outcome, the rest expired or
canceled; a verification request, holds (a pending hold lifted on passing, some
manual ones), audit entries and delivered webhook events for each account, as
the services would have written them. (The audit chain's hashes are made up:
nothing on these pages checks them.) Live now: 40 sessions waiting, 5 booked
ones due, 9 in progress, 20 future bookings.

Pages, through the real app in this process (Flask's test client: no HTTP
server, no network; the time is the WSGI call, templates included), signed in
as staff, PostgreSQL on loopback:
  queue          GET /review                   the reviewer queue (HTML)
  queue poll     GET /review as JSON           what queue.js asks every 5 s
  my sessions    GET /review/mine              a reviewer with 2 years of decisions
  account        GET /review/lead/accounts/ID  a lead's account page, a different account each request
                                               (random: at 1M its rows are seldom in memory yet)
  account again  the same accounts once more   (now their rows are in memory)
  account list   GET /review/lead/accounts     held accounts first, then the others, changed last first
  account search GET /review/lead/accounts?q=  an id prefix matching 100 accounts (50 shown)

Targets: p95 < 100 ms at 1M, and p95 at 1M < 2 x p95 at 10k. The statement
count per page is printed too (tests/functional/test_query_counts.py pins it).
Not a test: pytest does not collect tests/bench.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
from flask.testing import FlaskClient  # noqa: E402

from tests.bench.support import (  # noqa: E402
    PAGES_DATABASE_URL, database_url, describe_machine, prepared_engine)
from tests.conftest import make_settings  # noqa: E402
from tests.bench.support import percentile  # noqa: E402
from verify_service import create_app  # noqa: E402
from verify_service.db import make_engine, unit_of_work  # noqa: E402
from verify_service.registry import KEY, Registry  # noqa: E402
from verify_service.staff import sessions as staff_sessions  # noqa: E402
from verify_service.staff.auth import cookie_name  # noqa: E402
from verify_service.staff.models import Stage  # noqa: E402

P95_TARGET_MS = 100.0
GROWTH_TARGET = 2.0
GENERATOR = "bench_pages data v2"
NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.timezone.utc)  # the app's clock while timing
PER_DAY = 1000
REVIEWERS = 40  # reviewer ids 1..40; the lead is 41
LEAD_ID = REVIEWERS + 1
SIZE_NAMES = {10_000: "10k", 100_000: "100k", 1_000_000: "1m"}
# What the queue shows of a session's system check (review/queue.py compact_system_check).
SYSTEM_CHECKS = [
    {"verdict": "supported", "browser": "chrome", "browser_major": 142, "os": "windows", "os_version": "11",
     "mobile": False},
    {"verdict": "unverified", "browser": "chrome", "browser_major": 141, "os": "macos", "os_version": None,
     "mobile": False},
    {"verdict": "supported", "browser": "edge", "browser_major": 142, "os": "windows", "os_version": "10",
     "mobile": False},
    {"verdict": "use_mobile_app", "browser": "safari", "browser_major": 18, "os": "ios", "os_version": "18.1",
     "mobile": True},
]

# ---------------------------------------------------------------- the data (PostgreSQL)

HISTORY_SQL = [
    # Staff: 40 reviewers and a lead (sign-in is by session token here, so the hash is never checked).
    """INSERT INTO reviewers (id, email, display_name, role, password_hash, active, created_at)
       SELECT r, 'bench-reviewer-' || r || '@example.com', 'Reviewer ' || r,
              CASE WHEN r = :lead THEN 'lead' ELSE 'reviewer' END, 'not-a-hash', true, :start - interval '30 days'
       FROM generate_series(1, :lead) AS r""",
    "SELECT setval('reviewers_id_seq', :lead)",
    # Accounts: account a's sessions are a, a + A, a + 2A, ... (five each, spread over the whole history).
    """INSERT INTO accounts (id, display_name, email, country, verification_status, verification_changed_at,
                             restrictions_version, last_event_seq, created_at, updated_at)
       SELECT 'acct-' || lpad(a::text, 7, '0'), 'Freelancer ' || a, 'f' || a || '@example.com',
              (ARRAY['PT','BR','IN','US','PH','UA','NG','PK','DE','AR'])[1 + a % 10],
              CASE WHEN a % 20 < 17 THEN 'verified' WHEN a % 20 < 19 THEN 'required' ELSE 'failed' END,
              :start + (a + 4 * :accounts) * :tick + interval '20 minutes', 0, 0,
              :start + a * :tick - interval '1 day', :start + (a + 4 * :accounts) * :tick + interval '20 minutes'
       FROM generate_series(0, :accounts - 1) AS a""",
    """INSERT INTO verification_requests (id, account_id, reason, deadline, place_hold, status, requested_by,
                                          requested_at, closed_at)
       SELECT md5('vr' || a)::uuid::text, 'acct-' || lpad(a::text, 7, '0'),
              (ARRAY['new_account','risk_signal','profile_change','manual'])[1 + a % 4],
              :start + a * :tick + interval '14 days', true,
              CASE WHEN a % 20 < 17 THEN 'passed' WHEN a % 20 < 19 THEN 'open' ELSE 'failed' END, 'api',
              :start + a * :tick - interval '1 day',
              CASE WHEN a % 20 < 17 OR a % 20 = 19 THEN :start + (a + 4 * :accounts) * :tick + interval '20 minutes' END
       FROM generate_series(0, :accounts - 1) AS a""",
    # The history: session i (0-based) is attempt i / A + 1 of account i % A, created i ticks after the start.
    """INSERT INTO call_sessions (id, account_id, verification_request_id, status, attempt, meet_space, meet_uri,
                                  meet_code, meet_host, meet_status, meet_ready_at, claimed_by_id, claimed_at,
                                  outcome, created_at, updated_at, started_at, ended_at, freelancer_joined_at,
                                  freelancer_left_at, freelancer_connected_seconds, reviewer_joined_at,
                                  reviewer_left_at, reviewer_connected_seconds, attendance_synced_at,
                                  reminders_sent, system_check)
       SELECT md5('cs' || i)::uuid::text, 'acct-' || lpad((i % :accounts)::text, 7, '0'),
              md5('vr' || (i % :accounts))::uuid::text, h.status, i / :accounts + 1,
              'spaces/' || left(md5('sp' || i), 12), 'https://meet.google.com/' || left(md5('sp' || i), 10),
              left(md5('sp' || i), 10), 'host-' || (1 + i % 2) || '@sandbox.example', 'ready', t.at,
              h.claimer, CASE WHEN h.claimer IS NOT NULL THEN t.at + interval '1 minute' END,
              h.outcome, t.at, t.at + interval '20 minutes',
              CASE WHEN h.claimer IS NOT NULL THEN t.at + interval '2 minutes' END,
              t.at + interval '18 minutes',
              CASE WHEN h.claimer IS NOT NULL THEN t.at + interval '2 minutes' END,
              CASE WHEN h.claimer IS NOT NULL THEN t.at + interval '17 minutes' END,
              CASE WHEN h.claimer IS NOT NULL THEN 900 ELSE 0 END,
              CASE WHEN h.claimer IS NOT NULL THEN t.at + interval '2 minutes' END,
              CASE WHEN h.claimer IS NOT NULL THEN t.at + interval '17 minutes' END,
              CASE WHEN h.claimer IS NOT NULL THEN 900 ELSE 0 END, t.at + interval '30 minutes', 0,
              CAST(:checks AS json) -> (i % 4)
       FROM generate_series(0, :n - 1) AS i
       CROSS JOIN LATERAL (SELECT :start + i * :tick AS at) AS t
       CROSS JOIN LATERAL (SELECT (i::bigint * 7919) % 100 AS roll) AS r
       CROSS JOIN LATERAL (SELECT
              CASE WHEN r.roll < 80 THEN 'completed' WHEN r.roll < 92 THEN 'expired' ELSE 'canceled' END AS status,
              CASE WHEN r.roll < 80 THEN 1 + (i * 31) % :reviewers END AS claimer,
              CASE WHEN r.roll >= 80 THEN NULL WHEN i % 20 < 14 THEN 'passed' WHEN i % 20 < 16 THEN 'failed'
                   WHEN i % 20 < 19 THEN 'inconclusive' ELSE 'no_show' END AS outcome) AS h""",
    """INSERT INTO outcomes (id, call_session_id, account_id, result, decided_by_id, decided_at, notes, final,
                             second_reviewer_id, second_decision, second_decided_at, reason_codes, checklist)
       SELECT md5('oc' || c.id)::uuid::text, c.id, c.account_id, c.outcome, c.claimed_by_id, c.ended_at,
              CASE WHEN c.ended_at > :now - interval '90 days' THEN 'Matched the profile photo.' END, true,
              CASE WHEN c.outcome = 'failed' THEN :lead END, CASE WHEN c.outcome = 'failed' THEN 'confirmed' END,
              CASE WHEN c.outcome = 'failed' THEN c.ended_at + interval '1 hour' END,
              CASE WHEN c.outcome = 'failed' THEN '["document_mismatch"]' ELSE '[]' END::json,
              '{"Face matches the profile photo": true, "Name matches": true}'::json
       FROM call_sessions c WHERE c.outcome IS NOT NULL""",
    # Holds: the pending hold of each request (lifted on a pass); a failed hold; a manual hold on every tenth.
    """INSERT INTO holds (id, account_id, kind, blocks, reason, placed_at, placed_by, verification_request_id,
                          lifted_at, lifted_by, lift_reason)
       SELECT md5('hp' || a)::uuid::text, 'acct-' || lpad(a::text, 7, '0'), 'verification_pending',
              '["submit_proposals", "change_profile_photo"]'::json, 'verification requested (new_account)',
              :start + a * :tick - interval '1 day', 'api', md5('vr' || a)::uuid::text,
              CASE WHEN a % 20 < 17 OR a % 20 = 19
                   THEN :start + (a + 4 * :accounts) * :tick + interval '20 minutes' END,
              CASE WHEN a % 20 < 17 OR a % 20 = 19 THEN 'system' END,
              CASE WHEN a % 20 < 17 THEN 'verification passed' WHEN a % 20 = 19 THEN 'verification failed' END
       FROM generate_series(0, :accounts - 1) AS a
       UNION ALL
       SELECT md5('hf' || a)::uuid::text, 'acct-' || lpad(a::text, 7, '0'), 'verification_failed',
              '["withdraw_earnings", "submit_proposals", "accept_direct_hires", "appear_in_search"]'::json,
              'verification failed', :start + (a + 4 * :accounts) * :tick + interval '20 minutes', 'reviewer:' || :lead,
              md5('vr' || a)::uuid::text, NULL, NULL, NULL
       FROM generate_series(0, :accounts - 1) AS a WHERE a % 20 = 19
       UNION ALL
       SELECT md5('hm' || a)::uuid::text, 'acct-' || lpad(a::text, 7, '0'), 'manual', '["appear_in_search"]'::json,
              'chargeback under review', :start + (a + 2 * :accounts) * :tick, 'reviewer:' || :lead, NULL,
              CASE WHEN a % 20 = 0 THEN :start + (a + 3 * :accounts) * :tick END,
              CASE WHEN a % 20 = 0 THEN 'reviewer:' || :lead END,
              CASE WHEN a % 20 = 0 THEN 'chargeback resolved' END
       FROM generate_series(0, :accounts - 1) AS a WHERE a % 10 = 0""",
    # Audit entries, in time order (the chain's hashes are made up; triggers are off for the load).
    """INSERT INTO audit_entries (seq, occurred_at, actor, action, account_id, subject_type, subject_id, details,
                                  prev_hash, hash)
       SELECT row_number() OVER (ORDER BY e.at, e.action, e.subject_id), e.at, e.actor, e.action, e.account_id,
              e.subject_type, e.subject_id, e.details::json, md5(e.subject_id || e.action) || md5(e.action),
              md5(e.action || e.subject_id) || md5(e.subject_id)
       FROM (
         SELECT created_at AS at, 'api' AS actor, 'account.upserted' AS action, id AS account_id,
                'account' AS subject_type, id AS subject_id, '{"fields": ["name", "email", "country"]}' AS details
         FROM accounts
         UNION ALL
         SELECT claimed_at, 'reviewer:' || claimed_by_id, 'session.claimed', account_id, 'call_session', id, '{}'
         FROM call_sessions WHERE claimed_at IS NOT NULL
         UNION ALL
         SELECT decided_at, 'reviewer:' || decided_by_id, 'outcome.recorded', account_id, 'outcome', id,
                '{"result": "' || result || '"}'
         FROM outcomes
         UNION ALL
         SELECT ended_at, 'system', 'session.expired', account_id, 'call_session', id, '{}'
         FROM call_sessions WHERE status = 'expired'
         UNION ALL
         SELECT placed_at, placed_by, 'hold.placed', account_id, 'hold', id, '{"kind": "' || kind || '"}' FROM holds
         UNION ALL
         SELECT lifted_at, lifted_by, 'hold.lifted', account_id, 'hold', id, '{"kind": "' || kind || '"}'
         FROM holds WHERE lifted_at IS NOT NULL
       ) AS e""",
    # Webhook events, all delivered: a result per decided session, and the hold changes.
    """INSERT INTO outbox_events (event_id, account_id, seq, type, data, created_at, status, attempts,
                                  next_attempt_at, delivered_at, last_attempt_at, last_status_code)
       SELECT 'evt_' || md5(e.type || e.subject), e.account_id,
              row_number() OVER (PARTITION BY e.account_id ORDER BY e.at, e.type, e.subject), e.type,
              json_build_object('account_id', e.account_id), e.at, 'delivered', 1, e.at,
              e.at + interval '1 second', e.at + interval '1 second', 204
       FROM (
         SELECT decided_at AS at, account_id, id AS subject,
                CASE result WHEN 'passed' THEN 'verification.passed' WHEN 'failed' THEN 'verification.failed'
                            ELSE 'verification.inconclusive' END AS type
         FROM outcomes
         UNION ALL
         SELECT placed_at, account_id, id, 'account.hold.placed' FROM holds
         UNION ALL
         SELECT lifted_at, account_id, id, 'account.hold.lifted' FROM holds WHERE lifted_at IS NOT NULL
       ) AS e""",
    """UPDATE accounts AS a SET last_event_seq = s.last_seq, restrictions_version = s.holds
       FROM (SELECT account_id, max(seq) AS last_seq,
                    count(*) FILTER (WHERE type LIKE 'account.hold.%') AS holds
             FROM outbox_events GROUP BY account_id) AS s
       WHERE s.account_id = a.id""",
    """UPDATE audit_head SET last_seq = (SELECT max(seq) FROM audit_entries),
                             last_hash = (SELECT hash FROM audit_entries ORDER BY seq DESC LIMIT 1)""",
]

LIVE_SQL = [
    # Today's work, the same at every size: waiting, due bookings, in progress, future bookings.
    """INSERT INTO call_sessions (id, account_id, status, attempt, scheduled_for, meet_space, meet_uri, meet_code,
                                  meet_host, meet_status, meet_ready_at, claimed_by_id, claimed_at, created_at,
                                  updated_at, started_at, system_check)
       SELECT md5('live' || k)::uuid::text, 'acct-' || lpad((k % :accounts)::text, 7, '0'), l.status, 6,
              l.scheduled_for, 'spaces/live' || k, 'https://meet.google.com/live-' || k, 'live-' || k,
              'host-1@sandbox.example', CASE WHEN k % 13 = 5 THEN 'none' ELSE 'ready' END,
              CASE WHEN k % 13 = 5 THEN NULL ELSE l.created END, l.claimer,
              CASE WHEN l.claimer IS NOT NULL THEN :now - interval '3 minutes' END, l.created, l.created,
              CASE WHEN l.status = 'in_progress' THEN :now - interval '3 minutes' END,
              CAST(:checks AS json) -> 0
       FROM generate_series(1, 74) AS k
       CROSS JOIN LATERAL (SELECT
              CASE WHEN k <= 40 THEN 'waiting' WHEN k <= 45 THEN 'scheduled' WHEN k <= 54 THEN 'in_progress'
                   ELSE 'scheduled' END AS status,
              CASE WHEN k BETWEEN 41 AND 45 THEN :now + (k - 43) * interval '3 minutes'
                   WHEN k > 54 THEN :now + (k - 54) * interval '7 hours' END AS scheduled_for,
              CASE WHEN k <= 40 THEN :now - k * interval '20 seconds' ELSE :now - interval '2 days' END AS created,
              CASE WHEN k BETWEEN 46 AND 49 THEN 1 WHEN k BETWEEN 50 AND 52 THEN 2 + k % 3 END AS claimer) AS l""",
]


@dataclass(frozen=True)
class Size:
    sessions: int
    url: str

    @property
    def accounts(self) -> int:
        return self.sessions // 5


def size_url(base: str, sessions: int) -> str:
    url = sa.make_url(base)
    name = SIZE_NAMES.get(sessions, str(sessions))
    return url.set(database=f"{url.database}_{name}").render_as_string(hide_password=False)


def _marker(sessions: int) -> str:
    return f"{GENERATOR}; {sessions} sessions; complete"


def ensure_data(size: Size) -> sa.Engine:
    """The size's database, migrated and filled (generated now unless a complete copy is there)."""
    engine = prepared_engine(size.url)
    with engine.connect() as connection:
        marker = connection.exec_driver_sql(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = current_database()"
        ).scalar_one()
    if marker == _marker(size.sessions):
        return engine
    engine.dispose()
    _recreate(size.url)
    engine = prepared_engine(size.url)
    started = time.perf_counter()
    print(f"generating {size.sessions:,} sessions in {engine.url.database} ...", end=" ", flush=True)
    params = {"n": size.sessions, "accounts": size.accounts, "reviewers": REVIEWERS, "lead": LEAD_ID,
              "checks": json.dumps(SYSTEM_CHECKS),
              "now": NOW, "tick": dt.timedelta(days=1) / PER_DAY,
              "start": NOW - dt.timedelta(hours=1) - size.sessions * (dt.timedelta(days=1) / PER_DAY)}
    with engine.begin() as connection:
        connection.exec_driver_sql("SET LOCAL session_replication_role = replica")  # audit triggers off
        for statement in HISTORY_SQL + LIVE_SQL:
            connection.execute(sa.text(statement), params)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM ANALYZE")
        connection.exec_driver_sql(f"COMMENT ON DATABASE \"{engine.url.database}\" IS '{_marker(size.sessions)}'")
    print(f"{time.perf_counter() - started:.0f} s")
    return engine


def _recreate(url: str) -> None:
    parsed = sa.make_url(url)
    admin = make_engine(parsed.set(database="postgres").render_as_string(hide_password=False),
                        isolation_level="AUTOCOMMIT", pool_size=1)
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')
        connection.exec_driver_sql(f'CREATE DATABASE "{parsed.database}"')
    admin.dispose()


# ---------------------------------------------------------------- timing

@dataclass
class PageTiming:
    label: str
    millis: list[float]
    statements: list[int]

    @property
    def p50(self) -> float:
        return percentile(self.millis, 50)

    @property
    def p95(self) -> float:
        return percentile(self.millis, 95)


def signed_in_client(app: Any, registry: Registry, reviewer_id: int) -> FlaskClient:
    client = app.test_client()
    with unit_of_work(registry.sessions) as session:
        token = staff_sessions.open_session(session, reviewer_id, stage=Stage.ACTIVE, ip="127.0.0.1",
                                            now=registry.now())
    with app.test_request_context():
        client.set_cookie(cookie_name(), token)
    return client


def time_pages(size: Size, requests: int, warmup: int, seed: int) -> list[PageTiming]:
    with tempfile.TemporaryDirectory(prefix="bench-pages-") as instance:
        app = create_app(make_settings(size.url, Path(instance)))
        registry: Registry = app.extensions[KEY]
        registry.clock = lambda: NOW
        counter = [0]

        @sa.event.listens_for(registry.engine, "before_cursor_execute")
        def _count(*_args: Any) -> None:
            counter[0] += 1

        reviewer = signed_in_client(app, registry, 1)
        lead = signed_in_client(app, registry, LEAD_ID)
        rng = random.Random(seed)
        accounts = [f"acct-{rng.randrange(size.accounts):07d}" for _ in range(requests + warmup)]
        pages: list[tuple[str, Callable[[int], Any]]] = [
            ("queue", lambda _n: reviewer.get("/review")),
            ("queue poll (JSON)", lambda _n: reviewer.get("/review", headers={"Accept": "application/json"})),
            ("my sessions", lambda _n: reviewer.get("/review/mine")),
            ("account (lead)", lambda n: lead.get(f"/review/lead/accounts/{accounts[n]}")),
            ("account again (lead)", lambda n: lead.get(f"/review/lead/accounts/{accounts[n]}")),
            ("account list (lead)", lambda _n: lead.get("/review/lead/accounts")),
            ("account search (lead)", lambda n: lead.get(f"/review/lead/accounts?q={accounts[n][:-2]}")),
        ]
        timings = []
        for label, fetch in pages:
            timing = PageTiming(label, [], [])
            gc.collect()  # not per request: a server's collector runs as it does here
            for n in range(warmup + requests):
                counter[0] = 0
                start = time.perf_counter()
                response = fetch(n)
                elapsed = (time.perf_counter() - start) * 1000
                if response.status_code != 200:
                    raise SystemExit(f"{label}: HTTP {response.status_code} at {size.sessions:,} sessions")
                if n >= warmup:
                    timing.millis.append(elapsed)
                    timing.statements.append(counter[0])
            timings.append(timing)
        registry.engine.dispose()
        return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="historical sessions per database")
    parser.add_argument("--requests", type=int, default=200, help="timed requests per page and size (default 200)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed requests first (default 20)")
    parser.add_argument("--seed", type=int, help="which accounts the account pages show (default: random)")
    parser.add_argument("--database-url", help="base URL; default: $VERIFY_BENCH_DATABASE_URL or bench_pages")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args, _unknown = parser.parse_known_args(argv)  # make bench passes one BENCH_ARGS to every script
    base = database_url(args.database_url, PAGES_DATABASE_URL)
    if sa.make_url(base).get_backend_name() != "postgresql":
        raise SystemExit("bench_pages generates its data with PostgreSQL SQL: give a postgresql URL")
    sizes = [Size(int(s), size_url(base, int(s))) for s in args.sizes.split(",")]
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(10**9)

    results: dict[int, list[PageTiming]] = {}
    for size in sizes:
        ensure_data(size).dispose()
        results[size.sessions] = time_pages(size, args.requests, args.warmup, seed)
    machine = describe_machine(sizes[-1].url, ("Flask", "SQLAlchemy", "psycopg", "Jinja2"))  # load: as it ended

    print("bench_pages: dashboard page latency against the size of the history")
    for line in machine:
        print(line)
    print(f"in-process Flask test client (no HTTP server), signed-in staff; {args.requests} timed requests per page "
          f"and size after {args.warmup} untimed; account pages rotate over random accounts (--seed {seed})")
    print()
    print(f"{'':22}{'sessions':>11}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}{'SQL/page':>10}")
    for sessions, timings in results.items():
        for timing in timings:
            counts = sorted(set(timing.statements))
            shown = str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
            print(f"{timing.label:22}{sessions:>11,}{timing.p50:>9.1f}{timing.p95:>9.1f}{max(timing.millis):>9.1f}"
                  f"{shown:>10}")
        print()
    smallest, largest = min(results), max(results)
    ok = True
    for first, last in zip(results[smallest], results[largest]):
        growth = last.p95 / first.p95
        met = last.p95 < P95_TARGET_MS and (growth < GROWTH_TARGET or smallest == largest)
        ok &= met
        print(f"{first.label:22} p95 {last.p95:6.1f} ms at {largest:,}; {largest:,}/{smallest:,} growth "
              f"x{growth:.2f} ({'met' if met else 'MISSED'}: p95 < {P95_TARGET_MS:.0f} ms, growth < {GROWTH_TARGET})")
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
