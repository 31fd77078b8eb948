"""Database engine, declarative base, and the unit of work.

One rule runs through the service (docs/architecture.md, 'Unit of work'):
**services flush; the boundary commits once.** A service takes the
``Session`` it is given, changes rows, ``flush()``es when it needs ids or
constraint checks, and never commits or rolls back. The boundary that
called it opens the transaction and ends it, once:

* an API request: ``api/boundary.py``'s ``api_write`` (one write transaction,
  committed at the end, with the Idempotency-Key record in it);
* a browser page (and the account service's webhook): ``verify_service.pages``
  — the page boundary. A page reads in a read transaction (no write lock);
  one that changes something starts its write transaction with
  ``pages.write()``; the boundary commits once when the page answers, and
  rolls back when it raises or refuses (a 4xx), unless the page said
  ``pages.keep_on_refusal(why)`` (an audited refusal, a failed attempt that
  counts on the sign-in throttle);
* a job run: ``jobs/runner.py``'s ``job_unit``;
* a CLI command: :func:`unit_of_work`.

**Workflows** are the one named exception. A workflow calls Google (Meet,
Calendar) or another service between its database steps, and no transaction
may stay open across such a call (it would hold the write lock, or row locks,
for as long as Google takes). So a workflow takes a ``sessionmaker`` instead
of a ``Session`` and opens its own short units (:func:`unit_of_work`), each
committed before the call out. Workflows are marked :func:`workflow` (a
declarative mark: it changes nothing about the call) and say so in their
docstring ("Workflow: ..."); a page calls one through
``pages.run_workflow``, which refuses to while the page holds a write
transaction and ends the page's read first. Examples: starting a call
(``freelancer/journey.py``), creating its meeting (``calls/meetings.py``),
claiming and deciding (``review/claims.py``: they ask Meet for attendance),
booking (``calls/booking.py``), calendar invites (``calls/invites.py``).

Concurrency. Services that change an account lock its row first
(:func:`lock_account`): ``SELECT … FOR UPDATE`` on PostgreSQL. SQLite has no
row locks, so a *write* unit of work there starts with ``BEGIN IMMEDIATE``,
which takes the database's write lock before the first read: two writers can
never both read version *n* and both write *n+1*. A *read* starts with a
deferred ``BEGIN`` and never takes the write lock (in WAL mode readers and
the writer do not wait for each other). A read transaction is never turned
into a write one: on SQLite (WAL) the first write of a deferred transaction
fails with ``SQLITE_BUSY_SNAPSHOT`` when another writer committed since the
read began. A read page's small bookkeeping writes (the idle clock of a
session, claim activity) therefore run as a separate short write unit, only
when due (``pages.short_write``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
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
# Execution option: how long (seconds) a write unit waits for the write lock (SQLite) or a row lock
# (PostgreSQL) before giving up; without it, SQLite's busy timeout (30 s) and no limit on PostgreSQL.
LOCK_WAIT_OPTION = "verify_lock_wait"
# PostgreSQL's SQLSTATE for "lock_timeout passed" (lock_not_available).
_PG_LOCK_NOT_AVAILABLE = "55P03"
# PostgreSQL: how long opening a connection may take (libpq ``connect_timeout``).
CONNECT_TIMEOUT_SECONDS = 5
# PostgreSQL: a pooled connection idle for longer than this is pinged before it is handed out.
IDLE_PING_SECONDS = 10.0
_IDLE_SINCE = "verify_idle_since"  # key in a pool record's info: when the connection was checked in


T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])
WORKFLOW_MARK = "__verify_workflow__"


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
    """Create the engine for ``url`` with the per-backend settings the service relies on.

    ``pool_timeout`` (seconds) bounds how long a checkout waits while every pooled connection is busy;
    past it the checkout raises ``sqlalchemy.exc.TimeoutError``, which a request answers with a 503
    (errors.pool_timeout_response). The app passes ``Settings.db_pool_timeout_seconds``.

    A failed statement's error message (and SQLAlchemy's own statement log) leaves its parameters out:
    they are personal data (an email typed into a form), and the message ends up in the log with the
    traceback. The statement itself, with its placeholders, stays for debugging.
    """
    kwargs["hide_parameters"] = True
    if url.startswith("sqlite"):
        if _sqlite_in_memory(sa.make_url(url)):
            # One connection per thread (SingletonThreadPool): a checkout never waits, and that
            # pool refuses the argument.
            kwargs.pop("pool_timeout", None)
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs)
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    # An unreachable server (not a refusing one) must not hold a request past gunicorn's worker timeout:
    # the request fails fast with a 503 instead (see errors.database_error_response).
    kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_SECONDS, **kwargs.get("connect_args", {})}
    engine = sa.create_engine(url, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        _ping_idle_connections(engine)
    return engine


def _ping_idle_connections(engine: Engine) -> None:
    """Ping a pooled connection before use when it has been idle for ``IDLE_PING_SECONDS``; replace it if dead.

    Idle connections are the ones a restarted server, or a firewall or proxy that drops quiet
    connections, leaves dead in the pool. A busy connection is not pinged: SQLAlchemy's
    ``pool_pre_ping`` pings on every checkout, which doubled the round trips of the restrictions
    lookup and cost it about 150 µs of CPU. A busy connection that died anyway fails its one request
    with a 503 (errors.database_error_response), and SQLAlchemy then retires every connection
    pooled before it, so the next requests get fresh ones. Raising ``DisconnectionError`` from a
    checkout listener is the pool's documented way to say "discard this one and check out another".
    """

    @event.listens_for(engine.pool, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine.pool, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.pop(_IDLE_SINCE, None)
        if idle_since is None or time.monotonic() - idle_since < IDLE_PING_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            raise sa.exc.DisconnectionError(f"an idle pooled connection is dead: {type(exc).__name__}") from exc


def _sqlite_in_memory(url: sa.URL) -> bool:
    return url.database in (None, "", ":memory:") or url.query.get("mode") == "memory"


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
        options = connection.get_execution_options()
        if not options.get(WRITE_OPTION, False):
            connection.exec_driver_sql("BEGIN")
            return
        wait = options.get(LOCK_WAIT_OPTION)
        if wait is None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
            return
        # Wait at most ``wait`` for the write lock (then "database is locked"), and only for this BEGIN:
        # the connection's own busy timeout is back as soon as the lock is held (or not).
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            previous = int(cursor.execute("PRAGMA busy_timeout").fetchone()[0])
            cursor.execute(f"PRAGMA busy_timeout={max(0, int(wait * 1000))}")
            try:
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            finally:
                cursor.execute(f"PRAGMA busy_timeout={previous}")
        finally:
            cursor.close()


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False, autoflush=True)


def begin_write(db: Session, *, lock_wait: float | None = None) -> None:
    """Mark ``session``'s transaction as a writer; must run before its first statement.

    ``lock_wait`` (seconds) bounds the wait for a lock: SQLite's write lock at ``BEGIN IMMEDIATE``,
    PostgreSQL's row locks (``SET LOCAL lock_timeout``). Past it the statement fails with an
    ``OperationalError`` that :func:`lock_busy` recognises.
    """
    if lock_wait is None:
        db.connection(execution_options={WRITE_OPTION: True})
        return
    connection = db.connection(execution_options={WRITE_OPTION: True, LOCK_WAIT_OPTION: lock_wait})
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SET LOCAL lock_timeout = '{max(1, int(lock_wait * 1000))}ms'")


def lock_busy(error: BaseException) -> bool:
    """Whether ``error`` is a lock wait that ran out (SQLite ``SQLITE_BUSY``, PostgreSQL ``lock_not_available``)."""
    if not isinstance(error, sa.exc.OperationalError):
        return False
    orig = error.orig
    if getattr(orig, "sqlite_errorcode", None) is not None:
        return orig.sqlite_errorcode & 0xFF == 5  # type: ignore[union-attr]  (SQLITE_BUSY and its extended codes)
    return getattr(orig, "sqlstate", None) == _PG_LOCK_NOT_AVAILABLE


@contextlib.contextmanager
def unit_of_work(factory: sessionmaker[Session], *, write: bool = True,
                 lock_wait: float | None = None) -> Iterator[Session]:
    """One transaction: commit when the block ends normally, roll back on any error.

    The boundary of a CLI command, and of each short step of a :func:`workflow`. A write unit takes
    the write lock before its first statement (SQLite: ``BEGIN IMMEDIATE``); ``lock_wait`` bounds the
    wait for it (see :func:`begin_write`).
    """
    session = factory()
    try:
        if write:
            begin_write(session, lock_wait=lock_wait)
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def workflow(fn: F) -> F:
    """Mark ``fn`` as a workflow: it takes a ``sessionmaker`` and opens its own short units (see module doc).

    Purely declarative: the call is unchanged. ``pages.run_workflow`` accepts only marked functions, and
    tests/functional/test_page_boundary.py allows ``unit_of_work`` / ``commit`` / ``rollback`` in
    marked functions only (and in the boundaries themselves).
    """
    setattr(fn, WORKFLOW_MARK, True)
    return fn


def is_workflow(fn: Callable[..., Any]) -> bool:
    return bool(getattr(fn, WORKFLOW_MARK, False))


def upsert_insert(db: Session, model: Any) -> Any:
    """``INSERT`` into ``model`` in the session's dialect, which has ``on_conflict_do_nothing`` / ``_do_update``.

    PostgreSQL and SQLite spell ``ON CONFLICT`` alike, but SQLAlchemy keeps the construct per dialect.
    """
    dialects = {"postgresql": postgresql, "sqlite": sqlite}
    return dialects[db.get_bind().dialect.name].insert(model)


def for_update(db: Session, stmt: sa.Select[Any]) -> sa.Select[Any]:
    """``stmt`` with ``FOR UPDATE`` where the backend has row locks (SQLite relies on BEGIN IMMEDIATE)."""
    if db.get_bind().dialect.name == "postgresql":
        return stmt.with_for_update()
    return stmt


def run_read(engine: Engine, read: Callable[[sa.Connection], T]) -> T:
    """``read(connection)`` on a pooled connection, for reads of one statement each (no ORM session).

    Each statement is consistent on its own, so on PostgreSQL the connection is in autocommit:
    no BEGIN and ROLLBACK round trips. (SQLite keeps its transaction: its BEGIN recipe above
    relies on the driver's isolation setting, which AUTOCOMMIT would reset.) A read that met a
    dead connection runs once more on a fresh one: a read is safe to repeat, and after a database
    restart the pool's other connections are already retired (see ``_ping_idle_connections``).
    """
    try:
        with _reader(engine).connect() as connection:
            return read(connection)
    except sa.exc.DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
    with _reader(engine).connect() as connection:
        return read(connection)


@functools.lru_cache(maxsize=4)  # one engine per app (a few in tests); building one costs ~30 µs
def _reader(engine: Engine) -> Engine:
    if engine.dialect.name == "postgresql":
        return engine.execution_options(isolation_level="AUTOCOMMIT")  # the same pool
    return engine
