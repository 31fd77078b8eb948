"""Scheduler leadership (jobs/leader.py), the heartbeat, job-run recording, and jobs run by two schedulers at once.

The kill -9 test runs two real ``verify-service scheduler`` processes against a
PostgreSQL database of its own (``<test database>_lead``, created if missing).
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from prometheus_client import REGISTRY

from jobs import JOB_DEFAULTS
from jobs import calls as call_jobs
from jobs.leader import AdvisoryLock, Leadership
from jobs.runner import run_recorded
from tests.conftest import PG_URL, FakeClock
from tests.integration.test_cli import SCRIPT
from tests.integration.test_review_claims import reviewers, waiting_call
from tests.support.concurrency import run_together
from tests.support.fake_meet import FakeMeetGateway
from verify_service.audit.models import AuditEntry
from verify_service.db import make_engine, unit_of_work
from verify_service.health import SCHEDULER_GRACE, STARTED_KEY
from verify_service.ops import heartbeat
from verify_service.ops.models import SchedulerHeartbeat, SchedulerJobRun
from verify_service.registry import Registry
from verify_service.review import decisions

needs_pg = pytest.mark.skipif(not PG_URL, reason="needs VERIFY_TEST_DATABASE_URL (PostgreSQL)")
TEST_KEY = 0x7E57_1EAD  # in-process lock tests: never the real key, so no real scheduler is disturbed


def wait_for(predicate, timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


def test_job_defaults() -> None:
    assert JOB_DEFAULTS == {"misfire_grace_time": 60, "coalesce": True, "max_instances": 1}


# ---------------------------------------------------------------- job-run recording

def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_each_run_is_recorded_with_its_outcome_and_metrics(app: Flask, registry: Registry, clock: FakeClock) -> None:
    def probe_job(app: Flask) -> int:
        return 7

    def broken_job(app: Flask) -> None:
        raise RuntimeError("boom")

    ok_before = sample("verify_job_runs_total", job="probe_job", outcome="ok")
    assert run_recorded(probe_job, app) == 7
    assert sample("verify_job_runs_total", job="probe_job", outcome="ok") == ok_before + 1
    assert sample("verify_job_duration_seconds_count", job="probe_job") >= 1
    clock.advance(minutes=1)
    with pytest.raises(RuntimeError):
        run_recorded(broken_job, app)
    with registry.sessions() as session:
        runs = {r.job_id: r for r in session.scalars(sa.select(SchedulerJobRun))}
    assert (runs["probe_job"].last_ok, runs["probe_job"].last_error) == (True, None)
    assert runs["probe_job"].last_success_at == clock() - dt.timedelta(minutes=1)
    assert runs["broken_job"].last_ok is False and runs["broken_job"].last_error == "RuntimeError: boom"
    assert runs["broken_job"].last_success_at is None and runs["broken_job"].last_finished_at == clock()


def test_a_failing_heartbeat_write_never_fails_the_job(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    def down(*args: object, **kwargs: object) -> None:
        raise sa.exc.OperationalError("stmt", {}, Exception("database gone"))

    monkeypatch.setattr(heartbeat, "job_started", down)
    monkeypatch.setattr(heartbeat, "job_finished", down)
    assert run_recorded(lambda app: "done", app) == "done"


def test_a_scheduler_without_the_lock_skips_the_run(app: Flask) -> None:
    ran = []
    assert run_recorded(lambda app: ran.append(1), app, guard=lambda: False) is None
    assert ran == []


# ---------------------------------------------------------------- /readyz

def test_readyz_alerts_on_a_stale_scheduler_heartbeat(app: Flask, client, registry: Registry,
                                                      clock: FakeClock) -> None:
    def readyz() -> tuple[int, list[str], dict]:
        response = client.get("/readyz")
        body = response.get_json()
        return response.status_code, [a["code"] for a in body["alerts"]], body["scheduler"]

    status, codes, state = readyz()
    assert codes == [] and state["leader"] is None and state["never_seen"] is True  # no scheduler ran here yet
    heartbeat.beat(registry.sessions, "host:1:aa", role="leader", started_at=clock(), now=clock())
    heartbeat.beat(registry.sessions, "host:2:bb", role="standby", started_at=clock(), now=clock())
    heartbeat.job_finished(registry.sessions, "deliver_outbox", "host:1:aa", started_at=clock(), now=clock(),
                           error=None)
    clock.advance(seconds=59)
    fresh_status, codes, state = readyz()
    assert "scheduler_stale" not in codes
    assert state["leader"] == "host:1:aa" and state["jobs"]["deliver_outbox"]["last_ok"] is True
    assert {i["role"] for i in state["instances"]} == {"leader", "standby"}
    clock.advance(seconds=2)
    stale_status, codes, state = readyz()
    assert "scheduler_stale" in codes and state["stale"] is True
    assert stale_status == fresh_status == status  # an alert, never a readiness failure


def test_readyz_alerts_when_no_scheduler_shows_up_after_the_grace_period(app: Flask, client, registry: Registry,
                                                                         clock: FakeClock) -> None:
    status = client.get("/readyz").status_code  # 503 here: the test schema has no Alembic revision

    def codes() -> list[str]:
        response = client.get("/readyz")
        assert response.status_code == status  # an alert, never a readiness failure
        return [a["code"] for a in response.get_json()["alerts"]]

    assert codes() == []  # just started: the scheduler may be starting too
    app.extensions[STARTED_KEY] = time.monotonic() - SCHEDULER_GRACE.total_seconds() + 5
    assert codes() == []
    app.extensions[STARTED_KEY] = time.monotonic() - SCHEDULER_GRACE.total_seconds() - 1
    assert codes() == ["scheduler_missing"]
    detail = client.get("/readyz").get_json()["alerts"][0]["detail"]
    assert "verify-service scheduler" in detail and "no scheduler has recorded a heartbeat" in detail
    heartbeat.beat(registry.sessions, "host:1:aa", role="standby", started_at=clock(), now=clock())
    assert codes() == ["scheduler_stale"]  # one showed up, but nobody leads
    heartbeat.beat(registry.sessions, "host:1:aa", role="leader", started_at=clock(), now=clock())
    assert codes() == []


# ---------------------------------------------------------------- the lock, in process

@needs_pg
def test_only_one_holds_the_advisory_lock_and_it_passes_on_release() -> None:
    first, second = AdvisoryLock(PG_URL, TEST_KEY), AdvisoryLock(PG_URL, TEST_KEY)
    try:
        assert first.try_acquire() and first.held()
        assert not second.try_acquire() and not second.held()
        first.release()
        assert second.try_acquire() and second.held()
    finally:
        first.release()
        second.release()


@needs_pg
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_a_leader_whose_lock_connection_dies_stops_at_once(backend, app: Flask, registry: Registry) -> None:
    lock = AdvisoryLock(PG_URL, TEST_KEY)
    leadership = Leadership(app, lock, beat_seconds=30, poll_seconds=0.2)
    thread = threading.Thread(target=leadership.run, daemon=True)
    thread.start()
    engine = make_engine(PG_URL)
    try:
        assert wait_for(leadership.leading.is_set, 10)
        with engine.connect() as other:  # as if the network dropped: PostgreSQL ends the lock's session
            pid = lock._connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()  # type: ignore[union-attr]
            other.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        # The next job's guard notices (not the 30 s beat) and the scheduler is shut down.
        assert run_recorded(lambda app: pytest.fail("ran without the lock"), app, guard=leadership._guard) is None
        # It stepped down, and as nobody else holds the lock it took it again on a new connection.
        assert wait_for(lambda: leadership.terms == 2 and leadership.leading.is_set(), 10)
        assert lock.held()
    finally:
        leadership.stop()
        thread.join(10)
        engine.dispose()
    assert not thread.is_alive()


# ---------------------------------------------------------------- two real schedulers, kill -9

@pytest.fixture
def lead_db() -> Iterator[str]:
    """A database of its own, migrated with the real command, so the real lock key is free."""
    url = sa.make_url(PG_URL)
    name = f"{url.database}_lead"
    admin = make_engine(url.set(database="postgres").render_as_string(hide_password=False),
                        isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        if not connection.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).scalar():
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    lead_url = url.set(database=name).render_as_string(hide_password=False)
    engine = make_engine(lead_url)
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP SCHEMA public CASCADE")  # an empty database: `db upgrade` builds it
        connection.exec_driver_sql("CREATE SCHEMA public")
    engine.dispose()
    yield lead_url


def scheduler_env(url: str, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VERIFY_")}
    env.update(VERIFY_ENV="development", VERIFY_DATABASE_URL=url, VERIFY_INSTANCE_DIR=str(tmp_path / "instance"),
               VERIFY_SCHEDULER_BEAT_SECONDS="1", VERIFY_SCHEDULER_POLL_SECONDS="1",
               VERIFY_SCHEDULER_METRICS_PORT="0")  # two on one host: no exporter (test_scheduler_metrics.py has it)
    return env


def roles(url: str) -> dict[int, tuple[str, dt.datetime]]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.select(SchedulerHeartbeat.instance_id, SchedulerHeartbeat.role,
                                                SchedulerHeartbeat.last_beat_at)).all()
    finally:
        engine.dispose()
    return {int(instance.split(":")[1]): (role, beat) for instance, role, beat in rows}


def is_fresh_leader(url: str, pid: int) -> bool:
    role, beat = roles(url).get(pid, ("", dt.datetime.min.replace(tzinfo=dt.timezone.utc)))
    return role == "leader" and dt.datetime.now(dt.timezone.utc) - beat < dt.timedelta(seconds=3)


@pytest.mark.slow
@needs_pg
def test_the_standby_takes_over_within_30_seconds_of_a_kill_9(lead_db: str, tmp_path: Path) -> None:
    env = scheduler_env(lead_db, tmp_path)
    upgrade = subprocess.run([str(SCRIPT), "db", "upgrade"], env=env, capture_output=True, text=True, timeout=60,
                             check=False)
    assert upgrade.returncode == 0, upgrade.stderr
    processes: list[subprocess.Popen[str]] = []
    try:
        for name in ("a", "b"):
            with (tmp_path / f"{name}.log").open("w") as out:
                processes.append(subprocess.Popen([str(SCRIPT), "scheduler"], env=env, text=True, stdout=out,
                                                  stderr=subprocess.STDOUT, start_new_session=True))
            if name == "a":  # a leads first, b starts as its standby
                assert wait_for(lambda: is_fresh_leader(lead_db, processes[0].pid), 20, 0.2), \
                    (tmp_path / "a.log").read_text()
        leader, standby = processes
        assert wait_for(lambda: roles(lead_db).get(standby.pid, ("",))[0] == "standby", 15, 0.2), \
            (tmp_path / "b.log").read_text()
        assert roles(lead_db)[leader.pid][0] == "leader"
        os.kill(leader.pid, signal.SIGKILL)
        killed = time.monotonic()
        assert wait_for(lambda: is_fresh_leader(lead_db, standby.pid), 30, 0.1), (tmp_path / "b.log").read_text()
        takeover = time.monotonic() - killed
        print(f"takeover after kill -9: {takeover:.2f}s")
        assert takeover < 30, takeover
        engine = make_engine(lead_db)
        try:
            with engine.connect() as connection:
                state = heartbeat.read_state(sa.orm.Session(connection))
        finally:
            engine.dispose()
        assert state.leader is not None and int(state.leader.split(":")[1]) == standby.pid
        assert "scheduler starting with" in (tmp_path / "b.log").read_text()
        standby.send_signal(signal.SIGTERM)
        assert standby.wait(timeout=15) == 0
        assert standby.pid not in roles(lead_db)  # a clean stop removes its heartbeat row
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


# ---------------------------------------------------------------- two schedulers run one job at once

@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_two_schedulers_releasing_idle_claims_release_each_once(backend, app: Flask, registry: Registry,
                                                                clock: FakeClock) -> None:
    registry.meet = FakeMeetGateway()
    reviewer_ids = reviewers(registry.sessions, clock, 4)
    calls = [waiting_call(registry.sessions, clock, f"acc-{i}") for i in range(4)]
    for reviewer_id, call_id in zip(reviewer_ids, calls):
        with unit_of_work(registry.sessions) as session:
            decisions.claim_session(session, call_id, reviewer_id=reviewer_id, now=clock())
    clock.advance(minutes=registry.settings.claim_idle_minutes + 1)
    for _ in range(3):
        results = run_together([lambda: call_jobs.release_idle_claims(app)] * 2)
        assert all(not isinstance(r, Exception) for r in results), results
    with registry.sessions() as session:
        released = session.scalars(sa.select(AuditEntry.subject_id).where(
            AuditEntry.action == "session.released")).all()
    assert sorted(released) == sorted(calls)  # each released exactly once
