"""A separate ``verify-service scheduler`` serves its own /metrics (VERIFY_SCHEDULER_METRICS_PORT).

The job metrics live in the scheduler process, which has no web app: a real
scheduler runs against a migrated SQLite database and is scraped over HTTP.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.test_cli import SCRIPT
from tests.integration.test_make_run import _free_port
from verify_service.observability.metrics import start_exporter
from verify_service.settings import ConfigurationError, load_settings


def _job_samples(text: str) -> dict[tuple[str, str], float]:
    return {(sample.name, sample.labels.get("outcome", "")): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples
            if sample.labels.get("job") == "deliver_outbox"}


@pytest.mark.slow
def test_the_scheduler_process_serves_its_job_metrics(tmp_path: Path) -> None:
    port, shared = _free_port(), tmp_path / "gunicorn-metrics"
    shared.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VERIFY_", "PROMETHEUS_"))}
    env.update(VERIFY_ENV="development", VERIFY_DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
               VERIFY_INSTANCE_DIR=str(tmp_path / "instance"), VERIFY_SCHEDULER_METRICS_ADDR="127.0.0.1",
               VERIFY_SCHEDULER_METRICS_PORT=str(port), VERIFY_SCHEDULER_BEAT_SECONDS="1")
    upgrade = subprocess.run([str(SCRIPT), "db", "upgrade"], env=env, capture_output=True, text=True, timeout=60,
                             check=False)
    assert upgrade.returncode == 0, upgrade.stderr
    log = tmp_path / "scheduler.log"
    with log.open("w") as out:
        # gunicorn's directory, as an operator's shared environment might set it: the scheduler keeps out.
        process = subprocess.Popen([str(SCRIPT), "scheduler"], env={**env, "PROMETHEUS_MULTIPROC_DIR": str(shared)},
                                   text=True, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        samples: dict[tuple[str, str], float] = {}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and samples.get(("verify_job_runs_total", "ok"), 0) < 2:
            assert process.poll() is None, log.read_text()
            try:
                samples = _job_samples(requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text)
            except requests.ConnectionError:
                pass
            time.sleep(0.3)
        assert samples.get(("verify_job_runs_total", "ok"), 0) >= 2, log.read_text()  # deliver_outbox: every 2 s
        assert samples[("verify_job_duration_seconds_count", "")] >= 2
        assert list(shared.iterdir()) == []  # nothing for gunicorn to add up (or delete) in its directory
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert f"metrics exporter serving http://127.0.0.1:{port}/metrics" in log.read_text()


def test_a_taken_port_leaves_the_process_running_without_an_exporter(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with caplog.at_level(logging.ERROR):
            assert start_exporter("127.0.0.1", port) is None
    assert f"could not listen on 127.0.0.1:{port}" in caplog.text


def test_the_exporter_serves_this_process_metrics() -> None:
    server = start_exporter("127.0.0.1", _free_port())
    assert server is not None
    try:
        text = requests.get(f"http://127.0.0.1:{server.server_port}/metrics", timeout=5).text
        assert "# TYPE verify_job_runs_total counter" in text
    finally:
        server.shutdown()
        server.server_close()


def test_the_metrics_port_setting(tmp_path: Path) -> None:
    def port(value: str | None) -> int:
        environ = {"VERIFY_ENV": "testing", "VERIFY_INSTANCE_DIR": str(tmp_path)}
        if value is not None:
            environ["VERIFY_SCHEDULER_METRICS_PORT"] = value
        return load_settings(environ).scheduler_metrics_port

    assert (port(None), port(""), port("9100"), port("0")) == (9464, 9464, 9100, 0)
    for bad in ("-1", "65536", "http"):
        with pytest.raises(ConfigurationError, match="VERIFY_SCHEDULER_METRICS_PORT"):
            port(bad)
