"""Apps for the sandbox's tests: the development and production apps the sandbox pages' tests compare (the
sandboxes exist only in the first), and an app served on a loopback port, as `make run` serves it, so the
sandbox and the real Google clients talk to each other over HTTP."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.serving import make_server

from tests.conftest import make_settings
from tests.support.smtp import free_port
from verify_service import create_app
from verify_service.registry import KEY


@contextlib.contextmanager
def development_and_production(database_url: str, tmp_path: Path) -> Iterator[tuple[Flask, Flask]]:
    """A development app and a production one (every production setting given) on ``database_url``."""
    development = create_app(make_settings(database_url, tmp_path / "dev", env="development"))
    production = create_app(make_settings(
        database_url, tmp_path / "prod", env="production", base_url="https://verify.example",
        smtp_url="smtp://mailer:secret@smtp.corp.example:587", meet_backend="google",
        google_service_account_file="/run/secrets/google-key.json", meet_host_users=("host@corp.example",),
        account_service_webhook_url="https://accounts.example/hooks/verify"))
    try:
        yield development, production
    finally:
        for made in (development, production):
            made.extensions[KEY].engine.dispose()


@contextlib.contextmanager
def served(database_url: str, tmp_path: Path, clock: Callable[..., Any], **settings: Any) -> Iterator[Flask]:
    """The app (sandbox Meet, ``clock``, ``settings``) served by a threaded server on a free loopback port, which
    its base URL names; stopped and its engine disposed afterwards."""
    port = free_port()
    app = create_app(make_settings(database_url, tmp_path, base_url=f"http://127.0.0.1:{port}", **settings))
    app.extensions[KEY].clock = clock
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield app
    finally:
        server.shutdown()
        thread.join(timeout=10)
        app.extensions[KEY].engine.dispose()
