"""What the app holds for the lifetime of the process: settings, engine, session factory, clock, gateways."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from flask import current_app, g
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from verify_service.crypto import Keyring, attach
from verify_service.db import begin_write, utcnow
from verify_service.settings import Settings

if TYPE_CHECKING:
    from integrations.google_meet import MeetConfigurationError, MeetGateway
    from integrations.mail import Mailer
    from integrations.meet_events import MeetEventsGateway
    from verify_service.support.store import CatalogStore
    from verify_service.inbound.events import WebhookVerifier

KEY = "verify_service"


@dataclasses.dataclass
class Registry:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    # Injected so tests can move time (deadlines, expiries) without sleeping.
    clock: Callable[[], dt.datetime] = utcnow
    # Built on first use (see meet_gateway); tests inject a FakeMeetGateway.
    meet: MeetGateway | None = None
    # Built on first use (see meet_events_gateway); tests inject a FakeMeetEventsGateway.
    meet_events: MeetEventsGateway | None = None
    # Set by the support feature when it registers (support/blueprint.py); see catalog_store.
    catalogs: CatalogStore | None = None
    # Built on first use (see mailer); tests inject their own.
    mail: Mailer | None = None
    # Set by the inbound-webhooks feature when it registers (inbound/blueprint.py), from the settings,
    # so a malformed secret stops the app at start-up.
    inbound_verifier: WebhookVerifier | None = dataclasses.field(default=None, repr=False)
    # The keys of data at rest (sealing, throttle HMAC, audit checkpoints); every session of ``sessions``
    # carries it too, so services reach it through the session they take (crypto.keyring_of).
    keyring: Keyring = dataclasses.field(init=False, repr=False)
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        self.keyring = Keyring.from_settings(self.settings)
        attach(self.sessions, self.keyring)

    def now(self) -> dt.datetime:
        return self.clock()

    # The last Meet configuration error this process met that names no host user (None after a
    # success): /readyz shows it.
    meet_problem: str | None = dataclasses.field(default=None, init=False)
    # The last configuration error met acting as each host user (a suspended user, a revoked delegation),
    # by host; a host leaves once a call as it works again. Kept apart from meet_problem so that a job
    # that never called a broken host (nothing to do) cannot clear that host's problem.
    _meet_host_problems: dict[str, str] = dataclasses.field(default_factory=dict, init=False, repr=False)
    _problems_lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, init=False, repr=False)

    def note_meet(self, problem: str | None) -> None:
        """Record (or, with ``None``, clear) a Meet configuration error that names no host user."""
        self.meet_problem = problem

    def note_meet_host(self, host: str, problem: str | None) -> None:
        """Record the configuration error met acting as ``host``; ``None`` (a call as it worked) clears it."""
        with self._problems_lock:
            if problem is None:
                self._meet_host_problems.pop(host, None)
            else:
                self._meet_host_problems[host] = problem

    def note_meet_error(self, error: MeetConfigurationError) -> None:
        """Record a Meet configuration error a request or job met, so /readyz shows it at once.

        Against its host user when the error names one
        (:class:`~verify_service.calls.meetings.HostMisconfigured`, from
        ``prepare_meeting``), else as the general problem.
        """
        host = getattr(error, "host", None)
        if isinstance(host, str) and host:
            self.note_meet_host(host, str(error))
        else:
            self.note_meet(str(error))

    def meet_host_problems(self) -> dict[str, str]:
        """A copy of the current configuration errors by host user (empty when every host works)."""
        with self._problems_lock:
            return dict(self._meet_host_problems)

    def meet_gateway(self) -> MeetGateway:
        """The Meet gateway the settings choose, built once.

        Raises:
            MeetConfigurationError: the configured backend is not available.
        """
        from integrations import make_meet_gateway

        with self._lock:
            # One instance per app: the sandbox keeps its state in memory.
            if self.meet is None:
                self.meet = make_meet_gateway(self.settings)
            return self.meet

    def meet_events_gateway(self) -> MeetEventsGateway:
        """The Workspace Events gateway the settings choose (Google's API, or the sandbox's), built once.

        Raises:
            MeetConfigurationError: the configured backend is not available.
        """
        with self._lock:
            if self.meet_events is None:
                from integrations import make_meet_events_gateway

                self.meet_events = make_meet_events_gateway(self.settings)
            return self.meet_events

    def mailer(self) -> Mailer:
        """The mailer the settings choose (SMTP, or the sandbox mailbox when VERIFY_SMTP_URL is empty), built once.

        Raises:
            MailError: VERIFY_SMTP_URL is malformed.
        """
        from integrations.mail import make_mailer

        with self._lock:
            if self.mail is None:
                self.mail = make_mailer(self.settings, self.sessions, self.now)
            return self.mail

    def catalog_store(self) -> CatalogStore:
        """The release catalog of this app, read from its file and reloaded when it changes.

        Raises:
            RuntimeError: the support feature was not registered on this app.
        """
        if self.catalogs is None:
            raise RuntimeError("the release catalog is set when the support feature registers (create_app)")
        return self.catalogs


def registry() -> Registry:
    return current_app.extensions[KEY]


def db_session(*, write: bool = False) -> Session:
    """The request's session (one unit of work per request).

    A write session is marked before its first statement so that SQLite
    starts it with BEGIN IMMEDIATE (see :mod:`verify_service.db`). The API
    asks for it in ``api_write``; pages ask the page boundary
    (``verify_service.pages.write``), which ends the page's read first.
    """
    db: Session | None = g.get("_db_session")
    if db is None:
        db = registry().sessions()
        g._db_session = db
        if write:
            begin_write(db)
            g._db_write = True
    elif write and not g.get("_db_write"):
        raise RuntimeError("a read session was opened before the write session of this request")
    return db


def request_session() -> Session | None:
    """The request's session if the request opened one (the page boundary ends its transaction)."""
    return g.get("_db_session")


def begin_request_write() -> Session:
    """The request's session, its next transaction a write (SQLite: ``BEGIN IMMEDIATE`` before its first read).

    For the page boundary only (``verify_service.pages.write``), which has ended any read transaction
    of the request first: a read is never upgraded to a write (see :mod:`verify_service.db`).

    Raises:
        RuntimeError: the session is inside a transaction.
    """
    db = db_session()
    if db.in_transaction():
        raise RuntimeError("the request's read transaction must end before its write transaction begins")
    begin_write(db)
    g._db_write = True
    return db


def end_request_write() -> None:
    """The request's session is no longer in a write transaction (it was committed or rolled back)."""
    g.pop("_db_write", None)


def close_session(_exc: BaseException | None = None) -> None:
    session: Session | None = g.pop("_db_session", None)
    g.pop("_db_write", None)
    if session is not None:
        session.close()  # rolls back anything not committed
