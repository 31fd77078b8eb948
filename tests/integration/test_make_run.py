"""`make run` on a fresh instance directory, exercised over real HTTP on loopback.

This is the README's quickstart, step for step: the command migrates and
seeds the embedded SQLite database, prints the key and the demo reviewer,
and serves the API with the scheduler in the same process.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from jobs import MEET_EVENT_SCHEDULES
from tests.integration.test_jobs import EXPECTED_JOBS

ROOT = Path(__file__).resolve().parents[2]
# `make run` uses the environment the tests run in (VENV=…), never building one: no .venv/ appears in the tree.
BIN = Path(sys.executable).parent
MAKE_RUN = ["make", "--no-print-directory", f"VENV={BIN.parent}", "-o", str(BIN / "python"),
            "-o", str(BIN.parent / ".installed-run"), "run"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    def __init__(self, process: subprocess.Popen[bytes], base: str, log: Path) -> None:
        self.process = process
        self.base = base
        self.log = log

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_for(self, needle: str, seconds: float = 15) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if needle in self.text():
                return True
            time.sleep(0.1)
        return False


def _start(instance: Path) -> Server:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VERIFY_")}
    env.update(VERIFY_INSTANCE_DIR=str(instance), PYTHONUNBUFFERED="1")
    log = instance.parent / f"make-run-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen([*MAKE_RUN, f"PORT={port}"], cwd=ROOT, env=env,
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    server = Server(process, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"make run exited early:\n{server.text()}")
        try:
            if requests.get(f"{server.base}/healthz", timeout=1).status_code == 200:
                return server
        except requests.ConnectionError:
            time.sleep(0.2)
    _stop(server)
    raise AssertionError(f"make run did not serve within 90 s:\n{server.text()}")


def _stop(server: Server) -> None:
    os.killpg(server.process.pid, signal.SIGTERM)
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = _start(tmp_path / "instance")
    yield running
    _stop(running)


@pytest.mark.slow
def test_make_run_serves_the_quickstart_flow(server: Server, tmp_path: Path) -> None:
    banner = server.text()
    key = re.search(r"API key\s+(\S+)", banner).group(1)
    reviewer = re.search(r"Demo reviewer\s+(\S+) / (\S+)", banner)
    assert reviewer is not None and reviewer.group(1) == "demo.reviewer@example.com"
    assert "DEVELOPMENT SECRETS" in banner
    lead = re.search(r"Demo lead\s+(\S+) / (\S+)", banner)
    assert lead is not None and lead.group(1) == "demo.lead@example.com" and lead.group(2) != reviewer.group(2)
    assert f"Review         {server.base}/review" in banner
    receiver = f"{server.base}/sandbox/account-service"
    assert f"Webhooks       {receiver}   (the built-in sandbox account service" in banner
    assert (tmp_path / "instance" / "verify-service.sqlite3").exists()
    # Development with the sandbox turns Meet's events on: their two jobs run too.
    assert server.wait_for(f"embedded scheduler started with {len(EXPECTED_JOBS) + len(MEET_EVENT_SCHEDULES)} jobs")
    assert "Adding job tentatively" not in server.text() and "Added job" not in server.text()
    assert "Running job" not in server.text()  # APScheduler's two lines a run (every 2 s) stay out too

    # Meeting links and the sandbox Meet endpoints follow the port make run was given.
    assert f"Web            {server.base}/" in banner
    gateway_check = subprocess.run(
        [str(BIN / "verify-service"), "meet", "check"], capture_output=True, text=True, timeout=60,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("VERIFY_")},
             "VERIFY_INSTANCE_DIR": str(tmp_path / "instance"), "VERIFY_BASE_URL": server.base})
    assert gateway_check.returncode == 0, gateway_check.stderr

    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {key}"
    ready = http.get(f"{server.base}/readyz", timeout=5).json()
    assert ready["status"] == "ready" and "webhook_url_missing" not in {a["code"] for a in ready["alerts"]}
    # The demo account waits for its verification: the README's first curl shows a blocked account.
    demo = http.get(f"{server.base}/api/v1/accounts/demo-freelancer/restrictions", timeout=5)
    assert demo.status_code == 200 and demo.json()["blocked"] != []

    put = http.put(f"{server.base}/api/v1/accounts/fl-42", timeout=5,
                   json={"name": "Kofi Mensah", "email": "kofi@example.com", "country": "GH"})
    assert put.status_code == 201
    post = http.post(f"{server.base}/api/v1/accounts/fl-42/verification-requests", timeout=5,
                     json={"reason": "new_account", "place_hold": True}, headers={"Idempotency-Key": "q-1"})
    assert post.status_code == 201
    got = http.get(f"{server.base}/api/v1/accounts/fl-42/restrictions", timeout=5)
    assert got.status_code == 200
    assert got.json()["version"] == 1
    assert got.json()["blocked"] == ["submit_proposals", "change_profile_photo"]
    again = http.get(f"{server.base}/api/v1/accounts/fl-42/restrictions", timeout=5,
                     headers={"If-None-Match": got.headers["ETag"]})
    assert again.status_code == 304
    assert requests.get(f"{server.base}/api/v1/accounts/fl-42/restrictions", timeout=5).status_code == 401

    # The outbox delivered the events to the built-in receiver, which verified their signatures.
    deadline = time.monotonic() + 30
    while "fl-42" not in (page := requests.get(receiver, timeout=5).text) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert "verification.required" in page and "account.hold.placed" in page and "fl-42" in page
    assert "Valid — answered 204" in page and "Invalid — answered 401" not in page


@pytest.mark.slow
def test_make_run_is_idempotent_across_restarts(tmp_path: Path) -> None:
    """A second start reuses the database, the secrets and the demo data."""
    first = _start(tmp_path / "instance")
    key_first = re.search(r"API key\s+(\S+)", first.text()).group(1)
    _stop(first)
    second = _start(tmp_path / "instance")
    try:
        assert re.search(r"API key\s+(\S+)", second.text()).group(1) == key_first
        assert "account present, reviewer present" in second.text()
    finally:
        _stop(second)
