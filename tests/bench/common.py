"""What bench_relay.py and bench_pages.py add to tests/bench/support.py: their database and an in-process app.

Not a benchmark itself (``make bench`` runs only ``bench_*.py``).
"""

from __future__ import annotations

import importlib.metadata
import os
from pathlib import Path

import sqlalchemy as sa

from tests.bench.support import machine_line, postgres_line, prepare_database
from verify_service import migrate
from verify_service.db import make_engine
from verify_service.settings import Settings

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_pages"


def database_url(given: str | None) -> str:
    """``--database-url``, else ``VERIFY_BENCH_DATABASE_URL``, else the local ``bench_pages`` database."""
    return given or os.environ.get("VERIFY_BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL


def prepared_engine(url: str) -> sa.Engine:
    """An engine on ``url``, the database created when missing and migrated (``verify-service db upgrade``)."""
    if sa.make_url(url).get_backend_name() == "postgresql":
        prepare_database(url)
        return make_engine(url)
    engine = make_engine(url)  # SQLite (the relay bench allows it): migrated in-process
    migrate.upgrade(engine)
    return engine


def describe_machine(url: str, packages: tuple[str, ...]) -> list[str]:
    """Lines naming the machine (with its load), the database server and the packages that matter."""
    versions = ", ".join(f"{name} {importlib.metadata.version(name)}" for name in packages)
    database = postgres_line(url) if sa.make_url(url).get_backend_name() == "postgresql" else f"database: {url}"
    return [machine_line(), f"packages: {versions}", database]


def bench_settings(database_url: str, instance_dir: Path, **overrides: object) -> Settings:
    """Settings for an in-process app on the bench database (fixed secrets: nothing here is real)."""
    values: dict[str, object] = {
        "env": "testing", "instance_dir": instance_dir, "database_url": database_url, "secret_key": "b" * 48,
        "api_keys": ("bench-key-" + "k" * 32,), "identity_pepper": "pepper-" + "p" * 40,
        "inbound_webhook_secrets": ("whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",),
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]
