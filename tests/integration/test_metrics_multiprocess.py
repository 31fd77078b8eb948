"""gunicorn with two workers (gunicorn.conf.py): /metrics adds up every worker's counts; access log redacted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.test_make_run import ROOT, _free_port

BIN = Path(sys.executable).parent  # the environment the tests run in
LAUNCH_TOKEN = "tok-" + "Z" * 40


class Gunicorn:
    def __init__(self, process: subprocess.Popen[bytes], base: str, log: Path, metrics_dir: Path) -> None:
        self.process, self.base, self.log, self.metrics_dir = process, base, log, metrics_dir

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def _environ(tmp_path: Path, port: int, metrics_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VERIFY_", "PROMETHEUS_"))}
    env.update(VERIFY_INSTANCE_DIR=str(tmp_path / "instance"),
               VERIFY_DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
               VERIFY_BIND=f"127.0.0.1:{port}", VERIFY_WEB_WORKERS="2", VERIFY_WEB_THREADS="2",
               VERIFY_LOG_FORMAT="json", PROMETHEUS_MULTIPROC_DIR=str(metrics_dir), PYTHONUNBUFFERED="1")
    return env


def _wait_until_serving(server: Gunicorn) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(f"gunicorn exited early:\n{server.text()}")
        try:
            if requests.get(f"{server.base}/healthz", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            time.sleep(0.2)
    raise AssertionError(f"gunicorn did not serve within 60 s:\n{server.text()}")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Gunicorn]:
    port, metrics_dir = _free_port(), tmp_path / "metrics"
    metrics_dir.mkdir()
    env = _environ(tmp_path, port, metrics_dir)
    subprocess.run([str(BIN / "verify-service"), "db", "upgrade"], cwd=ROOT, env=env, check=True,
                   capture_output=True, timeout=60)
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as out:
        process = subprocess.Popen([str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "verify_service:create_app()"],
                                   cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    running = Gunicorn(process, f"http://127.0.0.1:{port}", log, metrics_dir)
    try:
        _wait_until_serving(running)
        yield running
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _count(text: str, endpoint: str, status: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "verify_http_requests_total" and sample.labels == {
                    "endpoint": endpoint, "method": "GET", "status": status}:
                return sample.value
    return 0.0


def _get(url: str) -> int:
    with requests.Session() as http:  # a new connection each time, so both workers take some
        return http.get(url, timeout=10, headers={"Connection": "close"}).status_code


@pytest.mark.slow
def test_metrics_add_up_across_workers_and_the_access_log_is_redacted(server: Gunicorn) -> None:
    urls = [f"{server.base}/healthz"] * 40 + [f"{server.base}/no/such/path"] * 10 \
        + [f"{server.base}/verify/launch/{LAUNCH_TOKEN}?utm=secret-query"] * 2
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(_get, urls))
    assert statuses.count(200) == 40 and statuses.count(404) == 10
    pids = {p.name.split("_")[-1] for p in server.metrics_dir.glob("counter_*.db")}
    assert len(pids) >= 2, f"one worker took every request: {pids}"  # otherwise the sum proves nothing

    for _ in range(4):  # whichever worker answers the scrape sees every worker's counts
        text = requests.get(f"{server.base}/metrics", timeout=10).text
        assert _count(text, "health.healthz", "2xx") == 41  # + the readiness poll at start
        assert _count(text, "unmatched", "4xx") == 10
        assert "verify_outbox_pending" in text and "verify_waiting_sessions" in text

    time.sleep(0.5)  # the access log is written after the response
    log = server.text()
    assert LAUNCH_TOKEN not in log and "secret-query" not in log
    access = [json.loads(line) for line in log.splitlines()
              if line.startswith("{") and '"gunicorn.access"' in line]
    launch = [line for line in access if line["path"].startswith("/verify/launch/")]
    assert len(launch) == 2 and launch[0]["path"] == "/verify/launch/[redacted]"
    assert all(len(line["request_id"]) == 32 for line in launch)
