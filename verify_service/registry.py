"""What the app holds for the lifetime of the process: settings, engine, session factory, clock."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable

from flask import current_app, g
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from verify_service.db import begin_write, utcnow
from verify_service.settings import Settings

KEY = "verify_service"


@dataclasses.dataclass
class Registry:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    # Injected so tests can move time (deadlines, expiries) without sleeping.
    clock: Callable[[], dt.datetime] = utcnow

    def now(self) -> dt.datetime:
        return self.clock()


def registry() -> Registry:
    return current_app.extensions[KEY]


def db_session(*, write: bool = False) -> Session:
    """The request's session (one unit of work per request).

    A write session is marked before its first statement so that SQLite
    starts it with BEGIN IMMEDIATE (see :mod:`verify_service.db`).
    """
    session: Session | None = g.get("_db_session")
    if session is None:
        session = registry().sessions()
        g._db_session = session
        if write:
            begin_write(session)
            g._db_write = True
    elif write and not g.get("_db_write"):
        raise RuntimeError("a read session was opened before the write session of this request")
    return session


def close_session(_exc: BaseException | None = None) -> None:
    session: Session | None = g.pop("_db_session", None)
    g.pop("_db_write", None)
    if session is not None:
        session.close()  # rolls back anything not committed
