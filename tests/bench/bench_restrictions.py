"""Restrictions lookup (the marketplace's hot path) under gunicorn on PostgreSQL, next to a minimal anchor app.

    make bench                                  # every tests/bench/bench_*.py (installs wrk when missing)
    .venv/bin/python tests/bench/bench_restrictions.py [--accounts 100000] [--duration 8] [--rounds 5] [--check]

PostgreSQL: ``VERIFY_BENCH_DATABASE_URL`` (default
postgresql+psycopg://postgres@127.0.0.1:5432/bench), created, migrated and
seeded with --accounts accounts when needed (a later run reuses them): 70%
never asked to verify, 10% verified, 14% waiting (most under the pending
hold), 6% failed (a third of them under a lead's manual hold too).

Servers, both on loopback, both from gunicorn with the service's own server
settings (gunicorn.conf.py: VERIFY_WEB_WORKERS, VERIFY_WEB_THREADS, gthread):
  service  ``gunicorn -c gunicorn.conf.py "verify_service:create_app()"`` in
           production mode (JSON logs, the access log, metrics, every check on).
  anchor   tests/bench/anchor_app.py: Flask + SQLAlchemy doing the same
           primary-key lookup and a JSON response, nothing else.

Load: wrk (Debian's package) with --connections connections on --threads
threads, each request for a random seeded account with the API key
(tests/bench/restrictions_wrk.lua). Rows: the service, the service with the
account's ETag in If-None-Match (every answer a 304), the anchor. Every run
checks the status of every response. After a warm-up, --rounds rounds run
every row back to back (in a rotating order); a row shows its medians over the
rounds, and its ratio is the median of its per-round ratios to the anchor (the
machine may be shared: each ratio compares runs that saw the same load). Each
row also shows the CPU time its server's processes spent per request, and that
figure's ratio to the anchor's: the cost of the code itself, which moves less
than the rates when other work comes and goes.

Targets (32 connections, 2 cores): service >= 0.8 x the anchor's requests/s
with p99 < 50 ms; with If-None-Match, above the anchor. wrk, PostgreSQL and
the servers share the machine's cores: the ratio is the figure to compare
between machines, not the absolute rates.
Not a test: pytest does not collect tests/bench (setup.cfg norecursedirs).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psutil
import requests

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from tests.bench import support  # noqa: E402

RATIO_TARGET = 0.8  # of the anchor's requests/s
P99_TARGET_MS = 50.0
CONDITIONAL_RATIO_TARGET = 1.0  # "well above the anchor": at least above it
LUA = Path(__file__).with_name("restrictions_wrk.lua")


@dataclasses.dataclass(frozen=True)
class Run:
    """One wrk run: what it counted, its latency percentiles, the statuses it got."""

    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    statuses: dict[int, int]
    socket_errors: int
    cpu_seconds: float = 0.0  # used by the server's processes (gunicorn's master and workers) during the run

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_ms(self) -> float:
        """The server's CPU time per request: its own cost, whatever else the machine ran meanwhile."""
        return 1000 * self.cpu_seconds / max(self.requests, 1)

    def unexpected(self, status: int) -> int:
        """Responses with another status than ``status``, and socket errors."""
        return sum(n for s, n in self.statuses.items() if s != status) + self.socket_errors


def wrk(url: str, *, data: Path, conditional: bool, seconds: float, connections: int, threads: int) -> Run:
    """One wrk run against ``url``. Raises: SystemExit when wrk fails or prints no result."""
    env = {**os.environ, "BENCH_WRK_DATA": str(data), "BENCH_API_KEY": support.API_KEY,
           "BENCH_CONDITIONAL": "1" if conditional else "0"}
    done = subprocess.run(["wrk", f"--threads={threads}", f"--connections={connections}",
                           f"--duration={max(1, round(seconds))}s", "--timeout=5s", f"--script={LUA}", url],
                          env=env, capture_output=True, text=True, check=False)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCH_RESULT ")), None)
    if done.returncode != 0 or line is None:
        raise SystemExit(f"wrk failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    result = json.loads(line.removeprefix("BENCH_RESULT "))
    return Run(requests=result["requests"], seconds=result["duration_us"] / 1e6,
               p50_ms=result["p50_us"] / 1000, p90_ms=result["p90_us"] / 1000, p99_ms=result["p99_us"] / 1000,
               statuses={int(k): v for k, v in result["statuses"].items()},
               socket_errors=sum(v for k, v in result["errors"].items() if k != "status"))


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` and its children (a gunicorn master and its workers)."""
    total = 0.0
    master = psutil.Process(pid)
    for process in [master, *master.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def measured(pid: int, run: Callable[[], Run]) -> Run:
    """``run()``, with the CPU time the server ``pid`` spent on it."""
    before = cpu_seconds(pid)
    result = run()
    return dataclasses.replace(result, cpu_seconds=cpu_seconds(pid) - before)


def write_wrk_data(path: Path, etags: list[tuple[str, str]]) -> None:
    ids = ",".join(json.dumps(account_id) for account_id, _ in etags)
    tags = ",".join(json.dumps(etag) for _, etag in etags)  # JSON strings are Lua strings here (ASCII)
    path.write_text(f"return {{ids = {{{ids}}}, etags = {{{tags}}}}}\n")


def service_env(url: str, port: int, scratch: Path, sizing: dict[str, str]) -> dict[str, str]:
    """Production settings; the Google backend and the mail server are configured but never reached on this path."""
    return {**support.clean_environ(), **support.SERVICE_SECRETS, **sizing,
            "VERIFY_ENV": "production", "VERIFY_DATABASE_URL": url, "VERIFY_BIND": f"127.0.0.1:{port}",
            "VERIFY_BASE_URL": "https://verify.bench.invalid", "VERIFY_INSTANCE_DIR": str(scratch / "instance"),
            "VERIFY_MEET_BACKEND": "google", "VERIFY_MEET_HOST_USERS": "host@bench.invalid",
            "VERIFY_GOOGLE_SERVICE_ACCOUNT_FILE": str(scratch / "no-service-account.json"),
            "VERIFY_SMTP_URL": "smtp://127.0.0.1:9"}


def check_answers(service: str, anchor: str, etags: list[tuple[str, str]]) -> None:
    """The servers answer what the load expects. Raises: SystemExit naming the first surprise."""
    account_id, etag = max(etags, key=lambda row: int(row[1].strip('"')))  # an account under holds
    auth = {"Authorization": f"Bearer {support.API_KEY}"}
    url = f"{service}/api/v1/accounts/{account_id}/restrictions"
    checks = [
        ("service 200 with holds", requests.get(url, headers=auth, timeout=10),
         lambda r: r.status_code == 200 and r.headers.get("ETag") == etag and r.json()["blocked"]),
        ("service 304 with If-None-Match", requests.get(url, headers={**auth, "If-None-Match": etag}, timeout=10),
         lambda r: r.status_code == 304),
        ("service 401 without the key", requests.get(url, timeout=10), lambda r: r.status_code == 401),
        ("anchor 200", requests.get(f"{anchor}/api/v1/accounts/{account_id}/restrictions", timeout=10),
         lambda r: r.status_code == 200 and r.json()["version"] == int(etag.strip('"'))),
    ]
    for what, response, ok in checks:
        if not ok(response):
            raise SystemExit(f"unexpected answer ({what}): {response.status_code} {response.text[:300]}")


ROWS = {  # name: (label, conditional, the status every answer must have)
    "service": ("service (200)", False, 200),
    "conditional": ("service, If-None-Match (304)", True, 304),
    "anchor": ("anchor: Flask + SQLAlchemy (200)", False, 200),
}


@dataclasses.dataclass(frozen=True)
class Row:
    """One row's runs, summed up: medians over the rounds, and the median of its per-round ratios to the anchor."""

    runs: list[Run]
    ratios: list[float]
    cpu_ratios: list[float]

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios)

    @property
    def cpu_ratio(self) -> float:
        return statistics.median(self.cpu_ratios)

    def median(self, field: str) -> float:
        return statistics.median(getattr(run, field) for run in self.runs)


def measure(urls: dict[str, str], pids: dict[str, int], args: argparse.Namespace, data: Path) -> dict[str, Row]:
    """Warm each server up, then --rounds rounds of every row, in a rotating order.

    Each round's rows run back to back, so a ratio compares runs that saw the
    same machine (other processes come and go on a shared machine).
    """
    load = {"data": data, "connections": args.connections, "threads": args.threads}
    for name in ("service", "anchor"):
        wrk(urls[name], conditional=False, seconds=args.warmup, **load)
    names = list(ROWS)
    runs: dict[str, list[Run]] = {name: [] for name in names}
    for round_number in range(args.rounds):
        for name in names[round_number % len(names):] + names[:round_number % len(names)]:
            runs[name].append(measured(pids[name], lambda name=name: wrk(
                urls[name], conditional=ROWS[name][1], seconds=args.duration, **load)))
    return {name: Row(runs[name], [mine.rate / anchor.rate
                                   for mine, anchor in zip(runs[name], runs["anchor"], strict=True)],
                      [mine.cpu_ms / anchor.cpu_ms
                       for mine, anchor in zip(runs[name], runs["anchor"], strict=True)])
            for name in names}


def report(rows: dict[str, Row], args: argparse.Namespace, url: str, seeded: float, sizing: dict[str, str]) -> bool:
    """Print the figures; returns whether every target was met."""
    service, conditional = rows["service"], rows["conditional"]
    ok_rate, ok_p99 = service.ratio >= RATIO_TARGET, service.median("p99_ms") < P99_TARGET_MS
    ok_conditional = conditional.ratio > CONDITIONAL_RATIO_TARGET
    targets = {"service": f">= {RATIO_TARGET} x, p99 < {P99_TARGET_MS:g} ms",
               "conditional": f"> {CONDITIONAL_RATIO_TARGET:g} x", "anchor": ""}
    print("bench_restrictions: GET /api/v1/accounts/{id}/restrictions under gunicorn on PostgreSQL")
    print(support.machine_line(args.load_before))
    print(support.postgres_line(url) + f"; {args.accounts:,} accounts, {support.held_share(url, args.accounts):.0%} "
          f"under a hold ({'seeded in %.1f s' % seeded if seeded else 'seed reused'})")
    print(f"servers: gunicorn gthread, {sizing['VERIFY_WEB_WORKERS']} workers x {sizing['VERIFY_WEB_THREADS']} "
          "threads each (service and anchor alike)")
    print(f"load:    wrk {args.threads} threads, {args.connections} connections, random accounts; {args.rounds} "
          f"rounds of {args.duration:g} s runs after a {args.warmup:g} s warm-up; medians over the rounds")
    print()
    print(f"{'':34}{'req/s':>9}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}  {'x anchor':<10}{'target':<24}"
          f"{'CPU ms/req':>11}{'x anchor':>10}")
    for name, row in rows.items():
        print(f"{ROWS[name][0]:34}{row.median('rate'):>9,.0f}{row.median('p50_ms'):>9.1f}"
              f"{row.median('p90_ms'):>9.1f}{row.median('p99_ms'):>9.1f}  {row.ratio:<10.2f}{targets[name]:<24}"
              f"{row.median('cpu_ms'):>11.2f}{row.cpu_ratio:>10.2f}")
    print()
    print(f"service/anchor = {service.ratio:.2f} ({'met' if ok_rate else 'MISSED'}: target {RATIO_TARGET}); "
          f"service p99 = {service.median('p99_ms'):.1f} ms ({'met' if ok_p99 else 'MISSED'}: "
          f"target < {P99_TARGET_MS:g} ms); If-None-Match/anchor = {conditional.ratio:.2f} "
          f"({'met' if ok_conditional else 'MISSED'}: target > {CONDITIONAL_RATIO_TARGET:g})")
    for name in ("service", "conditional"):
        print(f"{ROWS[name][0]} / anchor, round by round: " + ", ".join(f"{r:.2f}" for r in rows[name].ratios))
    return ok_rate and ok_p99 and ok_conditional


def start_servers(started: list[support.Server], scratch: Path, url: str, sizing: dict[str, str]) -> dict[str, str]:
    """The service and the anchor, each on a free loopback port; returns each row's base URL."""
    ports = support.free_port(), support.free_port()
    service, anchor = (f"http://127.0.0.1:{port}" for port in ports)
    service_app = support.gunicorn_command("gunicorn.conf.py", "verify_service:create_app()")
    started.append(support.Server("service", service_app, service_env(url, ports[0], scratch, sizing), scratch))
    (scratch / "anchor-metrics").mkdir()  # gunicorn.conf.py, read by the anchor's config, wants one
    anchor_app = support.gunicorn_command("tests/bench/anchor_gunicorn.conf.py", "tests.bench.anchor_app:create_app()")
    started.append(support.Server("anchor", anchor_app, {
        **support.clean_environ(), **sizing, "ANCHOR_DATABASE_URL": url, "VERIFY_BIND": f"127.0.0.1:{ports[1]}",
        "PROMETHEUS_MULTIPROC_DIR": str(scratch / "anchor-metrics")}, scratch))
    started[0].wait_ready(f"{service}/healthz")
    started[1].wait_ready(f"{anchor}/healthz")
    return {"service": service, "conditional": service, "anchor": anchor}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=100_000, help="seeded accounts (default 100000)")
    parser.add_argument("--duration", type=float, default=8, help="seconds per run (default 8)")
    parser.add_argument("--warmup", type=float, default=3, help="seconds of warm-up per server (default 3)")
    parser.add_argument("--rounds", type=int, default=5, help="runs of each row (default 5)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args, _unknown = parser.parse_known_args(argv)  # make bench passes one BENCH_ARGS to every script
    args.load_before = os.getloadavg()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk (make bench does)")

    url = support.database_url()
    support.prepare_database(url)
    seeded = support.seed_accounts(url, args.accounts)
    etags = support.seeded_etags(url, args.accounts)
    sizing = {"VERIFY_WEB_WORKERS": os.environ.get("VERIFY_WEB_WORKERS") or str(max(2, multiprocessing.cpu_count())),
              "VERIFY_WEB_THREADS": os.environ.get("VERIFY_WEB_THREADS") or "4"}
    with support.servers() as (started, scratch):
        write_wrk_data(scratch / "accounts.lua", etags)
        urls = start_servers(started, scratch, url, sizing)
        check_answers(urls["service"], urls["anchor"], etags)
        pids = {"service": started[0].process.pid, "conditional": started[0].process.pid,
                "anchor": started[1].process.pid}
        rows = measure(urls, pids, args, scratch / "accounts.lua")

    met = report(rows, args, url, seeded, sizing)
    unexpected = {name: sum(run.unexpected(ROWS[name][2]) for run in row.runs) for name, row in rows.items()}
    if any(unexpected.values()):
        print("UNEXPECTED ANSWERS (other statuses or socket errors): "
              + ", ".join(f"{name} {count}" for name, count in unexpected.items() if count))
        return 1
    return 1 if args.check and not met else 0


if __name__ == "__main__":
    sys.exit(main())
