"""Meet's events on PostgreSQL at 10,000 concurrent calls: the push endpoint's throughput, and the Meet
reads the attendance job still makes beside the read quota.

    .venv/bin/python tests/bench/bench_meet_events.py [--calls 10000] [--workers 2] [--budget 120]
                        [--conference-events] [--minutes 10] [--profile] [--quick] [--check]

PostgreSQL: ``VERIFY_BENCH_DATABASE_URL`` (default
postgresql+psycopg://postgres@127.0.0.1:5432/bench_meet_events), created and migrated when needed;
every run replaces the previous run's calls (tests/bench/meet_events_setup.py, set-based SQL):
--calls accounts, each with one open verification request and one call session waiting with its
meeting ready, spread over --hosts host users (each with an ACTIVE Workspace Events
subscription); --reviewers reviewers whose Google users the service already knows.

1. events  Per call, in Meet's order: the freelancer joins, the reviewer joins, the freelancer
   leaves, the reviewer leaves (4 events; --conference-events adds the conference's start and end:
   6). Each is a Pub/Sub push body with a valid OIDC token (RS256, signed by the benchmark's own key,
   which the app's PushVerifier is given as Google's certificates; a few tokens, reused), POSTed to
   ``/webhooks/google/meet-events`` through Flask's test client (no socket) of the real app in
   production settings (JSON logs, to a file). Meet is an in-process gateway answering at once
   (conferenceRecords.get, participants.get, participantSessions.get; each read counted). --workers
   processes, each with its own app, take the calls n with n mod workers = their index, 100 calls at
   a time: the first event of those calls, then the second, … (calls side by side, each call's events
   in order, one request at a time per process). No new block starts after --budget seconds (the
   calls not reached stay waiting; at the target all 40,000 events take 20 s). Figures: events/s over
   the wall time of all workers, p50/p95/p99 per push, the SQL statements and Meet reads per event,
   the token check alone. Afterwards every call pushed must be in_progress with both people's join
   and leave times as the events said, every other call untouched (else the run fails, whatever the
   flags).
2. reconciliation  Every seeded call in progress, both people still connected (set by SQL, whatever
   phase 1 reached), each call's last event at a random moment of the last 15 minutes and one more
   every 15 minutes (written as the events would write ``meet_event_at``): --minutes minutes of
   jobs/calls.py ``sync_attendance`` every 30 s of a fake clock, counting the full reads it makes
   (READS_PER_CALL Meet reads each). Printed beside polling with events off (every live call read
   every 30 s: calls x READS_PER_CALL x 2 a minute) and the documented quota (600 a minute per host
   user; min(600 x hosts, 6,000) a minute per project).
Targets: >= 2,000 events/s; reconciliation within the read quota (per project and per host).
--check: exit 1 when a target is missed. --quick: 1,000 calls and 3 minutes (a smoke run).
Not a test: pytest does not collect tests/bench (setup.cfg norecursedirs).
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from tests.bench import meet_events_setup as setup  # noqa: E402
from tests.bench import support  # noqa: E402
from jobs import calls as call_jobs  # noqa: E402
from verify_service.calls import attendance, reconciliation  # noqa: E402
from verify_service.calls.reconciliation import READS_PER_CALL  # noqa: E402
from verify_service.db import unit_of_work  # noqa: E402
from verify_service.meet_events import apply as apply_module  # noqa: E402
from verify_service.meet_events import subscriptions  # noqa: E402
from verify_service.registry import KEY  # noqa: E402

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_meet_events"
EVENTS_TARGET = 2_000.0  # events/s
QUOTA_PER_USER = 600     # Meet API reads a minute per host user (Google's documented limit)
QUOTA_PER_PROJECT = 6_000


def run_events(args: argparse.Namespace, url: str, seeded_at: dt.datetime, key: setup.PushKey,
               scratch: Path) -> list[dict[str, Any]]:
    """Phase 1 in --workers processes; their reports. Raises: SystemExit when a worker failed."""
    return _in_processes(setup.push_events, [
        setup.Job(url=url, worker=w, workers=args.workers, calls=args.calls, hosts=args.hosts,
                  reviewers=args.reviewers, seeded_at=seeded_at, conference=args.conference_events,
                  key=key, scratch=str(scratch), budget=args.budget, profile=args.profile and w == 0,
                  threads=args.threads) for w in range(args.workers)], timeout=600)


def _in_processes(target: Any, jobs: list[setup.Job], *, timeout: float) -> list[dict[str, Any]]:
    """``target(job, barrier, results)`` in a spawned process per job, started together; their reports.

    Raises: SystemExit naming what failed in a process."""
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(len(jobs)), context.Queue()
    processes = [context.Process(target=target, args=(job, barrier, results)) for job in jobs]
    for process in processes:
        process.start()
    reports = [results.get(timeout=timeout) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    failed = [r["error"] for r in reports if r.get("error")]
    if failed:
        raise SystemExit("a process failed:\n" + "\n".join(failed))
    return reports


def check_applied(url: str, done: list[int], calls: int, per_call: int, seeded_at: dt.datetime) -> list[str]:
    """What is wrong in the database after the events (nothing: an empty list): every call whose events
    were pushed (``done``) as they said, every other call untouched (still waiting)."""
    s, like = seeded_at, setup.PREFIX + "%"
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            row = conn.execute(sa.text(
                "SELECT count(*) AS calls, "
                "count(*) FILTER (WHERE status = 'in_progress') AS in_progress, "
                "count(*) FILTER (WHERE freelancer_joined_at = :fj AND freelancer_left_at = :fl "
                "  AND reviewer_joined_at = :rj AND reviewer_left_at = :rl) AS times, "
                "count(*) FILTER (WHERE freelancer_connected_seconds = :fs AND reviewer_connected_seconds = :rs) "
                "  AS seconds, count(meet_event_at) AS evented "
                "FROM call_sessions WHERE id IN "
                "(SELECT md5('mev-call' || n)::uuid::text FROM unnest(CAST(:ns AS int[])) n)"),
                {"ns": done, "fj": s - setup.FREELANCER_JOINS, "fl": s - setup.FREELANCER_LEAVES,
                 "rj": s - setup.REVIEWER_JOINS, "rl": s - setup.REVIEWER_LEAVES,
                 "fs": int((setup.FREELANCER_JOINS - setup.FREELANCER_LEAVES).total_seconds()),
                 "rs": int((setup.REVIEWER_JOINS - setup.REVIEWER_LEAVES).total_seconds())}).one()
            untouched = conn.scalar(sa.text("SELECT count(*) FROM call_sessions WHERE account_id LIKE :like AND "
                                            "status = 'waiting' AND meet_event_at IS NULL"), {"like": like})
            receipts = conn.scalar(sa.text("SELECT count(*) FROM meet_event_receipts WHERE id LIKE :like AND "
                                           "id NOT LIKE :warm"), {"like": like, "warm": setup.PREFIX + "warm%"})
            started = conn.scalar(sa.text("SELECT count(*) FROM outbox_events WHERE account_id LIKE :like AND "
                                          "type = 'verification.session.started'"), {"like": like})
    finally:
        engine.dispose()
    found = [f"{label}: {got:,} of the {len(done):,} calls pushed" for label, got in (
        ("calls", row.calls), ("in_progress", row.in_progress), ("join/leave times as the events said", row.times),
        ("connected seconds as the events said", row.seconds), ("meet_event_at set", row.evented),
        ("verification.session.started announced", started)) if got != len(done)]
    if untouched != calls - len(done):
        found.append(f"calls not pushed, still waiting: {untouched:,} of {calls - len(done):,}")
    if receipts != len(done) * per_call:
        found.append(f"receipts: {receipts:,} of {len(done) * per_call:,} events")
    return found


class Clock:
    """The app's clock in phase 2, moved by hand."""

    def __init__(self, start: dt.datetime) -> None:
        self.current = start

    def __call__(self) -> dt.datetime:
        return self.current


_EVENT_AT_SQL = ("UPDATE call_sessions AS c SET meet_event_at = u.t FROM unnest(CAST(:ns AS int[]), "
                 "CAST(:ts AS timestamptz[])) AS u(n, t) WHERE c.id = md5('mev-call' || u.n)::uuid::text")
EVENT_EVERY = dt.timedelta(minutes=15)
RUN_EVERY = dt.timedelta(seconds=30)


def reconcile(url: str, calls: int, hosts: int, reviewers: int, seeded_at: dt.datetime, *, minutes: float,
              seed: int, scratch: Path) -> dict[str, Any]:
    """Phase 2: the attendance job every 30 s of a fake clock while events keep coming; what it read."""
    app = setup.make_app(url, hosts, reviewers, calls, seeded_at, setup.PushKey.new(), scratch / "reconcile",
                         still_connected=True)
    registry = app.extensions[KEY]
    meet: setup.FakeInstantMeet = registry.meet
    clock = registry.clock = Clock(dt.datetime.now(dt.timezone.utc))
    rng = random.Random(seed)
    next_event = {n: clock.current - rng.uniform(0, 1) * EVENT_EVERY for n in range(1, calls + 1)}
    setup.steady_state(registry.engine, calls=calls, reviewers=reviewers, seeded_at=seeded_at)
    due_counts, read_counts, reapply_counts, run_seconds = [], [], [], []
    read_ids: set[str] = set()
    reapply_ids: set[str] = set()
    runs = max(1, round(minutes * 60 / RUN_EVERY.total_seconds()))
    for k in range(runs):
        now = clock.current = clock.current + (RUN_EVERY if k else dt.timedelta(0))
        arrived = {n: at for n, at in next_event.items() if at <= now}
        if arrived:  # what each event's write does to the call: its meet_event_at (the job's only input)
            with registry.engine.begin() as conn:
                conn.execute(sa.text(_EVENT_AT_SQL), {"ns": list(arrived), "ts": list(arrived.values())})
            next_event.update({n: at + EVENT_EVERY for n, at in arrived.items()})
        with unit_of_work(registry.sessions, write=False) as db:  # the job's own plan, to see what it chose
            due = attendance.sessions_to_sync(db, now=now, limit=call_jobs.due_limit(registry.settings))
            plan = reconciliation.plan_reconciliation(db, due, live_hosts=subscriptions.live_hosts(db, now),
                                                  settings=registry.settings, now=now)
        before = meet.reads["attendance (full read)"]
        started = time.perf_counter()
        synced = call_jobs.sync_attendance(app)
        run_seconds.append(time.perf_counter() - started)
        reads = meet.reads["attendance (full read)"] - before
        if synced != len(plan.read) or reads != synced * READS_PER_CALL:
            raise SystemExit(f"run {k}: the job read {synced} calls ({reads} reads), its plan said {len(plan.read)}")
        due_counts.append(len(due))
        read_counts.append(len(plan.read))
        reapply_counts.append(len(plan.reapply))
        read_ids.update(plan.read)
        reapply_ids.update(plan.reapply)
    registry.engine.dispose()
    return {"minutes": runs * RUN_EVERY.total_seconds() / 60, "runs": runs,
            "reads": meet.reads["attendance (full read)"], "host_reads": dict(meet.host_reads),
            "due_mean": sum(due_counts) / runs, "read_mean": sum(read_counts) / runs,
            "reapply_mean": sum(reapply_counts) / runs, "run_mean": sum(run_seconds) / runs,
            "run_max": max(run_seconds), "distinct_read": len(read_ids), "distinct_reapply": len(reapply_ids),
            "distinct_touched": len(read_ids | reapply_ids)}


def report_events(args: argparse.Namespace, reports: list[dict[str, Any]]) -> float:
    """Print phase 1's figures; its events/s."""
    latencies = [ms for r in reports for ms in r["latencies"]]
    events, done = len(latencies), sum(len(r["done"]) for r in reports)
    wall = max(r["end"] for r in reports) - min(r["start"] for r in reports)
    rate = events / wall
    statements = sum(r["statements"] for r in reports)
    reads: dict[str, int] = {}
    for r in reports:
        for method, count in r["reads"].items():
            reads[method] = reads.get(method, 0) + count
    per_event = sum(r["end"] - r["start"] for r in reports) / events * 1000
    kinds = "join/leave x 2 people" + (" + conference started/ended" if args.conference_events else "")
    print(f"1. events: {events // max(done, 1)} a call ({kinds}), {args.workers} worker processes, POST "
          f"{setup.PATH} via the test client, production settings, {args.calls:,} calls seeded")
    if done < args.calls:
        print(f"   the {args.budget:.0f} s budget ran out: the events of {done:,} of the {args.calls:,} calls were "
              f"pushed ({events:,} of {args.calls * events // done:,}); at the target all would take "
              f"{args.calls * events // done / EVENTS_TARGET:.0f} s")
    print(f"   {events:,} events in {wall:.1f} s = {rate:,.0f} events/s "
          f"({rate / EVENTS_TARGET:.2f} x the {EVENTS_TARGET:,.0f}/s target: "
          f"{'met' if rate >= EVENTS_TARGET else 'MISSED'})")
    print(f"   per push: p50 {support.percentile(latencies, 50):.2f} ms, "
          f"p95 {support.percentile(latencies, 95):.2f} ms, p99 {support.percentile(latencies, 99):.2f} ms; "
          f"{per_event:.2f} ms of a worker per event")
    print(f"   SQL statements: {statements / events:.1f} per event; Meet reads: "
          + ", ".join(f"{method} {count:,}" for method, count in sorted(reads.items()))
          + f" ({sum(reads.values()) / events:.2f} per event)")
    verify = [r["verify_us"] for r in reports]
    print(f"   the token check alone (PushVerifier.verify, RS256): {sum(verify) / len(verify):.0f} us a push")
    for r in reports:
        if r.get("profile"):
            print("   profile of worker 0 (cProfile, cumulative, the heaviest calls):\n" + r["profile"])
    return rate


def run_drain(args: argparse.Namespace, url: str, key: setup.PushKey, scratch: Path) -> float:
    """Phase 1b: every call's events received (fresh calls), then applied by --workers drain processes (the
    drain a push runs, and the drain job); prints the figures, returns events/s."""
    engine = support.prepared_engine(url)
    seeded_at = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    setup.seed(engine, calls=args.calls, hosts=args.hosts, reviewers=args.reviewers, now=seeded_at)
    engine.dispose()
    received = setup.receive_all(url, args.calls, args.hosts, args.reviewers, seeded_at, key, scratch,
                                 conference=args.conference_events)
    reports = _in_processes(setup.drain_events, [
        setup.Job(url=url, worker=w, workers=args.workers, calls=args.calls, hosts=args.hosts,
                  reviewers=args.reviewers, seeded_at=seeded_at, conference=args.conference_events, key=key,
                  scratch=str(scratch), budget=args.budget) for w in range(args.workers)], timeout=900)
    applied = sum(r["applied"] for r in reports)
    wall = max(r["end"] for r in reports) - min(r["start"] for r in reports)
    rate = applied / wall
    per_call = 6 if args.conference_events else 4
    problems = check_applied(url, list(range(1, args.calls + 1)), args.calls, per_call, seeded_at)
    print(f"1b. processing: {received:,} events received (pending), then applied by {args.workers} drain processes "
          f"({sum(r['batches'] for r in reports)} batches of up to {apply_module.BATCH:,}, SKIP LOCKED between them)")
    print(f"   {applied:,} events in {wall:.1f} s = {rate:,.0f} events/s ({rate / EVENTS_TARGET:.2f} x the "
          f"{EVENTS_TARGET:,.0f}/s target: {'met' if rate >= EVENTS_TARGET else 'MISSED'}); "
          f"{sum(r['statements'] for r in reports) / max(applied, 1):.2f} SQL statements per event")
    if problems:
        raise SystemExit("EVENTS NOT APPLIED:\n  " + "\n  ".join(problems))
    print(f"   checked: all {args.calls:,} calls in_progress with the join/leave times the events said")
    return rate


def report_reconciliation(args: argparse.Namespace, result: dict[str, Any]) -> bool:
    """Print phase 2's figures; whether reconciliation fits the quota."""
    minutes, hosts = result["minutes"], args.hosts
    project_quota = min(QUOTA_PER_USER * hosts, QUOTA_PER_PROJECT)
    reads_per_minute = result["reads"] / minutes
    busiest = max(result["host_reads"].values(), default=0) / minutes
    polling = args.calls * READS_PER_CALL * 2
    fits = reads_per_minute <= project_quota and busiest <= QUOTA_PER_USER
    print(f"2. reconciliation: {result['runs']} runs of sync_attendance, every 30 s of a fake clock over {minutes:g} "
          f"min, {args.calls:,} live calls on {hosts} host users, events on (each call's last event at a random "
          "moment of the last 15 min, one more every 15 min)")
    print(f"   calls due per run (sessions_to_sync, at most call_jobs.due_limit): {result['due_mean']:.0f}; "
          f"read {result['read_mean']:.0f}, re-applied from stored events {result['reapply_mean']:.0f}; "
          f"a run took {result['run_mean']:.2f} s (the longest {result['run_max']:.2f} s)")
    print(f"   distinct calls in {minutes:g} min: read {result['distinct_read']:,}, re-applied "
          f"{result['distinct_reapply']:,}, touched at all {result['distinct_touched']:,} of {args.calls:,}")
    print(f"   {'':34}{'Meet reads/min':>15}{'busiest host/min':>18}  vs quota "
          f"({project_quota:,}/min project, {QUOTA_PER_USER}/min host)")
    print(f"   {'reconciliation (events on)':34}{reads_per_minute:>15,.0f}{busiest:>18,.0f}  "
          f"{reads_per_minute / project_quota:.2f} x project, {busiest / QUOTA_PER_USER:.2f} x host: "
          f"{'fits' if fits else 'DOES NOT FIT'}")
    per_host = polling / hosts
    polling_fits = polling <= project_quota and per_host <= QUOTA_PER_USER
    print(f"   {'polling (events off, computed)':34}{polling:>15,.0f}{per_host:>18,.0f}  "
          f"{polling / project_quota:.2f} x project, {per_host / QUOTA_PER_USER:.2f} x host: "
          f"{'fits' if polling_fits else 'DOES NOT FIT'}")
    return fits


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=10_000, help="concurrent calls (default 10000)")
    parser.add_argument("--hosts", type=int, default=20, help="host users (default 20)")
    parser.add_argument("--reviewers", type=int, default=20, help="reviewers (default 20)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes pushing events (default 2)")
    parser.add_argument("--threads", type=int, default=8, help="concurrent pushes per worker process (default 8)")
    parser.add_argument("--conference-events", action="store_true", help="also push conference started/ended")
    parser.add_argument("--budget", type=float, default=120,
                        help="seconds of pushing events at most (default 120; calls not reached keep waiting)")
    parser.add_argument("--minutes", type=float, default=10, help="simulated minutes of the attendance job")
    parser.add_argument("--profile", action="store_true", help="profile worker 0 (cProfile) and print the top")
    parser.add_argument("--quick", action="store_true", help="1,000 calls, 3 minutes: a smoke run")
    parser.add_argument("--seed", type=int, default=20261204, help="the random moments of phase 2")
    parser.add_argument("--database-url", help="default: $VERIFY_BENCH_DATABASE_URL or bench_meet_events")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args, _unknown = parser.parse_known_args(argv)  # make bench passes one BENCH_ARGS to every script
    if args.quick:
        args.calls, args.minutes = min(args.calls, 1_000), min(args.minutes, 3)
    load_before = os.getloadavg()
    url = support.database_url(args.database_url, DEFAULT_URL)
    engine = support.prepared_engine(url)
    seeded_at = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    seconds = setup.seed(engine, calls=args.calls, hosts=args.hosts, reviewers=args.reviewers, now=seeded_at)
    engine.dispose()
    print(f"bench_meet_events: {args.calls:,} calls seeded in {seconds:.1f} s")
    key = setup.PushKey.new()
    with tempfile.TemporaryDirectory(prefix="verify-bench-") as scratch:
        reports = run_events(args, url, seeded_at, key, Path(scratch))
        done = sorted(n for r in reports for n in r["done"])
        per_call = 6 if args.conference_events else 4
        problems = check_applied(url, done, args.calls, per_call, seeded_at)
        rate = report_events(args, reports)
        if problems or not done:
            print("EVENTS NOT APPLIED:\n  " + "\n  ".join(problems or ["no call's events were pushed"]))
            return 1
        print(f"   checked: all {len(done):,} calls pushed are in_progress, their join/leave times and connected "
              f"seconds as the events said, {len(done) * per_call:,} receipts; the {args.calls - len(done):,} "
              "others untouched")
        processing = run_drain(args, url, key, Path(scratch))
        result = reconcile(url, args.calls, args.hosts, args.reviewers, seeded_at, minutes=args.minutes,
                           seed=args.seed, scratch=Path(scratch))
    fits = report_reconciliation(args, result)
    print(support.machine_line(load_before))
    print(support.postgres_line(url))
    missed = max(rate, processing) < EVENTS_TARGET or not fits
    if missed:
        print("TARGET MISSED")
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
