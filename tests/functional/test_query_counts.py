"""SQL statements per dashboard page do not grow with the data (no N+1 queries), on both backends.

Each page is fetched once over a world with 3 of everything it lists, and
again after the world grew to 30 (queue rows, claimed and decided sessions,
an account's calls, outcomes, holds, requests, audit entries and webhook
events, a session's participants and duplicate documents, fails waiting for a
second review, each decided by a different reviewer). The statement count
(SQLAlchemy's ``before_cursor_execute``) must be the same both times, and the
page must really show the 3 or 30 rows. The latency at 10k-1M sessions is
measured by tests/bench/bench_pages.py.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import FakeClock
from tests.support.staff import signed_in
from verify_service.accounts.domain import HoldKind, RequestReason, RequestStatus
from verify_service.accounts.models import Account, Hold, VerificationRequest
from verify_service.audit.services import record
from verify_service.calls.models import CallParticipant, CallSession, MeetingStatus, OutcomeRecord
from verify_service.calls.state import Outcome, SessionStatus
from verify_service.db import unit_of_work
from verify_service.registry import Registry
from verify_service.review.models import DocumentType, IdentityDocument
from verify_service.staff.models import Reviewer, Role
from verify_service.webhooks.event_examples import examples
from verify_service.webhooks.models import DeliveryStatus, OutboxEvent

STORY = "acc-story"
FINGERPRINT = "f" * 64

# The outbox rows the story seeds are well-formed events (every test's outbox must fit the AsyncAPI document).
HOLD_PLACED = examples()["account.hold.placed"]


@dataclasses.dataclass
class World:
    """What the pages list; ``grow`` adds rows until there are ``n`` of each."""

    registry: Registry
    clock: FakeClock
    rita: int          # the signed-in reviewer
    open_call: str     # one of Rita's claimed sessions: the session page
    n: int = 0

    def grow(self, n: int) -> None:
        now = self.clock()
        with unit_of_work(self.registry.sessions) as session:
            if self.n == 0:
                _account(session, STORY, now)
            for i in range(self.n, n):
                reviewer = Reviewer(email=f"r{i}@example.com", display_name=f"Reviewer {i}", role=Role.REVIEWER,
                                    password_hash="not-a-hash", created_at=now)
                session.add(reviewer)
                session.flush()
                self._queue_row(session, i, now)
                self._mine(session, i, now)
                self._story(session, i, reviewer.id, now)
                self._session_page(session, i, now)
                self._second_review(session, i, reviewer.id, now)
        self.n = n

    def _queue_row(self, session: Any, i: int, now: dt.datetime) -> None:
        _call(session, _account(session, f"acc-q{i}", now).id, SessionStatus.WAITING, now - dt.timedelta(minutes=i))

    def _mine(self, session: Any, i: int, now: dt.datetime) -> None:
        if i > 0:  # the first claimed session is created with the world (the session page's)
            claimed = _call(session, _account(session, f"acc-m{i}", now).id, SessionStatus.IN_PROGRESS, now)
            claimed.claimed_by_id, claimed.claimed_at = self.rita, now
        done = _call(session, _account(session, f"acc-d{i}", now).id, SessionStatus.COMPLETED,
                     now - dt.timedelta(days=1))
        session.add(OutcomeRecord(call_session_id=done.id, account_id=done.account_id, result=Outcome.PASSED,
                                  decided_by_id=self.rita, decided_at=now - dt.timedelta(hours=i + 1), final=True))

    def _story(self, session: Any, i: int, reviewer_id: int, now: dt.datetime) -> None:
        when = now - dt.timedelta(days=60 - i)
        call = _call(session, STORY, SessionStatus.COMPLETED, when)
        session.add(OutcomeRecord(call_session_id=call.id, account_id=STORY, result=Outcome.INCONCLUSIVE,
                                  decided_by_id=reviewer_id, decided_at=when, final=True, reason_codes=["poor_connection"]))
        session.add(VerificationRequest(account_id=STORY, reason=RequestReason.MANUAL, place_hold=True,
                                        status=RequestStatus.CANCELED, requested_by="api", requested_at=when,
                                        closed_at=when))
        session.add(Hold(account_id=STORY, kind=HoldKind.MANUAL, blocks=["appear_in_search"], reason=f"hold {i}",
                         placed_at=when, placed_by=f"reviewer:{reviewer_id}",
                         lifted_at=when if i % 2 else None, lifted_by=f"reviewer:{reviewer_id}" if i % 2 else None))
        record(session, actor=f"reviewer:{reviewer_id}", action="hold.placed", account_id=STORY,
               subject_type="hold", subject_id=str(i), details={"blocks": ["appear_in_search"]}, now=when)
        session.add(OutboxEvent(event_id=f"evt_story_{i}", account_id=STORY, seq=i + 1, type="account.hold.placed",
                                data={**HOLD_PLACED, "account_id": STORY, "seq": i + 1}, created_at=when, next_attempt_at=when,
                                status=DeliveryStatus.DELIVERED, attempts=1))

    def _session_page(self, session: Any, i: int, now: dt.datetime) -> None:
        session.add(CallParticipant(call_session_id=self.open_call, participant=f"conferenceRecords/c/participants/{i}",
                                    kind="signed_in", role="other", display_name=f"Guest {i}",
                                    first_joined_at=now - dt.timedelta(minutes=i)))
        other = _call(session, _account(session, f"acc-dup{i}", now).id, SessionStatus.COMPLETED,
                      now - dt.timedelta(days=3))
        session.add(_document(other, self.rita, now))

    def _second_review(self, session: Any, i: int, reviewer_id: int, now: dt.datetime) -> None:
        call = _call(session, _account(session, f"acc-f{i}", now).id, SessionStatus.AWAITING_SECOND_REVIEW,
                     now - dt.timedelta(hours=2))
        session.add(OutcomeRecord(call_session_id=call.id, account_id=call.account_id, result=Outcome.FAILED,
                                  decided_by_id=reviewer_id, decided_at=now - dt.timedelta(minutes=i + 1), final=False,
                                  reason_codes=["id_expired"]))


def _account(session: Any, account_id: str, now: dt.datetime) -> Account:
    account = Account(id=account_id, display_name=f"Name {account_id}", country="PT", created_at=now, updated_at=now)
    session.add(account)
    return account


def _call(session: Any, account_id: str, status: SessionStatus, created: dt.datetime) -> CallSession:
    call = CallSession(account_id=account_id, status=status, created_at=created, updated_at=created,
                       meet_status=MeetingStatus.READY, system_check={"verdict": "supported", "browser": "chrome",
                                                                      "browser_major": 142})
    session.add(call)
    session.flush()
    return call


def _document(call: CallSession, reviewer_id: int, now: dt.datetime) -> IdentityDocument:
    return IdentityDocument(account_id=call.account_id, call_session_id=call.id, doc_type=DocumentType.PASSPORT,
                            issuing_country="PT", fingerprint=FINGERPRINT, last4="1234", recorded_by_id=reviewer_id,
                            recorded_at=now)


@pytest.fixture
def world(registry: Registry, clock: FakeClock, client: FlaskClient) -> World:
    rita = signed_in(client, registry, role=Role.REVIEWER).id
    now = clock()
    with unit_of_work(registry.sessions) as session:
        call = _call(session, _account(session, "acc-open", now).id, SessionStatus.IN_PROGRESS, now)
        call.claimed_by_id, call.claimed_at = rita, now
        # Active just now: the page writes no claim activity (that is due every 30 s, in a unit of its own),
        # so both fetches count the same page.
        call.claim_active_at = now
        session.add(_document(call, rita, now))
    return World(registry, clock, rita, call.id)


# What each page must show of the world's n rows (so a page that lost its data cannot pass).
Shows = Callable[[str, int], bool]
PAGES: dict[str, tuple[str, Role, Shows]] = {
    "queue": ("/review", Role.REVIEWER, lambda html, n: f"<strong>{n}</strong>" in html),
    "my sessions": ("/review/mine", Role.REVIEWER,
                    lambda html, n: html.count("· attempt 1 · claimed") == n and html.count(">Final<") == n),
    "session": ("/review/sessions/{open_call}", Role.REVIEWER,
                lambda html, n: len(re.findall(r"<code>acc-dup\d+</code>", html)) == n),
    "account": (f"/review/lead/accounts/{STORY}", Role.LEAD,
                lambda html, n: html.count("Inconclusive (may try again) by Reviewer") == n
                and html.count("<td><code>hold.placed</code>") == n
                and html.count("<td><code>account.hold.placed</code></td>") == n and html.count(">Lift hold<") == (n + 1) // 2),
    "second reviews": ("/review/second-reviews", Role.LEAD, lambda html, n: html.count("#second-review") == n),
}


def statements_per_page(registry: Registry, world: World, client: FlaskClient, lead: FlaskClient) -> dict[str, int]:
    counts: dict[str, int] = {}
    executed: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        executed.append(statement)

    sa.event.listen(registry.engine, "before_cursor_execute", count)
    try:
        for page, (path, role, shows) in PAGES.items():
            executed.clear()
            response = (lead if role is Role.LEAD else client).get(path.format(open_call=world.open_call))
            html = response.get_data(as_text=True)
            assert response.status_code == 200, (page, html[:500])
            assert shows(html, world.n), f"the {page} page does not show the {world.n} rows it should"
            counts[page] = len(executed)
    finally:
        sa.event.remove(registry.engine, "before_cursor_execute", count)
    return counts


def test_statements_per_page_do_not_grow_with_the_data(app: Flask, registry: Registry, world: World,
                                                        client: FlaskClient) -> None:
    lead = app.test_client()
    signed_in(lead, registry, role=Role.LEAD)
    world.grow(3)
    few = statements_per_page(registry, world, client, lead)
    world.grow(30)
    many = statements_per_page(registry, world, client, lead)
    assert many == few
    # And a handful each (sign-in check, the page's reads): a new per-row query cannot hide in a big number.
    assert max(few.values()) <= 12, few
