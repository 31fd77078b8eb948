"""One unit of work for every page: the page boundary (``verify_service/pages.py``).

* Structure (an AST walk): nothing under ``verify_service/`` commits, rolls back or opens a
  ``unit_of_work`` outside the boundaries (the page boundary, the API's ``api_write``, CLI commands, the
  job services) and the functions marked ``@workflow``; no page asks for a write session other than
  through ``pages.write()``; no page calls a workflow other than through ``pages.run_workflow``; and every
  view of the browser pages (and the inbound webhook) runs in ``page_unit``.
* Behaviour: a page commits once when it answers, rolls back when it refuses or raises, commits a refusal
  only when it said ``keep_on_refusal``; a read page cannot write; a workflow is refused inside a write.
* Locks (SQLite): GETs and the status polls take no write lock. While another connection holds
  ``BEGIN IMMEDIATE``, the freelancer's status poll and the reviewer's queue and attendance polls answer
  at once, concurrently; a poll whose idle-clock touch is due still answers (the touch gives up on the busy
  lock) and the touch is written once the lock is free.
"""

from __future__ import annotations

import ast
import contextlib
import datetime as dt
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import FakeClock
from tests.support.staff import signed_in
from verify_service import pages
from verify_service.accounts.models import Account
from verify_service.calls.models import CallSession, MeetingStatus
from verify_service.calls.state import SessionStatus
from verify_service.db import unit_of_work, workflow
from verify_service.errors import Conflict
from verify_service.freelancer import services as freelancer_sessions
from verify_service.freelancer.models import FreelancerSession
from verify_service.registry import Registry, db_session
from verify_service.staff import sessions as staff_sessions
from verify_service.staff.models import Role, StaffSession

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "verify_service"

# Where a transaction may be ended or a unit of work opened, besides functions marked @workflow. Short on
# purpose: a new entry needs a reason.
BOUNDARIES = {
    "verify_service/pages.py": "the page boundary",
    "verify_service/db.py": "defines unit_of_work",
    "verify_service/api/boundary.py": "the API's boundary (api_write)",
    "verify_service/cli": "CLI commands (each command is one unit_of_work)",
    "verify_service/migrations": "Alembic's own transaction",
    # Services the scheduler's jobs run with the sessionmaker (jobs/ is the jobs' boundary).
    "verify_service/ops/heartbeat.py": "the scheduler's heartbeat (jobs)",
    "verify_service/webhooks/relay.py": "the outbox relay (jobs)",
    "verify_service/review/retention.py": "the retention purge, in batches (jobs)",
    "verify_service/calls/scheduling.py": "the invite job's sends (jobs)",
}
# Modules of browser pages: a page's transaction is the boundary's.
PAGE_MODULES = ("views.py", "_views.py", "freelancer/auth.py", "staff/auth.py")
PAGE_BLUEPRINTS = ("freelancer.", "staff.", "review.", "leads.", "account.", "inbound_webhooks.")


def _modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        yield relative, ast.parse(path.read_text(encoding="utf-8"), filename=relative)


def _allowed_module(relative: str) -> bool:
    return any(relative == entry or relative.startswith(entry + "/") for entry in BOUNDARIES)


def _is_page_module(relative: str) -> bool:
    return relative.endswith(PAGE_MODULES)


def _decorator_names(function: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    names = set()
    for decorator in function.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        if isinstance(target, ast.Name):
            names.add(target.id)
        elif isinstance(target, ast.Attribute):
            names.add(target.attr)
    return names


def _calls_with_functions(tree: ast.Module) -> Iterator[tuple[ast.Call, list[ast.FunctionDef | ast.AsyncFunctionDef]]]:
    """Every call in ``tree`` with the functions it is nested in (outermost first)."""

    def visit(node: ast.AST, stack: list[Any]) -> Iterator[tuple[ast.Call, list[Any]]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                yield from visit(child, [*stack, child])
                continue
            if isinstance(child, ast.Call):
                yield child, stack
            yield from visit(child, stack)

    yield from visit(tree, [])


def _name(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


def _workflow_names() -> set[str]:
    names = set()
    for _relative, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and "workflow" in _decorator_names(node):
                names.add(node.name)
    return names


def test_only_the_boundaries_and_the_workflows_end_transactions() -> None:
    found = []
    for relative, tree in _modules():
        if _allowed_module(relative):
            continue
        for call, functions in _calls_with_functions(tree):
            name = _name(call)
            if name not in ("commit", "rollback", "unit_of_work"):
                continue
            if name != "unit_of_work" and not isinstance(call.func, ast.Attribute):
                continue
            if any("workflow" in _decorator_names(f) for f in functions):
                continue  # a workflow opens its own short units
            where = functions[-1].name if functions else "<module>"
            found.append(f"{relative}:{call.lineno} {where}() calls {name}(")
    assert not found, ("end the transaction in the boundary (pages.page_unit, api_write, job_unit, a CLI "
                       "command), or mark a workflow @workflow (verify_service.db):\n" + "\n".join(found))


def test_pages_write_through_the_boundary_and_call_workflows_through_it() -> None:
    workflows = _workflow_names() - {name for name in _workflow_names() if name.startswith("_")}
    assert {"start_call", "cancel_call", "take_session", "decide", "book_slot", "prepare_meeting"} <= workflows
    found = []
    for relative, tree in _modules():
        for call, functions in _calls_with_functions(tree):
            name = _name(call)
            where = f"{relative}:{call.lineno}"
            if name == "begin_write" and relative not in ("verify_service/db.py", "verify_service/registry.py"):
                found.append(f"{where}: begin_write outside db.py/registry.py (a page calls pages.write())")
            if name == "db_session" and any(k.arg == "write" for k in call.keywords):
                if not any("api_write" in _decorator_names(f) for f in functions) \
                        and relative not in ("verify_service/registry.py", "verify_service/api/boundary.py"):
                    found.append(f"{where}: db_session(write=...) outside an api_write view (pages: pages.write())")
            if _is_page_module(relative) and name in workflows:
                found.append(f"{where}: the workflow {name} is called directly (pages.run_workflow(...) ends the "
                             "page's read and refuses inside its write)")
    assert not found, "\n".join(found)


def test_every_page_runs_in_the_page_boundary(app: Flask) -> None:
    outside = []
    pages_seen = 0
    for endpoint, view in app.view_functions.items():
        if not endpoint.startswith(PAGE_BLUEPRINTS) or endpoint.endswith(".static"):
            continue
        pages_seen += 1
        function, marked = view, False
        while function is not None and not marked:
            marked = bool(getattr(function, pages.PAGE_UNIT_MARK, False))
            function = getattr(function, "__wrapped__", None)
        if not marked:
            outside.append(endpoint)
    assert pages_seen > 40
    assert not outside, f"not in pages.page_unit (staff_page and freelancer_page put a view in it): {outside}"


def test_the_workflow_mark_is_declarative() -> None:
    def sample(x: int) -> int:
        return x + 1

    assert workflow(sample) is sample and sample(1) == 2


# ---------------------------------------------------------------- the boundary's behaviour

class Refused(Conflict):
    code = "refused_for_the_test"


def _account_row(account_id: str, now: dt.datetime) -> Account:
    return Account(id=account_id, display_name="Test", country="PT", created_at=now, updated_at=now)


@pytest.fixture
def probe(app: Flask, registry: Registry) -> FlaskClient:
    """Routes that write an account row and then answer in different ways."""
    now = registry.now()

    def add(account_id: str) -> None:
        pages.write().add(_account_row(account_id, now))

    @pages.page_unit
    def ok() -> tuple[str, int]:
        add("acc-ok")
        pages.after_commit(lambda: committed.append("acc-ok"))
        return "ok", 200

    @pages.page_unit
    def refusal() -> tuple[str, int]:
        add("acc-refused")
        pages.after_commit(lambda: committed.append("acc-refused"))
        return "no", 422

    @pages.page_unit
    def kept() -> tuple[str, int]:
        add("acc-kept")
        pages.keep_on_refusal("the test's audited refusal")
        return "no", 403

    @pages.page_unit
    def raised() -> str:
        add("acc-raised")
        raise Refused("refused")

    @pages.page_unit
    def raised_kept() -> str:
        add("acc-raised-kept")
        pages.keep_on_refusal("the test's counted attempt")
        raise Refused("refused, and counted")

    @pages.page_unit
    def shown_again() -> tuple[Any, int]:
        add("acc-shown")
        return pages.refused(Refused("not like that"), lambda error: f"{error.detail}: "
                             f"{db_session().get(Account, 'acc-shown') is None}")

    @pages.page_unit
    def read_writes() -> str:
        db_session().add(_account_row("acc-read", now))
        db_session().flush()
        return "wrote"

    @pages.page_unit
    def workflow_in_write() -> str:
        add("acc-wf")
        pages.run_workflow(a_workflow, registry.sessions)
        return "ran"

    @pages.page_unit
    def not_a_workflow() -> str:
        pages.run_workflow(lambda: None)
        return "ran"

    committed: list[str] = []
    app.extensions["test_committed"] = committed
    for view in (ok, refusal, kept, raised, raised_kept, shown_again, read_writes, workflow_in_write,
                 not_a_workflow):
        app.add_url_rule(f"/test-boundary/{view.__name__}", view.__name__, view)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    return app.test_client()


@workflow
def a_workflow(sessions: Any) -> None:
    with unit_of_work(sessions):
        pass


def _accounts(registry: Registry) -> set[str]:
    with unit_of_work(registry.sessions, write=False) as session:
        return set(session.scalars(sa.select(Account.id)))


def test_a_page_commits_once_as_it_answers_and_rolls_back_a_refusal(probe: FlaskClient, app: Flask,
                                                                    registry: Registry) -> None:
    assert probe.get("/test-boundary/ok").status_code == 200
    assert probe.get("/test-boundary/refusal").status_code == 422
    assert probe.get("/test-boundary/kept").status_code == 403
    assert probe.get("/test-boundary/raised").status_code == 409
    assert probe.get("/test-boundary/raised_kept").status_code == 409
    shown = probe.get("/test-boundary/shown_again")
    assert shown.status_code == 409 and shown.get_data(as_text=True) == "not like that: True"  # undone first
    assert _accounts(registry) == {"acc-ok", "acc-kept", "acc-raised-kept"}
    assert app.extensions["test_committed"] == ["acc-ok"]  # after_commit: only once committed


def test_a_read_page_cannot_write_and_a_workflow_is_refused_inside_a_write(probe: FlaskClient,
                                                                           registry: Registry) -> None:
    assert probe.get("/test-boundary/read_writes").status_code == 500
    assert probe.get("/test-boundary/workflow_in_write").status_code == 500
    assert probe.get("/test-boundary/not_a_workflow").status_code == 500
    assert _accounts(registry) == set()


# ---------------------------------------------------------------- locks: polls never wait for a writer

BUSY_TIMEOUT_MS = 300  # the app's connections in these tests: a poll that tried to write would fail fast (503)


# The write lock is SQLite's (PostgreSQL has row locks only: its readers never wait for a writer).
sqlite_only = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


@pytest.fixture
def short_busy_timeout(registry: Registry) -> None:
    @sa.event.listens_for(registry.engine, "connect")
    def _short(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")

    registry.engine.dispose()  # the pooled connections are opened again, with it


class Freelancer:
    def __init__(self, registry: Registry, client: FlaskClient, account_id: str) -> None:
        now = registry.now()
        with unit_of_work(registry.sessions) as session:
            session.add(_account_row(account_id, now))
            session.flush()
            link = freelancer_sessions.issue_launch_link(session, account_id, actor="test", now=now)
            opened = freelancer_sessions.open_session(session, link.token, now=now)
            assert opened is not None
            call = CallSession(account_id=account_id, status=SessionStatus.WAITING, created_at=now, updated_at=now,
                               meet_status=MeetingStatus.READY, meet_uri="https://meet.google.com/abc-defg-hij")
            session.add(call)
            session.flush()
            self.call_id = call.id
        self.client = client
        client.set_cookie("verify_session", opened.token)
        self.token = opened.token

    def poll(self) -> Any:
        return self.client.get(f"/verify/calls/{self.call_id}/status", headers={"Accept": "application/json"})

    def last_seen(self, registry: Registry) -> dt.datetime:
        with unit_of_work(registry.sessions, write=False) as session:
            return session.scalars(sa.select(FreelancerSession.last_seen_at)).one()


@pytest.fixture
def desk(app: Flask, registry: Registry, short_busy_timeout: None) -> dict[str, Any]:
    freelancer = Freelancer(registry, app.test_client(), "acc-poll")
    reviewer_client = app.test_client()
    rita = signed_in(reviewer_client, registry, role=Role.LEAD)  # a lead sees every session's page
    return {"freelancer": freelancer, "reviewer": reviewer_client, "rita": rita}


@pytest.fixture
def write_lock(registry: Registry) -> Iterator[sqlite3.Connection]:
    """Another connection holding the database's write lock (``BEGIN IMMEDIATE`` and an uncommitted write)."""
    path = sa.make_url(registry.settings.database_url).database
    holder = sqlite3.connect(path, isolation_level=None, timeout=0, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("UPDATE accounts SET display_name = 'being changed' WHERE id = 'acc-poll'")
    yield holder
    holder.rollback()
    holder.close()


def _timed(fetch: Any) -> tuple[Any, float]:
    started = time.monotonic()
    response = fetch()
    return response, time.monotonic() - started


@contextlib.contextmanager
def _write_locks(registry: Registry) -> Iterator[list[str]]:
    """The write transactions the app begins meanwhile (their ``BEGIN IMMEDIATE``)."""
    begun: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.strip().upper().startswith("BEGIN IMMEDIATE"):
            begun.append(statement)

    sa.event.listen(registry.engine, "before_cursor_execute", note)
    try:
        yield begun
    finally:
        sa.event.remove(registry.engine, "before_cursor_execute", note)


@sqlite_only
def test_polls_answer_at_once_while_another_connection_holds_the_write_lock(desk: dict[str, Any],
                                                                            registry: Registry,
                                                                            write_lock: sqlite3.Connection) -> None:
    freelancer: Freelancer = desk["freelancer"]
    reviewer: FlaskClient = desk["reviewer"]
    polls = {
        "freelancer status": freelancer.poll,
        "reviewer queue": lambda: reviewer.get("/review", headers={"Accept": "application/json"}),
        "reviewer attendance": lambda: reviewer.get(f"/review/sessions/{freelancer.call_id}/attendance",
                                                    headers={"Accept": "application/json"}),
    }
    results: dict[str, tuple[Any, float]] = {}

    def run(name: str) -> None:
        results[name] = _timed(polls[name])

    with _write_locks(registry) as begun:
        threads = [threading.Thread(target=run, args=(name,)) for name in polls]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=20)
    for name, (response, seconds) in results.items():
        # A poll that asked for the lock would have waited the busy timeout and answered 503; a loaded
        # machine (the whole suite, Chromium) may still take a few hundred milliseconds to answer.
        assert response.status_code == 200, (name, response.get_data(as_text=True)[:300])
        assert seconds < 3 * BUSY_TIMEOUT_MS / 1000, (name, seconds)
    assert len(results) == len(polls)
    assert results["freelancer status"][0].get_json()["phase"] == "waiting"
    assert results["reviewer queue"][0].get_json()["count"] == 1
    assert begun == []  # not one write transaction
    # And the writer was never held up: it commits while the polls' sessions are still open.
    write_lock.execute("COMMIT")
    write_lock.execute("BEGIN IMMEDIATE")


@sqlite_only
def test_a_poll_whose_touch_is_due_still_answers_and_touches_once_the_lock_is_free(
        desk: dict[str, Any], registry: Registry, clock: FakeClock, write_lock: sqlite3.Connection) -> None:
    freelancer: Freelancer = desk["freelancer"]
    before = freelancer.last_seen(registry)
    clock.advance(seconds=freelancer_sessions.TOUCH_EVERY.total_seconds() + 1)  # the idle clock is due
    response, seconds = _timed(freelancer.poll)
    assert response.status_code == 200 and response.get_json()["phase"] == "waiting"
    assert seconds < 5  # the touch waited pages.BOOKKEEPING_LOCK_WAIT at most, then gave up
    write_lock.rollback()
    assert freelancer.last_seen(registry) == before  # skipped: the next page view writes it
    assert freelancer.poll().status_code == 200
    assert freelancer.last_seen(registry) == clock()


@sqlite_only
def test_staff_pages_read_and_touch_the_idle_clock_only_when_due(desk: dict[str, Any], registry: Registry,
                                                                 clock: FakeClock) -> None:
    reviewer: FlaskClient = desk["reviewer"]
    call_id = desk["freelancer"].call_id

    def last_seen() -> dt.datetime:
        with unit_of_work(registry.sessions, write=False) as session:
            return session.scalars(sa.select(StaffSession.last_seen_at)).one()

    with _write_locks(registry) as begun:
        _staff_pages(reviewer, call_id, begun, registry, clock, last_seen)


def _staff_pages(reviewer: FlaskClient, call_id: str, begun: list[str], registry: Registry, clock: FakeClock,
                 last_seen: Any) -> None:
    for path in ("/review", "/review/mine", f"/review/sessions/{call_id}", "/review/second-reviews",
                 "/review/quality", "/review/lead/accounts", "/review/lead/shifts", "/review/lead/reviewers",
                 "/review/lead/deliveries", "/review/lead/metrics", "/review/account"):
        assert reviewer.get(path).status_code == 200, path
    assert begun == []
    opened = last_seen()
    clock.advance(seconds=staff_sessions.TOUCH_EVERY.total_seconds() + 1)
    assert reviewer.get("/review", headers={"Accept": "application/json"}).status_code == 200
    assert last_seen() == opened and begun == []  # a background poll is not someone at the desk
    assert reviewer.get("/review").status_code == 200
    assert last_seen() == clock() and len(begun) == 1  # the due touch: one short write unit
    assert reviewer.get("/review").status_code == 200
    assert len(begun) == 1


@sqlite_only
def test_freelancer_pages_take_no_write_lock(desk: dict[str, Any], registry: Registry) -> None:
    freelancer: Freelancer = desk["freelancer"]
    with _write_locks(registry) as begun:
        for path in ("/verify", f"/verify/calls/{freelancer.call_id}", f"/verify/calls/{freelancer.call_id}/status",
                     "/verify/book", "/verify/mobile", "/verify/help"):
            assert freelancer.client.get(path).status_code == 200, path
    assert begun == []
