"""Restrictions in bulk: stream every blocked account through ``GET /api/v1/restrictions`` under gunicorn on PostgreSQL.

    .venv/bin/python tests/bench/bench_bulk_restrictions.py [--size 1000000] [--limit 1000] [--check]

PostgreSQL: ``VERIFY_BENCH_DATABASE_URL`` (default
``postgresql+psycopg://postgres@127.0.0.1:5432/bench_bulk``, its own database:
the other seeds would change the share of blocked accounts). It is created,
migrated and seeded with set-based SQL (``generate_series``): --size accounts,
10 % of them blocked by a mix of hold kinds and capabilities (the pending hold,
the failed hold, the failed hold with a lead's manual hold on top, manual holds
alone of one or two capabilities), and another 10 % with a lifted hold only
(history the scan must pass over). A later run reuses the seed when it has the size.

The figure is through HTTP: one client (``requests``, one kept-alive
connection) follows ``next_cursor`` from the start to the end, as a consumer
rebuilding its set would, against the production app under gunicorn. Rows:
every blocked account, and the accounts blocked from ``appear_in_search`` (a
search index's hidden set). Each row also shows the CPU time the server spent
per page, which moves less than the rate when the machine is shared. The plan
of a page at this size is printed: an index scan in account order, never a
sort of every blocked account.

--check: exit 1 when the target is missed, the stream is not every blocked
account exactly once in order, a sample of entries differs from the accounts'
own documents, or a page's plan sorts. Target: >= 50,000 accounts/s for the
whole stream. Not a test: pytest does not collect tests/bench.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from tests.bench import support  # noqa: E402
from tests.bench.bench_restrictions import cpu_seconds, service_env  # noqa: E402
from tests.support.plans import scans_in_order  # noqa: E402
from verify_service.accounts.bulk import _page_statement  # noqa: E402
from verify_service.accounts.domain import Capability  # noqa: E402

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_bulk"
PREFIX = "bulk-"
TARGET = 50_000  # accounts/s, the whole stream
SAMPLE = 300  # entries compared with the accounts' own documents under --check

# b, the account's bucket (0-99), is spread over the ids so that neighbours differ. Blocked (10 %):
# b 0-3 the pending hold, 4-6 the failed hold, 7 failed + manual (withdraw_earnings), 8 manual
# (appear_in_search), 9 manual (accept_direct_hires, change_profile_photo). b 10-19: a lifted pending hold.
_SEED_SQL = """
WITH s AS (SELECT i, mod(i * 7919, 100) AS b FROM generate_series(1::bigint, %(size)s::bigint) AS i)
INSERT INTO accounts (id, display_name, email, country, verification_status, verification_changed_at,
                      restrictions_version, last_event_seq, created_at, updated_at)
SELECT %(prefix)s || lpad(i::text, 7, '0'), 'Freelancer ' || i, 'freelancer' || i || '@bench.example', 'DE',
       CASE WHEN b < 4 THEN 'required' WHEN b < 8 THEN 'failed' WHEN b < 20 AND b >= 10 THEN 'verified'
            ELSE 'not_required' END,
       CASE WHEN b < 8 OR b BETWEEN 10 AND 19 THEN now() - (i %% 90) * interval '1 day' END,
       CASE WHEN b < 4 THEN 1 WHEN b < 7 THEN 2 WHEN b = 7 THEN 3 WHEN b < 10 THEN 1 WHEN b < 20 THEN 2 ELSE 0 END,
       0, now() - interval '400 days', now() - (i %% 90) * interval '1 day'
FROM s
ON CONFLICT DO NOTHING;

WITH s AS (SELECT i, mod(i * 7919, 100) AS b FROM generate_series(1::bigint, %(size)s::bigint) AS i)
INSERT INTO holds (id, account_id, kind, blocks, reason, placed_at, placed_by, lifted_at, lifted_by, lift_reason)
SELECT md5('pending' || i)::uuid::text, %(prefix)s || lpad(i::text, 7, '0'), 'verification_pending',
       '["submit_proposals", "change_profile_photo"]'::json, 'Identity verification requested',
       now() - interval '30 days', 'account-service',
       CASE WHEN b >= 10 THEN now() - interval '20 days' END, CASE WHEN b >= 10 THEN 'system' END,
       CASE WHEN b >= 10 THEN 'verification passed' END
FROM s WHERE b < 4 OR b BETWEEN 10 AND 19
UNION ALL
SELECT md5('failed' || i)::uuid::text, %(prefix)s || lpad(i::text, 7, '0'), 'verification_failed',
       '["submit_proposals", "withdraw_earnings", "accept_direct_hires", "appear_in_search"]'::json,
       'Identity verification failed', now() - interval '10 days', 'system', NULL, NULL, NULL
FROM s WHERE b BETWEEN 4 AND 7
UNION ALL
SELECT md5('manual' || i)::uuid::text, %(prefix)s || lpad(i::text, 7, '0'), 'manual',
       (CASE b WHEN 7 THEN '["withdraw_earnings"]' WHEN 8 THEN '["appear_in_search"]'
               ELSE '["accept_direct_hires", "change_profile_photo"]' END)::json,
       'Chargeback under review', now() - interval '5 days', 'lead@bench.example', NULL, NULL, NULL
FROM s WHERE b BETWEEN 7 AND 9
ON CONFLICT DO NOTHING
"""


def seed(url: str, size: int) -> float:
    """Make sure accounts bulk-0000001 … bulk-<size> exist; the seconds spent seeding (0: reused)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            if (conn.scalar(sa.text("SELECT count(*) FROM accounts WHERE id LIKE :p"), {"p": PREFIX + "%"})
                    or 0) == size:
                return 0.0
        started = time.perf_counter()
        with engine.begin() as conn:
            for table, column in (("holds", "account_id"), ("accounts", "id")):  # another size: seed anew
                conn.execute(sa.text(f"DELETE FROM {table} WHERE {column} LIKE :p"), {"p": PREFIX + "%"})
            raw = conn.connection.dbapi_connection
            assert raw is not None
            with raw.cursor() as cursor:
                for statement in _SEED_SQL.split(";\n\n"):
                    cursor.execute(statement, {"size": size, "prefix": PREFIX})
        with engine.connect() as conn:  # settled statistics and visibility map, as autovacuum leaves a live table
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE accounts, holds")
        return time.perf_counter() - started
    finally:
        engine.dispose()


def blocked_ids(url: str, capability: Capability | None) -> list[str]:
    """The ids the stream must return, in the database's order (straight from the holds table)."""
    where = "" if capability is None else f" AND blocks::jsonb ? '{capability.value}'"
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.scalars(sa.text(
                f"SELECT DISTINCT account_id FROM holds WHERE lifted_at IS NULL{where} ORDER BY account_id")))
    finally:
        engine.dispose()


def page_plans(url: str, size: int, limit: int) -> dict[str, str]:
    """EXPLAIN of a page in the middle of the list, without and with the filter."""
    engine = sa.create_engine(url)
    after = f"{PREFIX}{size // 2:07d}"
    try:
        with engine.connect() as conn:
            plans = {}
            for name, blocked in (("all", None), ("appear_in_search", Capability.APPEAR_IN_SEARCH)):
                compiled = _page_statement(blocked, after, limit).compile(
                    dialect=conn.dialect, compile_kwargs={"literal_binds": True})
                plans[name] = "\n".join(conn.exec_driver_sql(f"EXPLAIN {compiled}").scalars())
            return plans
    finally:
        engine.dispose()


@dataclasses.dataclass(frozen=True)
class Stream:
    entries: list[dict[str, Any]]
    pages: int
    seconds: float
    page_ms: list[float]
    server_cpu_seconds: float = 0.0  # the gunicorn processes' CPU time during the stream

    @property
    def cpu_ms(self) -> float:
        """The server's CPU time per page: its own cost, whatever else the shared machine runs meanwhile."""
        return 1000 * self.server_cpu_seconds / self.pages

    @property
    def rate(self) -> float:
        return len(self.entries) / self.seconds


def stream(base: str, limit: int, blocked: Capability | None) -> Stream:
    """Follow next_cursor from the start to the end. Raises: SystemExit on an answer other than 200."""
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {support.API_KEY}"
    params: dict[str, Any] = {"limit": limit}
    if blocked is not None:
        params["blocked"] = blocked.value
    entries: list[dict[str, Any]] = []
    page_ms: list[float] = []
    started = time.perf_counter()
    while True:
        before = time.perf_counter()
        response = http.get(f"{base}/api/v1/restrictions", params=params, timeout=30)
        if response.status_code != 200:
            raise SystemExit(f"unexpected answer: {response.status_code} {response.text[:300]}")
        body = response.json()
        page_ms.append(1000 * (time.perf_counter() - before))
        entries += body["data"]
        if not body["has_more"]:
            return Stream(entries, len(page_ms), time.perf_counter() - started, page_ms)
        params["after"] = body["next_cursor"]


def problems(base: str, result: Stream, expected: list[str]) -> list[str]:
    """What --check finds wrong with a stream: order, completeness, and a sample against the documents."""
    found = []
    ids = [entry["account_id"] for entry in result.entries]
    if ids != expected:
        found.append(f"the stream returned {len(ids):,} ids, {len(set(ids)):,} distinct; expected {len(expected):,}"
                     " in the database's order")
    auth = {"Authorization": f"Bearer {support.API_KEY}"}
    for entry in random.Random(19).sample(result.entries, min(SAMPLE, len(result.entries))):
        document = requests.get(f"{base}/api/v1/accounts/{entry['account_id']}/restrictions", headers=auth,
                                timeout=10).json()
        if (document["version"], document["blocked"]) != (entry["version"], entry["blocked"]):
            found.append(f"{entry} differs from its document ({document['version']}, {document['blocked']})")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1_000_000, help="seeded accounts (default 1000000)")
    parser.add_argument("--limit", type=int, default=1000, help="accounts per page (default 1000, the maximum)")
    parser.add_argument("--check", action="store_true", help="exit 1 when the target or a check is missed")
    args, _unknown = parser.parse_known_args(argv)  # make bench passes one BENCH_ARGS to every script
    load_before = os.getloadavg()
    url = support.database_url(default=DEFAULT_URL)
    support.prepare_database(url)
    seeded = seed(url, args.size)
    plans = page_plans(url, args.size, args.limit)
    sizing = {"VERIFY_WEB_WORKERS": "1", "VERIFY_WEB_THREADS": "1"}  # one client, one request at a time
    results: dict[str, tuple[Stream, list[str]]] = {}
    with support.servers() as (started, scratch):
        port = support.free_port()
        command = support.gunicorn_command("gunicorn.conf.py", "verify_service:create_app()")
        # Production requires a mail server; nothing on this path sends mail.
        env = service_env(url, port, scratch, sizing)
        started.append(support.Server("service", command, env, scratch))
        base = f"http://127.0.0.1:{port}"
        started[0].wait_ready(f"{base}/healthz")
        stream(base, args.limit, None)  # warm-up: the server's first requests, the database's cache
        for name, blocked in (("every blocked account", None), ("blocked from appear_in_search",
                                                                Capability.APPEAR_IN_SEARCH)):
            before = cpu_seconds(started[0].process.pid)
            result = stream(base, args.limit, blocked)
            result = dataclasses.replace(result, server_cpu_seconds=cpu_seconds(started[0].process.pid) - before)
            results[name] = result, problems(base, result, blocked_ids(url, blocked)) if args.check else []
    return report(args, url, seeded, load_before, plans, results)


def report(args: argparse.Namespace, url: str, seeded: float, load_before: tuple[float, float, float],
           plans: dict[str, str], results: dict[str, tuple[Stream, list[str]]]) -> int:
    """Print the figures; the exit status (1 under --check when anything was missed)."""
    print("bench_bulk_restrictions: GET /api/v1/restrictions followed to the end, over HTTP (gunicorn, 1 worker "
          "x 1 thread, production settings; one requests client)")
    print(support.machine_line(load_before))
    print(support.postgres_line(url) + f"; {args.size:,} accounts "
          f"({'seeded in %.1f s' % seeded if seeded else 'seed reused'}); pages of {args.limit}")
    indexes = {"all": "ix_holds_account_active", "appear_in_search": "ix_holds_active_appear_in_search"}
    sorts = [name for name, plan in plans.items() if not scans_in_order(plan, indexes[name])]
    for name, plan in plans.items():
        print(f"plan of a page ({name}):\n    " + plan.replace("\n", "\n    "))
    print()
    print(f"{'':32}{'accounts':>10}{'pages':>7}{'seconds':>9}{'accounts/s':>12}{'page p50 ms':>13}"
          f"{'page p95 ms':>13}{'server CPU ms/page':>20}  x target")
    for name, (result, _) in results.items():
        print(f"{name:32}{len(result.entries):>10,}{result.pages:>7}{result.seconds:>9.2f}{result.rate:>12,.0f}"
              f"{support.percentile(result.page_ms, 50):>13.1f}{support.percentile(result.page_ms, 95):>13.1f}"
              f"{result.cpu_ms:>20.1f}  {result.rate / TARGET:.2f}")
    whole = results["every blocked account"][0]
    met = whole.rate >= TARGET
    print(f"\nevery blocked account: {whole.rate:,.0f} accounts/s = {whole.rate / TARGET:.2f} x the target "
          f"({'met' if met else 'MISSED'}: >= {TARGET:,}/s)")
    found = [f"{name}: {problem}" for name, (_, listed) in results.items() for problem in listed]
    found += [f"the plan of a page ({name}) does not read {indexes[name]} in order (a Sort under the Limit)"
              for name in sorts]
    if args.check:
        print("checks: " + ("every blocked account exactly once, in order; "
                            f"{SAMPLE} entries equal to their documents; no sort" if not found else "FAILED"))
        for problem in found:
            print("  " + problem)
    return 1 if args.check and (found or not met) else 0


if __name__ == "__main__":
    sys.exit(main())
