"""Production web processes: gunicorn -c gunicorn.conf.py "verify_service:create_app()".

The scheduler runs separately (``verify-service scheduler``).
"""

import multiprocessing
import os

bind = os.environ.get("VERIFY_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("VERIFY_WEB_WORKERS", multiprocessing.cpu_count() * 2))
worker_class = "gthread"
threads = int(os.environ.get("VERIFY_WEB_THREADS", "4"))
timeout = 30
graceful_timeout = 20
keepalive = 5
accesslog = "-"
# Fail fast at boot (bad settings) rather than in every worker.
preload_app = True


def post_fork(server, worker):
    # Pooled connections must never cross a fork.
    from verify_service.registry import KEY

    worker.app.callable.extensions[KEY].engine.dispose(close=False)
