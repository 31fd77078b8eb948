"""What a freelancer sees once the account service closes their account (both backends).

``account.closed`` revokes the signed-in pages and every unused launch link:
they answer 410 with the "This account is closed" page (not the generic
signed-out one), no new session opens, the API issues no new link, and a
booked call's invite is deleted by the invite job (not inline).
"""

from __future__ import annotations

import datetime as dt
import html
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from jobs import invites as invite_jobs
from tests.conftest import Api, FakeClock, assert_problem
from tests.functional.test_freelancer_journey import Freelancer, all_calls, ana, gateway  # noqa: F401 (fixtures)
from tests.functional.test_inbound_webhooks import ok, send
from tests.support.fake_meet import FakeMeetGateway
from verify_service.closure import close_account
from verify_service.audit.models import AuditEntry
from verify_service.calls.models import CallSession
from verify_service.calls.state import EndReason, SessionStatus
from verify_service.db import unit_of_work
from verify_service.freelancer.models import FreelancerSession, LaunchLink
from verify_service.registry import Registry
from verify_service.webhooks.models import OutboxEvent

ACCOUNT = "acc-ana"
CLOSED = "This account is closed"
SIGNED_OUT = "Please start again from your account"


@pytest.fixture(params=["webhook", "service"])
def close(request: pytest.FixtureRequest, api: Api, registry: Registry):
    """Close the account as the account service does (its webhook), or through the closure service itself."""

    def run() -> None:
        if request.param == "webhook":
            ok(send(api.client, registry, "account.closed", {"account_id": ACCOUNT, "closed_by": "user"}))
        else:
            with unit_of_work(registry.sessions) as session:
                assert close_account(session, ACCOUNT, actor="account-service", now=registry.now()).closed

    return run


def assert_closed_page(response) -> None:
    body = html.unescape(response.get_data(as_text=True))
    assert response.status_code == 410, body
    assert response.content_type.startswith("text/html")
    assert CLOSED in body and SIGNED_OUT not in body


def count(registry: Registry, model) -> int:
    with unit_of_work(registry.sessions, write=False) as session:
        return session.scalar(sa.select(sa.func.count()).select_from(model)) or 0


def row(registry: Registry, call_id: str) -> CallSession:
    with unit_of_work(registry.sessions, write=False) as session:
        found = session.get_one(CallSession, call_id)
        session.expunge(found)
        return found


def issue_link(api: Api) -> str:
    """A launch link from the API; its path."""
    response = api.client.post(f"/api/v1/accounts/{ACCOUNT}/launch-links", headers=api.auth)
    assert response.status_code == 201, response.get_data(as_text=True)
    return urlsplit(response.get_json()["url"]).path


def book(freelancer: Freelancer, clock: FakeClock) -> str:
    start = (clock() + dt.timedelta(days=1)).replace(hour=10, minute=0, second=0, microsecond=0)
    response = freelancer.post("/verify/book", start=start.isoformat(), tz="UTC")
    assert response.status_code == 303 and "/verify/calls/" in response.headers["Location"]
    return urlsplit(response.headers["Location"]).path.rsplit("/", 1)[-1]


# ---------------------------------------------------------------- signed-in pages

def test_every_open_page_of_a_closed_account_says_it_is_closed(api: Api, ana: Freelancer, registry: Registry,
                                                                close) -> None:
    ana.start()
    [call] = all_calls(registry)
    # Four browsers signed in before the closure, each asking one thing afterwards.
    tabs = [ana] + [Freelancer(api, ACCOUNT) for _ in range(3)]
    for tab in tabs:
        assert tab.client.get(f"/verify/calls/{call.id}/status").status_code == 200
    close()

    assert_closed_page(tabs[0].client.get("/verify"))
    assert_closed_page(tabs[1].client.get(f"/verify/calls/{call.id}"))
    poll = tabs[2].client.get(f"/verify/calls/{call.id}/status", headers={"Accept": "application/json"})
    assert_closed_page(poll)  # the waiting room's status poll too
    assert_closed_page(tabs[3].post(f"/verify/calls/{call.id}/cancel"))  # and a form posted from an open page
    canceled = row(registry, call.id)
    assert (canceled.status, canceled.end_reason) == (SessionStatus.CANCELED, EndReason.ACCOUNT_CLOSED)
    with unit_of_work(registry.sessions, write=False) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(FreelancerSession).where(
            FreelancerSession.account_id == ACCOUNT, FreelancerSession.revoked_at.is_(None))) == 0


def test_the_open_page_and_its_status_poll_both_say_the_account_is_closed(api: Api, ana: Freelancer,
                                                                         registry: Registry, close) -> None:
    """One browser: the waiting room is open when the account closes; its page and its poll both answer."""
    ana.start()
    [call] = all_calls(registry)
    close()
    assert_closed_page(ana.client.get(f"/verify/calls/{call.id}"))
    poll = ana.client.get(f"/verify/calls/{call.id}/status", headers={"Accept": "application/json"})
    assert_closed_page(poll)
    assert_closed_page(ana.client.get("/verify"))  # and a reload later


# ---------------------------------------------------------------- launch links

def opened_sessions_audited(registry: Registry) -> int:
    with unit_of_work(registry.sessions, write=False) as session:
        return session.scalar(sa.select(sa.func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "freelancer_session.opened")) or 0


def test_an_unused_launch_link_issued_before_closure_opens_no_session(api: Api, ana: Freelancer,
                                                                     registry: Registry, close) -> None:
    unused = issue_link(api)
    sessions_before, audited_before = count(registry, FreelancerSession), opened_sessions_audited(registry)
    close()
    fresh = api.client.application.test_client()
    response = fresh.get(unused)
    assert_closed_page(response)
    # No session cookie handed out (clearing one is fine).
    assert [c for c in response.headers.getlist("Set-Cookie")
            if c.startswith("verify_session=") and not c.startswith("verify_session=;")] == []
    assert count(registry, FreelancerSession) == sessions_before
    assert opened_sessions_audited(registry) == audited_before
    assert fresh.get("/verify").status_code == 401  # it never got signed in
    with unit_of_work(registry.sessions, write=False) as session:
        used = session.scalars(sa.select(LaunchLink.used_at).where(LaunchLink.account_id == ACCOUNT)
                               .order_by(LaunchLink.id)).all()
    assert used[-1] is None  # the unused link was never spent
    # The link stays dead: asking again says the same.
    assert_closed_page(fresh.get(unused))


def test_the_launch_links_api_refuses_a_closed_account(api: Api, ana: Freelancer, registry: Registry,
                                                       close) -> None:
    close()
    links_before = count(registry, LaunchLink)
    response = api.client.post(f"/api/v1/accounts/{ACCOUNT}/launch-links", headers=api.auth)
    assert_problem(response, 409, "account_closed")
    assert count(registry, LaunchLink) == links_before


# ---------------------------------------------------------------- a booked call's invite

def test_a_booked_calls_invite_is_deleted_by_the_invite_job(ana: Freelancer, registry: Registry,
                                                            gateway: FakeMeetGateway, clock: FakeClock,
                                                            close) -> None:
    call_id = book(ana, clock)
    event_id = row(registry, call_id).calendar_event_id
    assert event_id in gateway.invites
    close()

    canceled = row(registry, call_id)
    assert (canceled.status, canceled.end_reason) == (SessionStatus.CANCELED, EndReason.ACCOUNT_CLOSED)
    assert canceled.invite_pending == "cancel"
    assert event_id in gateway.invites  # not before the job runs
    with unit_of_work(registry.sessions, write=False) as session:
        events = session.scalars(sa.select(OutboxEvent.data).where(
            OutboxEvent.type == "verification.session.canceled")).all()
    assert [(e["session"]["id"], e["by"]) for e in events] == [(call_id, "account_closed")]

    assert invite_jobs.repair_invites(ana.client.application) == 1
    assert event_id not in gateway.invites
    assert row(registry, call_id).invite_pending is None
    assert invite_jobs.repair_invites(ana.client.application) == 0
