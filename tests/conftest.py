"""Shared fixtures.

Every database test runs against SQLite and, when ``VERIFY_TEST_DATABASE_URL``
is set, PostgreSQL (``test[sqlite]`` / ``test[postgresql]``). Without the
variable the PostgreSQL runs are skipped with a reason shown in the summary;
with ``CI=true`` a missing or unreachable PostgreSQL fails the run. Under
pytest-xdist (``make test``) each worker has a PostgreSQL database of its own
beside the given one (tests/support/parallel.py).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.routing import Rule

import verify_service.models  # noqa: F401  (fills Base.metadata)
from verify_service import create_app
from verify_service.audit.models import HEAD_ROW_SQL
from verify_service.db import Base, make_engine, make_sessionmaker
from verify_service.registry import KEY, Registry
from verify_service.settings import Settings
from tests.support.event_contract import check_emitted_events
from tests.support.parallel import WORKER, ensure_database, worker_database_url
from tests.support.receiver import Receiver
from tests.support.speed import (
    HasherSite, SharedTemplateCode, argon2_sites, cheap_stand_in, clear_hash_caches, shared_url_builders,
    sharing_compiled_sql,
)

# The database the run was given; an xdist worker uses a database of its own beside it (tests/support/parallel.py).
GIVEN_PG_URL = os.environ.get("VERIFY_TEST_DATABASE_URL", "")
PG_URL = worker_database_url(GIVEN_PG_URL)
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
    problem = None
    if WORKER and GIVEN_PG_URL:
        try:
            ensure_database(GIVEN_PG_URL, PG_URL)
        except Exception as exc:  # any driver error: outside CI the PostgreSQL tests report it themselves
            problem = f"the worker database for {PG_URL} could not be created: {exc}"
    if IN_CI:
        problem = problem or _postgres_problem()
        if problem:
            pytest.exit(f"CI=true needs the PostgreSQL run, but {problem}", returncode=1)


@pytest.hookimpl(trylast=True)  # after the hooks that add marks (tests/browser/conftest.py)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist the slow tests come first: handed out to the workers in turn, they run beside the
    quick ones, instead of ending the run alone on one worker. Otherwise the order stays as written."""
    if getattr(config.option, "numprocesses", None):
        items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: same order on every worker


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self.current = start or dt.datetime(2026, 11, 22, 9, 0, 0, tzinfo=dt.timezone.utc)

    def __call__(self) -> dt.datetime:
        return self.current

    def advance(self, **delta: float) -> dt.datetime:
        self.current += dt.timedelta(**delta)
        return self.current


# ---------------------------------------------------------------- set-up made cheap (tests/support/speed.py)

@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashing() -> Iterator[list[HasherSite]]:
    """Cheap argon2 parameters in every test (the production ones: ``real_password_hashing``)."""
    sites = argon2_sites()
    with pytest.MonkeyPatch.context() as patch:
        for site in sites:
            patch.setattr(site.module, site.attribute, cheap_stand_in(site.value))
        clear_hash_caches(sites)
        yield sites
    clear_hash_caches(sites)


@pytest.fixture
def real_password_hashing(cheap_password_hashing: list[HasherSite], monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The production argon2 hashers back in place for one test."""
    for site in cheap_password_hashing:
        monkeypatch.setattr(site.module, site.attribute, site.value)
    clear_hash_caches(cheap_password_hashing)
    yield
    clear_hash_caches(cheap_password_hashing)


@pytest.fixture(scope="session", autouse=True)
def shared_app_code() -> Iterator[None]:
    """Template code, URL builders and SQL compiled once a session instead of once an app (that is, a test)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Flask, "jinja_options", {**Flask.jinja_options, "bytecode_cache": SharedTemplateCode()})
        shared = shared_url_builders()
        if shared is not None:
            patch.setattr(Rule, "_compile_builder", shared)
        patch.setattr(sa, "create_engine", sharing_compiled_sql(sa.create_engine))
        yield


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


# Every sequence the tests moved (PostgreSQL), back to its start: ids begin at 1 in every test, as after create_all.
_RESTART_SEQUENCES = ("SELECT setval(format('%I.%I', schemaname, sequencename), start_value, false) "
                      "FROM pg_sequences WHERE schemaname = current_schema() AND last_value IS NOT NULL")


def _truncate(engine: sa.Engine) -> None:
    """Empty every table and restart every sequence: the state create_all left.

    DELETE rather than TRUNCATE: on a test's few rows it takes a few milliseconds, where a TRUNCATE
    of every table (new files for each) takes over 100 ms.
    """
    with engine.begin() as connection:
        # The audit tables refuse DELETE; the test cleanup acts as a replica (triggers, foreign keys' too, off).
        connection.exec_driver_sql("SET LOCAL session_replication_role = replica")
        for table in reversed(Base.metadata.sorted_tables):
            connection.exec_driver_sql(f"DELETE FROM {table.name}")
        connection.execute(sa.text(_RESTART_SEQUENCES)).all()
        connection.exec_driver_sql(HEAD_ROW_SQL)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql" and not PG_URL:
        pytest.skip(PG_SKIP_REASON)
    return request.param


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite file with the current schema (create_all), made once a session; tests get copies of it."""
    path = tmp_path_factory.mktemp("schema") / "template.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    Base.metadata.create_all(engine)
    engine.dispose()  # the last connection closed: the WAL is checkpointed into the file and removed
    assert not path.with_name(path.name + "-wal").exists()
    return path


def fresh_sqlite(template: Path, path: Path) -> str:
    """A copy of the schema template at ``path``; returns its URL."""
    shutil.copyfile(template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A database with the current schema (create_all), empty at the start of the test.

    Afterwards every event the test left in the outbox must fit the AsyncAPI document
    (tests/support/event_contract.py): a test that emits an event that does not fit fails at teardown.
    """
    if backend == "sqlite":
        url = fresh_sqlite(request.getfixturevalue("sqlite_template"), tmp_path / "test.sqlite3")
        yield url
        engine = make_engine(url)
        try:
            check_emitted_events(engine)
        finally:
            engine.dispose()
        return
    engine = request.getfixturevalue("pg_engine")
    try:
        yield PG_URL
        check_emitted_events(engine)
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
