"""Shared fixtures.

Every database test runs against SQLite and, when ``VERIFY_TEST_DATABASE_URL``
is set, PostgreSQL (``test[sqlite]`` / ``test[postgresql]``). Without the
variable the PostgreSQL runs are skipped with a reason shown in the summary;
with ``CI=true`` a missing or unreachable PostgreSQL fails the run.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

import verify_service.models  # noqa: F401  (fills Base.metadata)
from verify_service import create_app
from verify_service.audit.models import HEAD_ROW_SQL
from verify_service.db import Base, make_engine, make_sessionmaker
from verify_service.registry import KEY, Registry
from verify_service.settings import Settings
from tests.support.receiver import Receiver

PG_URL = os.environ.get("VERIFY_TEST_DATABASE_URL", "")
IN_CI = os.environ.get("CI", "").lower() == "true"
API_KEY = "test-key-" + "x" * 32
OTHER_API_KEY = "rotated-key-" + "y" * 32
ACCOUNT_SERVICE_SECRET = "whsec_" + "C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
DATA_KEY = "HQfKzPv7wS2m4fJ1O0a8cXq9pE3rTbYuNdLkGhViW5U="  # a Fernet key (32 url-safe base64 bytes), tests only
PG_SKIP_REASON = ("PostgreSQL run skipped: set VERIFY_TEST_DATABASE_URL="
                  "postgresql+psycopg://postgres@127.0.0.1:5432/test to include it (CI does)")


def _postgres_problem() -> str | None:
    if not PG_URL:
        return "VERIFY_TEST_DATABASE_URL is not set"
    try:
        engine = make_engine(PG_URL, pool_size=1)
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # any driver error: unreachable
        return f"PostgreSQL at {PG_URL} is unreachable: {exc}"
    return None


def pytest_sessionstart(session: pytest.Session) -> None:
    if IN_CI:
        problem = _postgres_problem()
        if problem:
            pytest.exit(f"CI=true needs the PostgreSQL run, but {problem}", returncode=1)


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self.current = start or dt.datetime(2026, 11, 22, 9, 0, 0, tzinfo=dt.timezone.utc)

    def __call__(self) -> dt.datetime:
        return self.current

    def advance(self, **delta: float) -> dt.datetime:
        self.current += dt.timedelta(**delta)
        return self.current


# ---------------------------------------------------------------- databases

@pytest.fixture(scope="session")
def pg_engine() -> Iterator[sa.Engine]:
    """One PostgreSQL schema for the session, emptied after each test."""
    engine = make_engine(PG_URL)
    with engine.begin() as connection:
        # Start from an empty schema whatever an earlier run (perhaps of another revision,
        # with tables this one does not know) left behind.
        connection.exec_driver_sql("DROP SCHEMA IF EXISTS public CASCADE")
        connection.exec_driver_sql("CREATE SCHEMA public")
        Base.metadata.create_all(connection)
    yield engine
    engine.dispose()


def _truncate(engine: sa.Engine) -> None:
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        # The audit tables refuse TRUNCATE; the test cleanup acts as a replica (triggers off).
        connection.exec_driver_sql("SET LOCAL session_replication_role = replica")
        connection.exec_driver_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
        connection.exec_driver_sql(HEAD_ROW_SQL)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql" and not PG_URL:
        pytest.skip(PG_SKIP_REASON)
    return request.param


@pytest.fixture
def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A database with the current schema (create_all), empty at the start of the test."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'test.sqlite3'}"
        engine = make_engine(url)
        Base.metadata.create_all(engine)
        engine.dispose()
        yield url
        return
    engine = request.getfixturevalue("pg_engine")
    try:
        yield PG_URL
    finally:
        _truncate(engine)


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: sa.Engine) -> sessionmaker[Session]:
    return make_sessionmaker(engine)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


# ---------------------------------------------------------------- the app

def make_settings(database_url: str, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "env": "testing",
        "instance_dir": tmp_path / "instance",
        "database_url": database_url,
        "secret_key": "s" * 48,
        "api_keys": (API_KEY, OTHER_API_KEY),
        "inbound_webhook_secrets": ("whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",),
        "account_service_webhook_secret": ACCOUNT_SERVICE_SECRET,
        "identity_pepper": "pepper-" + "p" * 40,
        "data_keys": (DATA_KEY,),
        "audit_checkpoint_key": "checkpoint-" + "c" * 40,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def app(database_url: str, tmp_path: Path, clock: FakeClock) -> Iterator[Flask]:
    app = create_app(make_settings(database_url, tmp_path))
    registry: Registry = app.extensions[KEY]
    registry.clock = clock
    yield app
    registry.engine.dispose()


@pytest.fixture
def registry(app: Flask) -> Registry:
    return app.extensions[KEY]


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


class Api:
    """The account service's view of the API: authenticated JSON calls."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self.auth = {"Authorization": f"Bearer {API_KEY}"}

    def put_account(self, account_id: str, **profile: Any) -> Any:
        body = {"name": "Ana Lima", "email": "ana@example.com", "country": "PT", **profile}
        return self.client.put(f"/api/v1/accounts/{account_id}", json=body, headers=self.auth)

    def request_verification(self, account_id: str, body: dict[str, Any] | None = None,
                             key: str | None = None) -> Any:
        headers = dict(self.auth)
        if key is not None:
            headers["Idempotency-Key"] = key
        return self.client.post(f"/api/v1/accounts/{account_id}/verification-requests",
                                json=body if body is not None else {"reason": "new_account"}, headers=headers)

    def restrictions(self, account_id: str, etag: str | None = None) -> Any:
        headers = dict(self.auth)
        if etag is not None:
            headers["If-None-Match"] = etag
        return self.client.get(f"/api/v1/accounts/{account_id}/restrictions", headers=headers)


@pytest.fixture
def api(client: FlaskClient) -> Api:
    return Api(client)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A real webhook receiver on loopback, verifying with the account-service secret."""
    running = Receiver(ACCOUNT_SERVICE_SECRET)
    yield running
    running.stop()


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    """``response`` is an RFC 9457 problem with this status and code; returns its body."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.content_type == "application/problem+json"
    body = response.get_json()
    assert body["code"] == code and body["status"] == status
    assert body["type"] == f"/problems/{code}"
    return body
