"""Database engine, declarative base, and the unit of work.

One rule runs through the service: services ``flush()``; the boundary (a web
request, a job run, a CLI command) opens one unit of work and commits once.

Concurrency. Services that change an account lock its row first
(:func:`lock_account`): ``SELECT … FOR UPDATE`` on PostgreSQL. SQLite has no
row locks, so a *write* unit of work there starts with ``BEGIN IMMEDIATE``,
which takes the database's write lock before the first read: two writers can
never both read version *n* and both write *n+1*.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Execution option a write unit of work sets on its connection (see module doc).
WRITE_OPTION = "verify_write"
# PostgreSQL: how long opening a connection may take (libpq ``connect_timeout``).
CONNECT_TIMEOUT_SECONDS = 5


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(sa.types.TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on every backend.

    PostgreSQL stores ``timestamptz``; SQLite stores naive UTC text. Python
    always sees aware UTC values, and naive input is refused (it is a bug).
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(dt.timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)


def text_enum(enum_cls: type, name: str) -> sa.Enum:
    """An enum stored as text with a CHECK constraint.

    Portable across SQLite and PostgreSQL, and adding a value is a plain
    migration rather than an ``ALTER TYPE``.
    """
    return sa.Enum(enum_cls, name=name, native_enum=False, create_constraint=True, length=32,
                   values_callable=lambda members: [m.value for m in members])


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create the engine for ``url`` with the per-backend settings the service relies on."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs)
        _configure_sqlite(engine)
        return engine
    # A restarted server leaves dead connections in the pool: each is pinged before use and replaced.
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    # An unreachable server (not a refusing one) must not hold a request past gunicorn's worker timeout:
    # the request fails fast with a 503 instead (see errors.database_error_response).
    kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_SECONDS, **kwargs.get("connect_args", {})}
    return sa.create_engine(url, **kwargs)


def _configure_sqlite(engine: Engine) -> None:
    # SQLAlchemy's documented recipe: switch off pysqlite's own transaction
    # handling and emit BEGIN ourselves, so a write transaction can be IMMEDIATE.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        immediate = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False, autoflush=True)


def begin_write(session: Session) -> None:
    """Mark ``session``'s transaction as a writer; must run before its first statement."""
    session.connection(execution_options={WRITE_OPTION: True})


@contextlib.contextmanager
def unit_of_work(factory: sessionmaker[Session], *, write: bool = True) -> Iterator[Session]:
    """One transaction: commit when the block ends normally, roll back on any error."""
    session = factory()
    try:
        if write:
            begin_write(session)
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def for_update(session: Session, stmt: sa.Select[Any]) -> sa.Select[Any]:
    """``stmt`` with ``FOR UPDATE`` where the backend has row locks (SQLite relies on BEGIN IMMEDIATE)."""
    if session.get_bind().dialect.name == "postgresql":
        return stmt.with_for_update()
    return stmt
