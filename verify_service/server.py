"""The embedded server: gunicorn with one threaded worker that also runs the scheduler.

Production runs ``gunicorn "verify_service:create_app()"`` (``gunicorn.conf.py``)
and ``verify-service scheduler`` as separate processes instead.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from verify_service.registry import KEY

log = logging.getLogger("verify_service")


class EmbeddedServer(BaseApplication):  # type: ignore[misc]  (gunicorn is untyped)
    def __init__(self, app: Flask, options: dict[str, Any]) -> None:
        self.application = app
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for name, value in self.options.items():
            if name in self.cfg.settings:  # settings newer than the installed gunicorn are skipped
                self.cfg.set(name, value)

    def load(self) -> Flask:
        return self.application


def serve_embedded(app: Flask, *, host: str, port: int, threads: int) -> None:
    scheduler_box: dict[str, Any] = {}

    def post_worker_init(worker: Any) -> None:
        from jobs.leader import start_in_thread

        # Connections opened before the fork must not be shared with the worker.
        app.extensions[KEY].engine.dispose(close=False)
        scheduler_box["leadership"] = start_in_thread(app)
        from jobs import schedules

        log.info("embedded scheduler started with %d jobs (it runs them while it holds the leader lock)",
                 len(schedules(app.extensions[KEY].settings)))

    def worker_exit(server: Any, worker: Any) -> None:
        leadership = scheduler_box.get("leadership")
        if leadership is not None:
            leadership.stop()

    EmbeddedServer(app, {
        "bind": f"{host}:{port}",
        "workers": 1,
        "worker_class": "gthread",
        "threads": threads,
        "timeout": 60,
        "graceful_timeout": 10,
        "accesslog": "-",
        "logger_class": "verify_service.observability.access_log.RedactingLogger",  # no launch tokens in the log
        "post_worker_init": post_worker_init,
        "worker_exit": worker_exit,
        # One shared control socket under $HOME would stop two local instances running side by side.
        "control_socket_disable": True,
    }).run()
