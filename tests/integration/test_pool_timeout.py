"""Every pooled connection busy: a request waits ``db_pool_timeout_seconds``, then answers 503 (both backends).

The app's pool is one connection with no overflow; another thread holds that
connection, as a slow request or a burst would.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from tests.conftest import Api, FakeClock, assert_problem, make_settings
from verify_service import create_app, db
from verify_service.registry import KEY

POOL_TIMEOUT = 1


@pytest.fixture
def small_pool_app(database_url: str, tmp_path: Path, clock: FakeClock,
                   monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    """The app as create_app builds it, but with a pool of one connection and no overflow."""
    make_engine = db.make_engine

    def one_connection(url: str, **kwargs: Any) -> sa.Engine:
        return make_engine(url, **{"pool_size": 1, "max_overflow": 0, **kwargs})

    monkeypatch.setattr(db, "make_engine", one_connection)
    app = create_app(make_settings(database_url, tmp_path, db_pool_timeout_seconds=POOL_TIMEOUT))
    registry = app.extensions[KEY]
    registry.clock = clock
    yield app
    registry.engine.dispose()


class HeldConnection:
    """The pool's only connection, checked out by another thread until :meth:`release`."""

    def __init__(self, engine: sa.Engine) -> None:
        self._held = threading.Event()
        self._release = threading.Event()
        self._thread = threading.Thread(target=self._hold, args=(engine,), daemon=True)
        self._thread.start()
        assert self._held.wait(10), "the other thread could not check the connection out"

    def _hold(self, engine: sa.Engine) -> None:
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
            self._held.set()
            self._release.wait(30)

    def release(self) -> None:
        self._release.set()
        self._thread.join(10)
        assert not self._thread.is_alive()


def test_an_exhausted_pool_answers_503_after_the_pool_timeout(small_pool_app: Flask,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    registry = small_pool_app.extensions[KEY]
    assert registry.engine.pool.timeout() == POOL_TIMEOUT  # the setting reached the engine
    api = Api(small_pool_app.test_client())
    assert api.put_account("x").status_code == 201
    held = HeldConnection(registry.engine)
    try:
        with caplog.at_level(logging.WARNING, logger="verify_service.errors"):
            started = time.monotonic()
            response = api.restrictions("x")
            waited = time.monotonic() - started
        body = assert_problem(response, 503, "database_unavailable")
        assert response.headers["Retry-After"] == "5" and "try again" in body["detail"]
        assert POOL_TIMEOUT * 0.9 <= waited < POOL_TIMEOUT + 3  # the setting's wait, not SQLAlchemy's 30 s
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "pool exhausted" in warnings[0] and "/restrictions" in warnings[0]
        assert "SELECT" not in warnings[0] and "accounts.id" not in warnings[0]  # no SQL, no parameters
    finally:
        held.release()
    answer = api.restrictions("x")  # the connection is back in the pool
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.get_json()["account_id"] == "x"


def test_an_exhausted_pool_shows_browsers_the_503_page(small_pool_app: Flask) -> None:
    client = small_pool_app.test_client()
    held = HeldConnection(small_pool_app.extensions[KEY].engine)
    try:
        page = client.get("/verify/launch/some-token", headers={"Accept": "text/html"})
    finally:
        held.release()
    assert page.status_code == 503 and page.mimetype == "text/html"
    assert page.headers["Retry-After"] == "5"
    text = page.get_data(as_text=True)
    assert "try again in a few seconds" in text and "database_unavailable" in text
    assert "Idempotency-Key" not in text  # the API's wording is not the freelancer's
    assert client.get("/verify/launch/some-token").status_code == 410  # an unknown link, once a connection is free
