"""Which scheduler process runs the jobs: leader election and the heartbeat.

See docs/architecture.md, 'The scheduler'.

PostgreSQL: every scheduler process (``verify-service scheduler``, and the
scheduler inside ``verify-service run``) tries ``pg_try_advisory_lock`` on a
dedicated connection held for as long as it leads. The lock is session-level,
so it dies with that connection: when a leader is killed (``kill -9``
included) its socket closes and PostgreSQL drops the lock; a standby, polling
every ``poll_seconds`` (5 s), takes it on its next try. If the leader's host
or network vanishes instead, TCP keepalives set on both ends of the lock
connection (server: ``tcp_keepalives_*`` for the session; client: libpq
``keepalives*`` and ``tcp_user_timeout``) end it within ~10 s, well under the
30 s takeover promise. The leader checks that its lock connection is still
alive every beat and before every job run; once it is not, it stops the
scheduler at once and goes back to standby. During the few seconds in which a
cut-off old leader may not know yet, every job claims its rows with
``FOR UPDATE SKIP LOCKED``, so two active schedulers still never double an effect.

SQLite: no lock. The embedded default is one process (``verify-service run``),
and SQLite cannot be shared between machines; running a separate
``verify-service scheduler`` next to ``run`` on SQLite would run jobs twice
(their claims still serialise through SQLite's write lock).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from collections.abc import Mapping
from typing import Protocol

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.pool import NullPool

from jobs import create_scheduler, register_jobs
from jobs.runner import INSTANCE_KEY
from verify_service.ops import heartbeat
from verify_service.ops.models import LEADER, STANDBY
from verify_service.registry import KEY, Registry

log = logging.getLogger("jobs.leader")

# The advisory lock key every verify-service scheduler competes for ("verifysc" as a 64-bit integer).
LOCK_KEY = int.from_bytes(b"verifysc", "big") & 0x7FFF_FFFF_FFFF_FFFF
BEAT_SECONDS = 10.0
POLL_SECONDS = 5.0
# The lock connection notices a dead peer within ~10 s (5 s idle + 2 probes 2 s apart), both ways.
LOCK_CONNECT_ARGS = {
    "keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 2,
    "tcp_user_timeout": 10_000, "connect_timeout": 5,
    "options": "-c tcp_keepalives_idle=5 -c tcp_keepalives_interval=2 -c tcp_keepalives_count=2"
               " -c statement_timeout=5000",
}


class LeaderLock(Protocol):
    def try_acquire(self) -> bool: ...
    def held(self) -> bool: ...
    def release(self) -> None: ...


class NoLock:
    """SQLite: one process, so it always leads (see the module doc)."""

    def try_acquire(self) -> bool:
        return True

    def held(self) -> bool:
        return True

    def release(self) -> None:
        return None


class AdvisoryLock:
    """A PostgreSQL session-level advisory lock on a dedicated connection (thread-safe).

    No method raises on connection trouble: a lost connection means "not held".
    """

    def __init__(self, url: str, key: int = LOCK_KEY) -> None:
        self.key = key
        self._engine = sa.create_engine(url, poolclass=NullPool, connect_args=LOCK_CONNECT_ARGS)
        self._connection: sa.Connection | None = None
        self._mutex = threading.Lock()

    def _drop(self) -> None:
        if self._connection is not None:
            try:
                self._connection.invalidate()
                self._connection.close()
            except sa.exc.SQLAlchemyError:  # the connection is already gone: nothing to clean up
                log.debug("closing the lost lock connection failed", exc_info=True)
        self._connection = None

    def try_acquire(self) -> bool:
        with self._mutex:
            try:
                if self._connection is None:
                    self._connection = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
                return bool(self._connection.execute(sa.text("SELECT pg_try_advisory_lock(:key)"),
                                                     {"key": self.key}).scalar())
            except sa.exc.SQLAlchemyError as exc:
                log.warning("leader lock: PostgreSQL unreachable (%s); staying standby", type(exc).__name__)
                self._drop()
                return False

    def held(self) -> bool:
        """The lock connection answers and PostgreSQL still lists the lock as ours."""
        with self._mutex:
            if self._connection is None:
                return False
            try:
                return bool(self._connection.execute(sa.text(
                    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
                    " AND pid = pg_backend_pid() AND ((classid::bigint << 32) | objid::bigint) = :key)"),
                    {"key": self.key}).scalar())
            except sa.exc.SQLAlchemyError as exc:
                log.error("leader lock connection lost (%s)", type(exc).__name__)
                self._drop()
                return False

    def release(self) -> None:
        with self._mutex:
            if self._connection is not None:
                try:
                    self._connection.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
                except sa.exc.SQLAlchemyError:  # closing the connection below frees it anyway
                    pass
            self._drop()
        self._engine.dispose()


def lock_for(url: str) -> LeaderLock:
    """The advisory lock on PostgreSQL, no lock on SQLite."""
    return AdvisoryLock(url) if sa.make_url(url).get_backend_name() == "postgresql" else NoLock()


def timings_from_environ(environ: Mapping[str, str] = os.environ) -> tuple[float, float]:
    """(beat, poll) seconds: ``VERIFY_SCHEDULER_BEAT_SECONDS`` / ``_POLL_SECONDS`` or 10 / 5.

    Raises: ValueError for a value that is not a positive number.
    """
    beat = float(environ.get("VERIFY_SCHEDULER_BEAT_SECONDS") or BEAT_SECONDS)
    poll = float(environ.get("VERIFY_SCHEDULER_POLL_SECONDS") or POLL_SECONDS)
    if beat <= 0 or poll <= 0:
        raise ValueError("scheduler beat and poll seconds must be positive")
    return beat, poll


class Leadership:
    """Standby until the lock is ours, then run every job (a background APScheduler) while it stays ours."""

    def __init__(self, app: Flask, lock: LeaderLock, *, beat_seconds: float = BEAT_SECONDS,
                 poll_seconds: float = POLL_SECONDS, instance_id: str | None = None,
                 announce: str = "scheduler starting") -> None:
        self.app, self.lock, self.announce = app, lock, announce
        self.beat_seconds, self.poll_seconds = beat_seconds, poll_seconds
        self.instance_id = instance_id or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.registry: Registry = app.extensions[KEY]
        self.started_at = self.registry.now()
        self.leading = threading.Event()
        self.terms = 0  # how many times this process became the leader
        self._stop = threading.Event()
        self._wake = threading.Event()
        app.extensions[INSTANCE_KEY] = self.instance_id

    def stop(self) -> None:
        """Ask :meth:`run` to return (safe from a signal handler or another thread)."""
        self._stop.set()
        self._wake.set()

    def _beat(self, role: str) -> None:
        try:
            heartbeat.beat(self.registry.sessions, self.instance_id, role=role, started_at=self.started_at,
                           now=self.registry.now())
        except Exception:  # the database is down: the lock check decides what happens next
            log.warning("scheduler heartbeat (%s) could not be written", role, exc_info=True)

    def _guard(self) -> bool:
        """Called before every job run; a lost lock wakes the leader loop at once."""
        if self.lock.held():
            return True
        self._wake.set()
        return False

    def run(self) -> None:
        """Alternate standby and leading until :meth:`stop`. Raises nothing of its own."""
        log.info("scheduler %s standing by (poll %.1fs, beat %.1fs)", self.instance_id, self.poll_seconds,
                 self.beat_seconds)
        try:
            while not self._stop.is_set():
                if self.lock.try_acquire():
                    self._lead()
                else:
                    self._beat(STANDBY)
                    self._stop.wait(self.poll_seconds)
        finally:
            self.lock.release()
            try:
                heartbeat.forget(self.registry.sessions, self.instance_id)
            except Exception:  # the row goes stale and is forgotten by a later leader
                log.warning("could not remove this scheduler's heartbeat row", exc_info=True)

    def _lead(self) -> None:
        scheduler = create_scheduler(background=True)
        register_jobs(scheduler, self.app, guard=self._guard, catch_up=True)  # the predecessor's backlog now
        scheduler.start()
        self.terms += 1
        self.leading.set()
        log.info("%s with %d jobs: %s leads", self.announce, len(scheduler.get_jobs()), self.instance_id)
        try:
            while not self._stop.is_set():
                if not self.lock.held():
                    log.error("scheduler %s lost the leader lock: jobs stopped, back to standby", self.instance_id)
                    break
                self._beat(LEADER)
                self._wake.wait(self.beat_seconds)
                self._wake.clear()
        finally:
            self.leading.clear()
            scheduler.shutdown(wait=False)
        if not self._stop.is_set():
            self._beat(STANDBY)


def start_in_thread(app: Flask) -> Leadership:
    """The scheduler of ``verify-service run``: the leader loop on a daemon thread.

    Raises: ValueError for bad ``VERIFY_SCHEDULER_*_SECONDS`` values.
    """
    beat, poll = timings_from_environ()
    leadership = Leadership(app, lock_for(app.extensions[KEY].settings.database_url), beat_seconds=beat,
                            poll_seconds=poll, announce="embedded scheduler started")
    threading.Thread(target=leadership.run, name="scheduler-leader", daemon=True).start()
    return leadership
