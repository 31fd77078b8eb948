"""The page boundary: the one unit of work of every browser page (and of the account service's webhook).

Services flush; the boundary commits once (the rule of :mod:`verify_service.db`; docs/architecture.md,
'Unit of work'). :func:`page_unit` is that boundary for a page: ``staff_page`` and ``freelancer_page``
put every signed-in page in it, and the pages before sign-in (the sign-in steps, setup links, launch
links) and the inbound webhook are decorated with it directly.

* **Reads.** A page starts in a read transaction (SQLite: a deferred ``BEGIN``). It never takes the
  write lock, so GETs and the pages' status polls neither wait for a writer nor hold one up. Changing a
  row in it is a bug, refused at flush.
* **Writes.** A page that changes something calls :func:`write` where its change starts: the page's read
  (its sign-in check) ends, and a write transaction begins (SQLite: ``BEGIN IMMEDIATE``, before its first
  read) in which the page's services run. A read is never upgraded to a write: on SQLite (WAL) that fails
  with ``SQLITE_BUSY_SNAPSHOT`` once another writer committed since the read began.
* **The end.** When the page answers below 400, its write transaction is committed, once, and what waited
  for the commit runs (:func:`after_commit`: mail to the owner of an account that changed). When the page
  raises, or answers 400 or more (a refusal), the transaction is rolled back, unless the page called
  :func:`keep_on_refusal` with its reason (an audited ``access.denied``; a failed sign-in attempt that
  counts on the throttle). Domain errors then go on to the error handlers (the blueprint's page, or
  problem+json), which answer with the error's status.
* **Refusals shown on the form.** :func:`refused` rolls back at once and renders the page again with the
  error and the error's status: the page shows the data as it is, since nothing changed. :func:`undo`
  rolls back without rendering (the page answers in its own way).
* **Bookkeeping of a read page.** A session's idle clock and a claim's activity are written only when
  due, by :func:`short_write`: a separate short write unit, committed at once. It gives up instead of
  waiting when the write lock is busy; the next page view writes it.
* **Workflows.** A page calls a workflow (marked :func:`verify_service.db.workflow`: it takes the
  ``sessionmaker`` and commits its own short units around its calls to Meet) through
  :func:`run_workflow`. That is refused while the page holds a write transaction, and it ends the page's
  read first: no transaction of the page stays open across the call, and what the page reads afterwards
  includes what the workflow committed.

Jobs (``job_unit``), CLI commands (``unit_of_work``) and API requests (``api_write``) have boundaries of
their own.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import sqlalchemy as sa
from flask import Response, g, make_response
from sqlalchemy import event
from sqlalchemy.orm import Session

from verify_service.db import is_workflow, lock_busy, unit_of_work
from verify_service.errors import DomainError
from verify_service.registry import begin_request_write, db_session, end_request_write, registry, request_session

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

# How long (seconds) a read page's bookkeeping write waits for a busy write lock before it is skipped.
BOOKKEEPING_LOCK_WAIT = 0.25
_UNIT = "_page_unit"  # key in flask.g: the running page's unit
PAGE_UNIT_MARK = "__verify_page_unit__"  # set on every view in the boundary (tests find the pages outside it)
_READ_ONLY = "verify_page_read"  # key in Session.info: the session is in a page's read transaction


@dataclasses.dataclass
class _Unit:
    writing: bool = False
    kept: str | None = None  # why a refusal of this page commits (keep_on_refusal)
    after_commit: list[Callable[[], Any]] = dataclasses.field(default_factory=list)


def page_unit(view: Callable[P, Any]) -> Callable[P, Response]:
    """Run the page ``view`` as one unit of work (see the module doc)."""

    @functools.wraps(view)
    def boundary(*args: P.args, **kwargs: P.kwargs) -> Response:
        if g.get(_UNIT) is not None:  # already inside this request's page unit
            return make_response(view(*args, **kwargs))
        unit = _Unit()
        setattr(g, _UNIT, unit)
        _set_read_only(True)
        try:
            try:
                response = make_response(view(*args, **kwargs))
            except DomainError:
                _end(unit, commit=unit.kept is not None)
                raise
            except BaseException:
                _end(unit, commit=False)
                raise
            _end(unit, commit=response.status_code < 400 or unit.kept is not None)
            return response
        finally:
            g.pop(_UNIT, None)
            _set_read_only(False)

    setattr(boundary, PAGE_UNIT_MARK, True)
    return boundary


def _unit() -> _Unit:
    unit: _Unit | None = g.get(_UNIT)
    if unit is None:
        raise RuntimeError("not inside a page's unit of work (decorate the view with pages.page_unit, "
                           "staff_page or freelancer_page)")
    return unit


def _set_read_only(on: bool) -> None:
    db = db_session() if on else request_session()
    if db is None:
        return
    if on:
        db.info[_READ_ONLY] = True
    else:
        db.info.pop(_READ_ONLY, None)


@event.listens_for(Session, "before_flush")
def _no_changes_in_a_read(db: Session, _context: Any, _instances: Any) -> None:
    if db.info.get(_READ_ONLY):
        raise RuntimeError("a page changed rows in its read transaction: call pages.write() where the change "
                           "starts (or pages.short_write for bookkeeping)")


def _end(unit: _Unit, *, commit: bool) -> None:
    """Commit the page's write transaction (``commit``) or roll it back; then what waited for the commit."""
    db = request_session()
    try:
        if unit.writing and db is not None:
            if commit:
                db.commit()
            else:
                db.rollback()
        # A read transaction is left to the request's teardown (close_session): rolling it back here would
        # only expire what the error handlers may still show.
    finally:
        if unit.writing:
            end_request_write()
            unit.writing = False
    if commit:
        waiting, unit.after_commit = unit.after_commit, []
        for run in waiting:
            run()


def _end_read(db: Session) -> None:
    if db.in_transaction():
        if db.new or db.dirty or db.deleted:
            raise RuntimeError("a page changed rows in its read transaction")
        db.rollback()  # it changed nothing; what it loaded is read again on next use


def write() -> Session:
    """The page's write transaction, beginning here (SQLite: ``BEGIN IMMEDIATE``); the same one on later calls.

    The page's read so far (its sign-in check) ends first: a read is never upgraded to a write. What the
    read loaded is read again, under the lock, on next use.
    """
    unit = _unit()
    if unit.writing:
        return db_session()
    db = db_session()
    _end_read(db)
    db.info.pop(_READ_ONLY, None)
    db = begin_request_write()
    unit.writing = True
    return db


def writing() -> bool:
    """Whether the page is in its write transaction (:func:`write` was called)."""
    unit: _Unit | None = g.get(_UNIT)
    return unit is not None and unit.writing


def keep_on_refusal(why: str) -> None:
    """Commit the page's changes even though it answers with a refusal (4xx) or raises a domain error.

    ``why`` says what must stand (it is for the reader: "the failed attempt counts on the throttle").
    """
    _unit().kept = why


def after_commit(run: Callable[[], Any]) -> None:
    """Run ``run`` once the page's unit of work is committed (never when it is rolled back)."""
    _unit().after_commit.append(run)


def undo() -> None:
    """Roll the page's changes back now; the page goes on reading (and may :func:`write` again)."""
    unit = _unit()
    db = request_session()
    if db is not None and db.in_transaction():
        db.rollback()
    if unit.writing:
        end_request_write()
        unit.writing = False
    unit.kept = None
    unit.after_commit.clear()
    _set_read_only(True)


def refused(error: DomainError, page: Callable[..., Any], **context: Any) -> tuple[Any, int]:
    """Undo the page's changes and show ``page(error=error, **context)`` again, with the status of ``error``."""
    undo()
    return page(error=error, **context), error.status


def short_write(change: Callable[[Session], Any], *, lock_wait: float | None = BOOKKEEPING_LOCK_WAIT) -> bool:
    """A read page's bookkeeping write (an idle clock, claim activity): its own short write unit, committed now.

    Never an upgrade of the page's read transaction (see the module doc). It waits at most ``lock_wait``
    seconds for the write lock, then gives up and returns False: the next page view writes it. Inside the
    page's write transaction, ``change`` simply runs in it (and commits with the page).
    """
    if writing():
        change(db_session())
        return True
    try:
        with unit_of_work(registry().sessions, lock_wait=lock_wait) as db:
            change(db)
    except sa.exc.OperationalError as exc:
        if not lock_busy(exc):
            raise
        log.info("a page's bookkeeping write was skipped: the database's write lock is busy")
        return False
    return True


def run_workflow(workflow: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Call ``workflow`` (it commits its own short units) with no transaction of the page open across it.

    Raises:
        TypeError: ``workflow`` is not marked :func:`verify_service.db.workflow`.
        RuntimeError: the page holds its write transaction (call the workflow before :func:`write`).
    """
    if not is_workflow(workflow):
        raise TypeError(f"{getattr(workflow, '__qualname__', workflow)!r} is not a workflow (verify_service.db.workflow)")
    if writing():
        raise RuntimeError("a page may not hold its write transaction across a workflow: it calls Meet")
    _unit()
    db = request_session()
    if db is not None:
        _end_read(db)  # its snapshot would predate what the workflow commits
    return workflow(*args, **kwargs)
