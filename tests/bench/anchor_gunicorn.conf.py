"""gunicorn settings of the anchor app: the service's own server settings, none of its app hooks.

Read from gunicorn.conf.py itself (so both servers always run alike): bind,
workers, worker class, threads, timeouts, keep-alive, the access log and its
format, preloading. Left out: the service's logger class and hooks (they
reach into the service's app). Set PROMETHEUS_MULTIPROC_DIR (bench_restrictions.py
does), or reading gunicorn.conf.py makes a temporary metrics directory.
"""

import runpy
from pathlib import Path

_service = runpy.run_path(str(Path(__file__).resolve().parents[2] / "gunicorn.conf.py"))

bind = _service["bind"]
workers = _service["workers"]
worker_class = _service["worker_class"]
threads = _service["threads"]
timeout = _service["timeout"]
graceful_timeout = _service["graceful_timeout"]
keepalive = _service["keepalive"]
accesslog = _service["accesslog"]
access_log_format = _service["access_log_format"]
preload_app = _service["preload_app"]
