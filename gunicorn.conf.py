"""Production web processes: gunicorn -c gunicorn.conf.py "verify_service:create_app()".

The scheduler runs separately (``verify-service scheduler``) and serves its own
metrics (job runs) on ``VERIFY_SCHEDULER_METRICS_PORT``: scrape both.

Metrics: every worker writes its counters to files in ``PROMETHEUS_MULTIPROC_DIR``
(a fresh temporary directory unless the operator sets one), and ``/metrics``
merges them, whichever worker answers the scrape.
"""

import multiprocessing
import os
import shutil
import tempfile

bind = os.environ.get("VERIFY_BIND", "0.0.0.0:8000")
# One process per core, each with a few threads for the requests that wait on the network (Meet,
# sign-in providers). Requests are mostly CPU here (a primary-key read and JSON): more processes
# or threads than cores only queue them behind each other (with 2 x cores, p99 of the restrictions
# lookup was higher and its throughput lower; see README "Performance").
workers = int(os.environ.get("VERIFY_WEB_WORKERS", max(2, multiprocessing.cpu_count())))
worker_class = "gthread"
threads = int(os.environ.get("VERIFY_WEB_THREADS", "4"))
timeout = 30
graceful_timeout = 20
keepalive = 5
accesslog = "-"
# Redacts launch tokens and query strings; JSON lines when VERIFY_LOG_FORMAT (or VERIFY_ENV=production) says json.
logger_class = "verify_service.observability.access_log.RedactingLogger"
# No client address or referrer (personal data); the request id joins the line to the app's logs.
access_log_format = '%(t)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s" %({x-request-id}o)s'
# Fail fast at boot (bad settings) rather than in every worker.
preload_app = True

# Must be set before prometheus_client is first imported (the app is preloaded after this file).
_OWN_METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR" not in os.environ
if _OWN_METRICS_DIR:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="verify-metrics-")
else:  # the operator's directory: values of a previous run would be counted again
    for _name in os.listdir(os.environ["PROMETHEUS_MULTIPROC_DIR"]):
        if _name.endswith(".db"):
            os.remove(os.path.join(os.environ["PROMETHEUS_MULTIPROC_DIR"], _name))


def post_fork(server, worker):
    # Pooled connections must never cross a fork.
    from verify_service.registry import KEY

    worker.app.callable.extensions[KEY].engine.dispose(close=False)


def child_exit(server, worker):
    # A dead worker's live gauges must not be reported; its counters stay (they are totals).
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if _OWN_METRICS_DIR:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
