"""The development and production apps the sandbox pages' tests compare (the sandboxes exist only in the first)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from flask import Flask

from tests.conftest import make_settings
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
