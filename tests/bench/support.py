"""What the PostgreSQL benchmarks share: the database, its seed, real server processes, the machine line.

The database is ``VERIFY_BENCH_DATABASE_URL`` (default
``postgresql+psycopg://postgres@127.0.0.1:5432/bench``). It is created when
missing, migrated with ``verify-service db upgrade`` (the operator's command),
and seeded once: a later run finds the accounts and reuses them.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import math
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import psycopg
import requests
import sqlalchemy as sa
from psycopg import sql
from sqlalchemy.engine import make_url

from verify_service import migrate
from verify_service.db import make_engine

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench"
API_KEY = "bench-api-key-" + "k" * 32
SEED_PREFIX = "bench-"  # seeded accounts: bench-0000001 … (other benchmarks use other prefixes)

# Secrets and addresses a service process needs to start; nothing is ever sent to them.
SERVICE_SECRETS = {
    "VERIFY_SECRET_KEY": "bench-secret-" + "s" * 40,
    "VERIFY_API_KEYS": API_KEY,
    "VERIFY_INBOUND_WEBHOOK_SECRETS": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "VERIFY_ACCOUNT_SERVICE_WEBHOOK_URL": "http://127.0.0.1:9/webhooks",  # no scheduler runs: never delivered
    "VERIFY_ACCOUNT_SERVICE_WEBHOOK_SECRET": "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
    "VERIFY_IDENTITY_PEPPER": "bench-pepper-" + "p" * 40,
    "VERIFY_DATA_KEYS": "HQfKzPv7wS2m4fJ1O0a8cXq9pE3rTbYuNdLkGhViW5U=",
    "VERIFY_AUDIT_CHECKPOINT_KEY": "bench-checkpoint-" + "c" * 40,
}


# The relay and pages benchmarks keep their data apart from the restrictions seed.
PAGES_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_pages"


def database_url(given: str | None = None, default: str = DEFAULT_DATABASE_URL) -> str:
    """``given`` (a --database-url flag), else ``VERIFY_BENCH_DATABASE_URL``, else ``default``."""
    return given or os.environ.get("VERIFY_BENCH_DATABASE_URL") or default


def _libpq(url: str, database: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


def prepare_database(url: str) -> None:
    """Create the database when missing, then migrate it to the newest revision.

    Raises:
        SystemExit: PostgreSQL is unreachable or the migration failed (the message says which).
    """
    name = make_url(url).database
    try:
        with psycopg.connect(_libpq(url, "postgres"), autocommit=True, connect_timeout=5) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.OperationalError as exc:
        raise SystemExit(f"PostgreSQL is not reachable at {make_url(url).render_as_string()}: {exc}\n"
                         "set VERIFY_BENCH_DATABASE_URL to a PostgreSQL the benchmark may use") from exc
    env = {**clean_environ(), "VERIFY_ENV": "testing", "VERIFY_DATABASE_URL": url}
    done = subprocess.run([str(BIN / "verify-service"), "db", "upgrade"], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"verify-service db upgrade failed:\n{done.stdout}{done.stderr}")


def clean_environ() -> dict[str, str]:
    """This process's environment without VERIFY_* and metrics settings (the benchmark sets its own)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("VERIFY_", "PROMETHEUS_"))}


# Accounts in the proportions a marketplace sees: most never asked to verify; the rest verified,
# waiting (most with the pending hold), failed, a few failed with a lead's manual hold on top.
# b is the account's bucket (0-99), spread over the ids so neighbours differ.
_SEED_SQL = """
WITH s AS (SELECT i, mod(i * 7919, 100) AS b FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS i)
INSERT INTO accounts (id, display_name, email, country, timezone, locale, verification_status,
                      verification_changed_at, restrictions_version, last_event_seq, created_at, updated_at)
SELECT %(prefix)s || lpad(i::text, 7, '0'), 'Freelancer ' || i, 'freelancer' || i || '@bench.example',
       (ARRAY['US', 'IN', 'PH', 'UA', 'PK', 'NG', 'GB', 'DE', 'BR', 'EG'])[1 + i %% 10], 'UTC', 'en-US',
       CASE WHEN b < 70 THEN 'not_required' WHEN b < 80 THEN 'verified' WHEN b < 94 THEN 'required'
            ELSE 'failed' END,
       CASE WHEN b >= 70 THEN now() - (i %% 90) * interval '1 day' END,
       CASE WHEN b < 70 THEN 0 WHEN b < 80 THEN 2 WHEN b < 94 THEN 1 WHEN b < 98 THEN 2 ELSE 3 END,
       CASE WHEN b < 70 THEN 0 WHEN b < 80 THEN 3 WHEN b < 94 THEN 2 WHEN b < 98 THEN 4 ELSE 5 END,
       now() - interval '400 days' + i * interval '1 minute', now() - (i %% 90) * interval '1 day'
FROM s
ON CONFLICT DO NOTHING;

WITH s AS (SELECT i, mod(i * 7919, 100) AS b FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS i)
INSERT INTO verification_requests (id, account_id, reason, deadline, place_hold, status, requested_by,
                                   requested_at, closed_at)
SELECT md5('request' || i)::uuid::text, %(prefix)s || lpad(i::text, 7, '0'),
       (ARRAY['new_account', 'risk_signal', 'profile_change', 'manual'])[1 + i %% 4],
       CASE WHEN b BETWEEN 80 AND 93 THEN now() + interval '7 days' END, b < 90 OR b >= 94,
       CASE WHEN b < 80 THEN 'passed' WHEN b < 94 THEN 'open' ELSE 'failed' END, 'account-service',
       now() - (i %% 90 + 1) * interval '1 day',
       CASE WHEN b < 80 OR b >= 94 THEN now() - (i %% 90) * interval '1 day' END
FROM s WHERE b >= 70
ON CONFLICT DO NOTHING;

WITH s AS (SELECT i, mod(i * 7919, 100) AS b FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS i)
INSERT INTO holds (id, account_id, kind, blocks, reason, placed_at, placed_by, verification_request_id,
                   lifted_at, lifted_by, lift_reason)
SELECT md5('pending' || i)::uuid::text, %(prefix)s || lpad(i::text, 7, '0'), 'verification_pending',
       '["submit_proposals", "change_profile_photo"]'::json, 'Identity verification requested',
       now() - (i %% 90 + 1) * interval '1 day', 'account-service', md5('request' || i)::uuid::text,
       CASE WHEN b < 80 OR b >= 94 THEN now() - (i %% 90) * interval '1 day' END,
       CASE WHEN b < 80 OR b >= 94 THEN 'system' END,
       CASE WHEN b < 80 THEN 'verification passed' WHEN b >= 94 THEN 'verification failed' END
FROM s WHERE b BETWEEN 70 AND 89 OR b >= 94
UNION ALL
SELECT md5('failed' || i)::uuid::text, %(prefix)s || lpad(i::text, 7, '0'), 'verification_failed',
       '["submit_proposals", "withdraw_earnings", "accept_direct_hires", "appear_in_search"]'::json,
       'Identity verification failed', now() - (i %% 90) * interval '1 day', 'system',
       md5('request' || i)::uuid::text, NULL, NULL, NULL
FROM s WHERE b >= 94
UNION ALL
SELECT md5('manual' || i)::uuid::text, %(prefix)s || lpad(i::text, 7, '0'), 'manual', '["withdraw_earnings"]'::json,
       'Chargeback under review', now() - (i %% 90) * interval '1 day', 'lead@bench.example', NULL, NULL, NULL, NULL
FROM s WHERE b >= 98
ON CONFLICT DO NOTHING;
"""


def seed_accounts(url: str, count: int) -> float:
    """Make sure accounts bench-0000001 … bench-<count> exist; returns the seconds spent inserting (0: reused)."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            present = conn.scalar(sa.text("SELECT count(*) FROM accounts WHERE id LIKE :p"),
                                  {"p": SEED_PREFIX + "%"}) or 0
            if present >= count:
                return 0.0
            started = time.perf_counter()
            raw = conn.connection.dbapi_connection
            assert raw is not None
            with raw.cursor() as cursor:
                for statement in _SEED_SQL.split(";\n\n"):
                    cursor.execute(statement, {"first": 1, "last": count, "prefix": SEED_PREFIX})
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                "ANALYZE accounts, holds, verification_requests")
        return time.perf_counter() - started
    finally:
        engine.dispose()


def seeded_etags(url: str, count: int) -> list[tuple[str, str]]:
    """``(account id, ETag)`` of the seeded accounts 1 … count, as the service computes the ETag now."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT id, restrictions_version FROM accounts WHERE id LIKE :p AND id <= :last ORDER BY id"),
                {"p": SEED_PREFIX + "%", "last": f"{SEED_PREFIX}{count:07d}"}).all()
    finally:
        engine.dispose()
    return [(account_id, f'"{version}"') for account_id, version in rows]


def held_share(url: str, count: int) -> float:
    """The share of the seeded accounts 1 … count under at least one hold."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            held = conn.scalar(sa.text(
                "SELECT count(DISTINCT account_id) FROM holds WHERE lifted_at IS NULL AND account_id LIKE :p "
                "AND account_id <= :last"), {"p": SEED_PREFIX + "%", "last": f"{SEED_PREFIX}{count:07d}"})
    finally:
        engine.dispose()
    return (held or 0) / count


# ---------------------------------------------------------------- processes

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A server process of this benchmark (its own process group), its output in a log file."""

    def __init__(self, name: str, command: list[str], env: Mapping[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(command, cwd=ROOT, env=dict(env), stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)

    def wait_ready(self, url: str, seconds: float = 60) -> None:
        """Raises: SystemExit (with the log's end) when the process dies or does not answer in time."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                if requests.get(url, timeout=2).status_code < 500:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise SystemExit(f"{self.name} did not come up at {url}; the end of its log:\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


@contextlib.contextmanager
def servers() -> Iterator[tuple[list[Server], Path]]:
    """A list to start servers into and a scratch directory; every server is stopped at the end."""
    started: list[Server] = []
    with tempfile.TemporaryDirectory(prefix="verify-bench-") as scratch:
        try:
            yield started, Path(scratch)
        finally:
            for server in reversed(started):
                server.stop()


def gunicorn_command(config: str, app: str) -> list[str]:
    return [str(BIN / "gunicorn"), "-c", config, app]


# ---------------------------------------------------------------- reporting

def machine_line(load_before: tuple[float, float, float] | None = None) -> str:
    """The machine, with its load average: now, or the one taken before the run (``os.getloadavg()``)."""
    model = platform.processor() or "cpu unknown"
    with contextlib.suppress(OSError):  # Linux names the CPU here; platform.processor() is often empty
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = ", ".join(f"{value:.2f}" for value in (load_before or os.getloadavg()))
    return (f"machine: {platform.platform()}; {model}; os.cpu_count()={os.cpu_count()}; "
            f"load average {'before the run ' if load_before else ''}{load}; python {platform.python_version()}")


def postgres_line(url: str) -> str:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            version = conn.scalar(sa.text("SHOW server_version"))
    finally:
        engine.dispose()
    return f"database: PostgreSQL {version} at {make_url(url).render_as_string()}"


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile of ``values`` (not empty)."""
    ordered = sorted(values)
    rank = min(len(ordered), max(1, math.ceil(pct / 100 * len(ordered))))
    return ordered[rank - 1]


def prepared_engine(url: str) -> sa.Engine:
    """An engine on ``url``, the database created when missing and migrated (``verify-service db upgrade``)."""
    if sa.make_url(url).get_backend_name() == "postgresql":
        prepare_database(url)
        return make_engine(url)
    engine = make_engine(url)  # SQLite (the relay bench allows it): migrated in-process
    migrate.upgrade(engine)
    return engine


def describe_machine(url: str, packages: tuple[str, ...]) -> list[str]:
    """Lines naming the machine (with its load), the database server and the packages that matter."""
    versions = ", ".join(f"{name} {importlib.metadata.version(name)}" for name in packages)
    database = postgres_line(url) if sa.make_url(url).get_backend_name() == "postgresql" else f"database: {url}"
    return [machine_line(), f"packages: {versions}", database]

