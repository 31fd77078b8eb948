"""Dead pooled connections (PostgreSQL): idle ones are pinged and replaced, a read meeting a dead one runs again.

The server ends a pooled connection (``pg_terminate_backend``, as a restart or an
idle-connection reaper would) while it sits in the pool.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from verify_service import db

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)


def _pooled_backend_pid(engine: sa.Engine) -> int:
    """Open one connection, note its server process, and return it to the pool."""
    with engine.connect() as connection:
        return connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()


def _terminate(database_url: str, pid: int) -> None:
    killer = sa.create_engine(database_url, poolclass=sa.NullPool)
    with killer.connect() as connection:
        assert connection.exec_driver_sql(f"SELECT pg_terminate_backend({pid})").scalar_one()
    killer.dispose()


def _engine(database_url: str) -> sa.Engine:
    return db.make_engine(database_url, pool_size=1, max_overflow=0)  # the dead connection is the only one


def test_an_idle_dead_connection_is_pinged_and_replaced(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = _engine(database_url)
    dead = _pooled_backend_pid(engine)
    _terminate(database_url, dead)
    monkeypatch.setattr(db, "IDLE_PING_SECONDS", 0.0)  # every pooled connection counts as idle

    with engine.connect() as connection:  # no error: the ping found it dead and the pool opened another
        assert connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one() != dead
    engine.dispose()


def test_only_an_idle_connection_is_pinged(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = _engine(database_url)
    pings: list[object] = []
    ping = engine.dialect.do_ping
    monkeypatch.setattr(engine.dialect, "do_ping", lambda connection: pings.append(connection) or ping(connection))
    _pooled_backend_pid(engine)
    _pooled_backend_pid(engine)  # just checked in: handed out as it is, no round trip first
    assert pings == []
    monkeypatch.setattr(db, "IDLE_PING_SECONDS", 0.0)
    _pooled_backend_pid(engine)
    assert len(pings) == 1
    engine.dispose()


def test_a_read_on_a_dead_busy_connection_runs_again_on_a_fresh_one(database_url: str) -> None:
    engine = _engine(database_url)
    dead = _pooled_backend_pid(engine)
    _terminate(database_url, dead)
    attempts: list[int] = []

    def read(connection: sa.Connection) -> int:
        attempts.append(1)
        return connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()

    assert db.run_read(engine, read) != dead
    assert len(attempts) == 2  # the first met the dead connection
    engine.dispose()


def test_a_failing_read_that_is_not_a_disconnect_is_not_repeated(database_url: str) -> None:
    engine = _engine(database_url)
    attempts: list[int] = []

    def read(connection: sa.Connection) -> None:
        attempts.append(1)
        connection.exec_driver_sql("SELECT * FROM no_such_table")

    with pytest.raises(sa.exc.ProgrammingError):
        db.run_read(engine, read)
    assert len(attempts) == 1
    engine.dispose()


def test_reads_run_outside_a_transaction_and_leave_the_connection_as_they_found_it(database_url: str) -> None:
    engine = _engine(database_url)

    def read(connection: sa.Connection) -> tuple[bool, str]:
        connection.exec_driver_sql("SELECT 1")
        driver = connection.connection.driver_connection
        return driver.autocommit, driver.info.transaction_status.name

    assert db.run_read(engine, read) == (True, "IDLE")  # no BEGIN sent, no transaction left open
    with engine.connect() as connection:  # the pooled connection is back to transactions
        assert connection.connection.driver_connection.autocommit is False
    engine.dispose()
