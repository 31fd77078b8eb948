"""Prometheus metrics of the job runs, counted in the process that runs the jobs.

``verify-service run``: the app's ``/metrics``. ``verify-service scheduler``:
its own exporter on ``VERIFY_SCHEDULER_METRICS_PORT`` (``verify_service/cli/processes.py``).
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

JOB_RUNS = Counter("verify_job_runs_total", "Job runs by outcome (ok, error, skipped: not the leader).",
                   ["job", "outcome"])
JOB_DURATION = Histogram("verify_job_duration_seconds", "How long job runs take.", ["job"],
                         buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300))
