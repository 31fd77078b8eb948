"""Scale-out on PostgreSQL: two gunicorn web processes, two schedulers, 100 freelancers, a leader killed.

Real processes on loopback: every piece talks over HTTP or to PostgreSQL as
in production. The first web process also serves the Meet emulator, which
every process uses (its state lives in that one process). The workload
pushes 100 accounts through verification request → launch link → call →
joining the Meet room → attendance (the scheduler) → a decision (a pass, or
a fail confirmed by a lead), and SIGKILLs the leading scheduler half-way.
Afterwards every event has reached the receiver in per-account order with
gapless seqs, no job effect happened twice, the standby took over within
30 s, and each account's restrictions are what its events say.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url

from tests.conftest import ACCOUNT_SERVICE_SECRET, API_KEY, DATA_KEY, PG_URL
from tests.functional.test_freelancer_journey import CHROME
from tests.support.receiver import Receiver
from tests.support.review_desk import record_with_evidence
from verify_service.accounts.domain import HoldKind
from verify_service.accounts.models import Hold
from verify_service.calls.models import CallSession
from verify_service.calls.state import Outcome, SessionStatus
from verify_service.db import make_engine, make_sessionmaker, unit_of_work
from verify_service.review import decisions
from verify_service.staff.models import Role
from verify_service.staff.passwords import create_reviewer
from verify_service.webhooks.models import DeliveryStatus, OutboxEvent

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ACCOUNTS = 100
# Beside the test database (under xdist: the worker's), so that parallel workers and runs never share it.
DATABASE = f"{make_url(PG_URL).database}_scale_out" if PG_URL else ""
CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)">')
JOIN = re.compile(r'name="csrf_token" value="([^"]+)">\s*<input type="hidden" name="as" value="freelancer">')
AUTH = {"Authorization": f"Bearer {API_KEY}"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check: Callable[[], Any], seconds: float, what: str, every: float = 0.5) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(every)
    raise AssertionError(f"timed out after {seconds:.0f} s waiting for {what}")


class Cluster:
    def __init__(self, tmp_path: Path, database_url: str, receiver: Receiver) -> None:
        self.tmp = tmp_path
        self.database_url = database_url
        self.web_ports = [free_port(), free_port()]
        self.webs = [f"http://127.0.0.1:{port}" for port in self.web_ports]
        emulator = self.webs[0]
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("VERIFY_", "PROMETHEUS_"))}
        self.env.update(
            PYTHONUNBUFFERED="1", VERIFY_ENV="testing", VERIFY_DATABASE_URL=database_url,
            VERIFY_INSTANCE_DIR=str(tmp_path / "instance"), VERIFY_SECRET_KEY="s" * 48, VERIFY_API_KEYS=API_KEY,
            VERIFY_INBOUND_WEBHOOK_SECRETS="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            VERIFY_ACCOUNT_SERVICE_WEBHOOK_URL=receiver.url,
            VERIFY_ACCOUNT_SERVICE_WEBHOOK_SECRET=ACCOUNT_SERVICE_SECRET,
            VERIFY_IDENTITY_PEPPER="pepper-" + "p" * 40, VERIFY_DATA_KEYS=DATA_KEY,
            VERIFY_AUDIT_CHECKPOINT_KEY="checkpoint-" + "c" * 40, VERIFY_MEET_BACKEND="sandbox",
            VERIFY_MEET_API_ENDPOINT=f"{emulator}/sandbox/google/meet/",
            VERIFY_CALENDAR_API_ENDPOINT=f"{emulator}/sandbox/google/calendar/v3/",
            VERIFY_MEET_CREATES_PER_MINUTE="1000", VERIFY_MEET_PROJECT_CREATES_PER_MINUTE="1000",
            VERIFY_CLIENT_CHECK_RATE_LIMIT="10000/second", VERIFY_WEB_WORKERS="1", VERIFY_WEB_THREADS="8")
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.metrics_ports: dict[str, int] = {}

    def start(self, name: str, command: list[str], **env: str) -> subprocess.Popen[bytes]:
        log = (self.tmp / f"{name}.log").open("wb")
        process = subprocess.Popen(command, cwd=ROOT, env={**self.env, **env}, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        self.processes[name] = process
        return process

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(encoding="utf-8", errors="replace")

    def start_web(self, number: int) -> None:
        port, base = self.web_ports[number], self.webs[number]
        self.start(f"web{number}", [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "verify_service:create_app()"],
                   VERIFY_BIND=f"127.0.0.1:{port}", VERIFY_BASE_URL=base)

        def up() -> bool:
            assert self.processes[f"web{number}"].poll() is None, self.log(f"web{number}")
            try:
                return requests.get(f"{base}/healthz", timeout=1).status_code == 200
            except requests.ConnectionError:
                return False

        wait_until(up, 60, f"web process {number}")

    def start_scheduler(self, name: str) -> subprocess.Popen[bytes]:
        port = self.metrics_ports[name] = free_port()  # two schedulers on one host: one exporter port each
        return self.start(name, [str(BIN / "verify-service"), "scheduler"], VERIFY_BASE_URL=self.webs[0],
                          VERIFY_SCHEDULER_METRICS_PORT=str(port), VERIFY_SCHEDULER_METRICS_ADDR="127.0.0.1")

    def job_runs(self, name: str, job: str) -> float:
        """``verify_job_runs_total{job=…, outcome="ok"}`` from a scheduler's own /metrics."""
        text = requests.get(f"http://127.0.0.1:{self.metrics_ports[name]}/metrics", timeout=5).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "verify_job_runs_total" and sample.labels == {"job": job, "outcome": "ok"}:
                    return sample.value
        return 0.0

    def kill(self, name: str) -> None:
        process = self.processes[name]
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def stop_all(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def fresh_database() -> str:
    admin = make_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        connection.exec_driver_sql(f'CREATE DATABASE "{DATABASE}"')
    admin.dispose()
    return make_url(PG_URL).set(database=DATABASE).render_as_string(hide_password=False)


@pytest.fixture
def cluster(backend: str, tmp_path: Path) -> Iterator[Cluster]:
    database_url = fresh_database()
    receiver = Receiver(ACCOUNT_SERVICE_SECRET)
    cluster = Cluster(tmp_path, database_url, receiver)
    cluster.receiver = receiver  # type: ignore[attr-defined]
    subprocess.run([str(BIN / "verify-service"), "db", "upgrade"], cwd=ROOT, env=cluster.env, check=True,
                   capture_output=True)
    try:
        yield cluster
    finally:
        cluster.stop_all()
        receiver.stop()


# ---------------------------------------------------------------- the freelancer's side, over HTTP

def ask_and_start(cluster: Cluster, number: int) -> tuple[str, str]:
    """Request verification, follow a launch link, start a call, join its Meet room. Returns (account, call id)."""
    web = cluster.webs[number % 2]
    account = f"acc-{number:03d}"
    assert requests.put(f"{web}/api/v1/accounts/{account}", headers=AUTH, timeout=30,
                        json={"name": f"Freelancer {number}", "email": f"{account}@example.com",
                              "country": "PT"}).status_code == 201
    assert requests.post(f"{web}/api/v1/accounts/{account}/verification-requests", headers=AUTH, timeout=30,
                         json={"reason": "new_account", "place_hold": True}).status_code == 201
    link = requests.post(f"{web}/api/v1/accounts/{account}/launch-links", headers=AUTH, timeout=30).json()["url"]
    browser = requests.Session()
    browser.headers["User-Agent"] = CHROME  # a supported browser: python-requests/… may not start a call
    page = browser.get(link, timeout=30)
    assert page.status_code == 200, page.text[:500]
    token = CSRF.search(page.text).group(1)
    started = browser.post(f"{web}/verify/calls", data={"csrf_token": token}, timeout=60)
    assert started.status_code == 200 and "/verify/calls/" in started.url, started.text[:500]
    call_id = started.url.rsplit("/", 1)[1]
    meet_uri = wait_until(lambda: browser.get(f"{started.url}/status", headers={"Accept": "application/json"},
                                              timeout=30).json()["meet_uri"], 60, f"the meeting of {account}")
    room = browser.get(meet_uri, timeout=30)
    joined = browser.post(f"{meet_uri}/join", timeout=30, data={
        "csrf_token": JOIN.search(room.text).group(1), "as": "freelancer", "email": f"{account}@example.com",
        "display_name": f"Freelancer {number}"})
    assert joined.status_code == 200, joined.text[:500]
    return account, call_id


def decide(sessions: Any, call_id: str, number: int, reviewer_id: int, lead_id: int) -> None:
    """A pass for even numbers, a fail confirmed by a lead for odd ones (the service layer the dashboard uses)."""
    with unit_of_work(sessions) as session:
        decisions.claim_session(session, call_id, reviewer_id=reviewer_id, now=_now())
    passed = number % 2 == 0
    outcome_id = record_with_evidence(sessions, call_id, reviewer_id, Outcome.PASSED if passed else Outcome.FAILED,
                                      _now()).id
    if not passed:
        with unit_of_work(sessions) as session:
            decisions.second_review(session, outcome_id, lead_id=lead_id, decision="confirm", notes=None, now=_now())


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_two_web_processes_two_schedulers_and_a_killed_leader(cluster: Cluster) -> None:
    receiver: Receiver = cluster.receiver  # type: ignore[attr-defined]
    cluster.start_web(0)
    cluster.start_web(1)
    cluster.start_scheduler("scheduler-a")
    cluster.start_scheduler("scheduler-b")
    engine = make_engine(cluster.database_url)
    sessions = make_sessionmaker(engine)
    try:
        with unit_of_work(sessions) as session:
            reviewer_id = create_reviewer(session, email="rita@example.com", display_name="Rita", role=Role.REVIEWER,
                                          password="a-long-enough-password", actor="test", now=_now()).id
            lead_id = create_reviewer(session, email="lena@example.com", display_name="Lena", role=Role.LEAD,
                                      password="a-long-enough-password", actor="test", now=_now()).id

        with ThreadPoolExecutor(max_workers=10) as pool:
            started = list(pool.map(lambda n: ask_and_start(cluster, n), range(ACCOUNTS)))

        # Half-way: the leading scheduler dies without a goodbye; the standby must take over.
        leader = leading_scheduler(cluster, sessions)
        killed_at = time.monotonic()
        cluster.kill(leader)
        took_over = wait_until(lambda: new_leader(cluster, sessions, leader), 40, "the standby to take over")
        assert time.monotonic() - killed_at <= 30, f"the standby took {time.monotonic() - killed_at:.1f} s"
        assert took_over != leader

        # Attendance (the surviving scheduler) moves every call to in progress; then the decisions.
        def all_in_progress() -> bool:
            with sessions() as session:
                return session.scalar(sa.select(sa.func.count()).select_from(CallSession).where(
                    CallSession.status == SessionStatus.IN_PROGRESS)) == ACCOUNTS

        wait_until(all_in_progress, 120, "attendance to see every freelancer in the call", every=2)
        with ThreadPoolExecutor(max_workers=10) as pool:
            list(pool.map(lambda item: decide(sessions, item[1][1], item[0], reviewer_id, lead_id),
                          enumerate(started)))

        def all_delivered() -> bool:
            with sessions() as session:
                return session.scalar(sa.select(sa.func.count()).select_from(OutboxEvent).where(
                    OutboxEvent.status != DeliveryStatus.DELIVERED)) == 0

        wait_until(all_delivered, 120, "every event to be delivered", every=1)
        # The survivor's job runs are on its own /metrics (a separate scheduler is scraped on its own port).
        assert cluster.job_runs(took_over, "deliver_outbox") > 0
        check_outcome(cluster, sessions, receiver)
    finally:
        engine.dispose()


def check_outcome(cluster: Cluster, sessions: Any, receiver: Receiver) -> None:
    with sessions() as session:
        events = session.execute(sa.select(OutboxEvent.event_id, OutboxEvent.account_id, OutboxEvent.seq)).all()
        holds = session.execute(sa.select(Hold.account_id, Hold.kind).where(Hold.lifted_at.is_(None))).all()
    # Every event arrived (at least once), in per-account order, seqs gapless from 1.
    assert receiver.violations == []
    assert receiver.rejected == []
    assert {event_id for event_id, _, _ in events} == set(receiver.ids())
    for account in {account for _, account, _ in events}:
        assert receiver.applied[account] == list(range(1, len(receiver.applied[account]) + 1)), account
    # No effect twice: one active hold at most per kind, and the right one per outcome.
    per_account: dict[str, list[HoldKind]] = {}
    for account, kind in holds:
        per_account.setdefault(account, []).append(kind)
    for number in range(ACCOUNTS):
        account = f"acc-{number:03d}"
        # A pass lifts the pending hold; a confirmed fail replaces it with the failed one, in one change.
        expected = [] if number % 2 == 0 else [HoldKind.VERIFICATION_FAILED]
        assert sorted(per_account.get(account, [])) == sorted(expected), account
        # The consumer's view (the last snapshot its events carried) equals the API's answer.
        api = requests.get(f"{cluster.webs[number % 2]}/api/v1/accounts/{account}/restrictions", headers=AUTH,
                           timeout=30).json()
        last = [d.data for d in receiver.deliveries if d.account_id == account and "restrictions_version" in d.data]
        assert max(d["restrictions_version"] for d in last) == api["version"], account


def _leader_pids(sessions: Any) -> list[int]:
    from verify_service.ops.models import LEADER, SchedulerHeartbeat

    with sessions() as session:
        rows = session.scalars(sa.select(SchedulerHeartbeat.instance_id).where(
            SchedulerHeartbeat.role == LEADER,
            SchedulerHeartbeat.last_beat_at > _now() - dt.timedelta(seconds=15))).all()
    return [int(instance.split(":")[1]) for instance in rows]


def leading_scheduler(cluster: Cluster, sessions: Any) -> str:
    """The name of the scheduler process the heartbeat says leads."""
    names = {process.pid: name for name, process in cluster.processes.items() if name.startswith("scheduler")}

    def one_leader() -> str | None:
        leaders = [names[pid] for pid in _leader_pids(sessions) if pid in names]
        return leaders[0] if len(leaders) == 1 else None

    return wait_until(one_leader, 30, "a scheduler to lead")


def new_leader(cluster: Cluster, sessions: Any, killed: str) -> str | None:
    killed_pid = cluster.processes[killed].pid
    names = {process.pid: name for name, process in cluster.processes.items()
             if name.startswith("scheduler") and process.pid != killed_pid}
    leaders = [names[pid] for pid in _leader_pids(sessions) if pid in names]
    return leaders[0] if leaders else None
