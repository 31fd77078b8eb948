"""The freelancer pages over the Flask test client (both backends): limits, privacy, CSRF, bad input."""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from tests.conftest import Api, FakeClock
from tests.support.fake_meet import FakeMeetGateway
from verify_service.accounts.models import Account
from verify_service.calls.models import CallSession, MeetingStatus
from verify_service.calls.state import SessionStatus
from verify_service.db import unit_of_work
from verify_service.freelancer import journey
from verify_service.registry import Registry

TOKEN = re.compile(r'<meta name="csrf-token" content="([^"]+)">')
CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/142.0.0.0 Safari/537.36")


class Freelancer:
    """A browser signed in through a launch link, reading the CSRF token off the pages like a form would."""

    def __init__(self, api: Api, account_id: str) -> None:
        response = api.client.post(f"/api/v1/accounts/{account_id}/launch-links", headers=api.auth)
        assert response.status_code == 201
        self.client: FlaskClient = api.client.application.test_client()
        self.client.environ_base["HTTP_USER_AGENT"] = CHROME
        assert self.client.get(urlsplit(response.get_json()["url"]).path).status_code == 303
        page = self.client.get("/verify")
        assert page.status_code == 200
        self.token = TOKEN.search(page.get_data(as_text=True)).group(1)

    def post(self, path: str, **form: str):
        return self.client.post(path, data={"csrf_token": self.token, **form})

    def start(self):
        return self.post("/verify/calls")


@pytest.fixture
def gateway(registry: Registry) -> FakeMeetGateway:
    registry.meet = FakeMeetGateway()
    return registry.meet


def asked_to_verify(api: Api, account_id: str) -> None:
    api.put_account(account_id, email=f"{account_id}@example.com")
    response = api.request_verification(account_id, {"reason": "new_account", "place_hold": True})
    assert response.status_code == 201


@pytest.fixture
def ana(api: Api, gateway: FakeMeetGateway) -> Freelancer:
    asked_to_verify(api, "acc-ana")
    return Freelancer(api, "acc-ana")


def all_calls(registry: Registry) -> list[CallSession]:
    with registry.sessions() as session:
        return list(session.scalars(sa.select(CallSession).order_by(CallSession.created_at)))


def test_starting_a_call_creates_the_meeting_with_the_freelancer_as_member(ana: Freelancer, registry: Registry,
                                                                          gateway: FakeMeetGateway) -> None:
    response = ana.start()
    assert response.status_code == 303
    [call] = all_calls(registry)
    assert response.headers["Location"].endswith(f"/verify/calls/{call.id}")
    assert call.status is SessionStatus.WAITING and call.meet_status is MeetingStatus.READY
    assert call.verification_request_id is not None and call.attempt == 1
    space = gateway.spaces[call.meet_space]
    assert "acc-ana@example.com" in space.members
    page = ana.client.get(f"/verify/calls/{call.id}").get_data(as_text=True)
    assert "Your call is ready" in page and call.meet_uri in page
    status = ana.client.get(f"/verify/calls/{call.id}/status", headers={"Accept": "application/json"}).get_json()
    assert status["phase"] == "waiting" and status["position"] == 1 and status["meet_uri"] == call.meet_uri


def test_one_active_session_per_freelancer(ana: Freelancer, registry: Registry) -> None:
    first = ana.start().headers["Location"]
    again = ana.start()
    assert again.status_code == 303 and again.headers["Location"] == first  # back to the call they have
    assert len(all_calls(registry)) == 1


def test_a_daily_limit_on_new_sessions(api: Api, ana: Freelancer, registry: Registry, clock: FakeClock) -> None:
    for _ in range(registry.settings.daily_session_limit):
        ana.start()
        with registry.sessions.begin() as session:  # the call ended without a decision
            for call in session.scalars(sa.select(CallSession).where(CallSession.status == SessionStatus.WAITING)):
                call.status = SessionStatus.EXPIRED
        clock.advance(minutes=20)
    refused = ana.start()
    assert refused.status_code == 429
    assert "Too many calls today" in refused.get_data(as_text=True)
    assert len(all_calls(registry)) == registry.settings.daily_session_limit
    clock.advance(hours=24)
    assert Freelancer(api, "acc-ana").start().status_code == 303  # a new day (and a new sign-in)


def test_someone_elses_session_is_not_found(api: Api, ana: Freelancer, registry: Registry) -> None:
    asked_to_verify(api, "acc-bo")
    bo = Freelancer(api, "acc-bo")
    bo.start()
    [theirs] = all_calls(registry)
    for path in (f"/verify/calls/{theirs.id}", f"/verify/calls/{theirs.id}/status"):
        assert ana.client.get(path).status_code == 404
    assert ana.post(f"/verify/calls/{theirs.id}/cancel").status_code == 404
    assert ana.client.get("/verify/calls/no-such-id").status_code == 404
    assert bo.client.get(f"/verify/calls/{theirs.id}").status_code == 200


def test_posts_without_the_csrf_token_are_refused_and_change_nothing(ana: Freelancer, registry: Registry) -> None:
    refused = ana.client.post("/verify/calls")
    assert refused.status_code == 400 and "This page has expired" in refused.get_data(as_text=True)
    assert ana.client.post("/verify/calls", data={"csrf_token": "forged"}).status_code == 400
    assert all_calls(registry) == []


def test_nothing_to_verify_is_explained(api: Api, gateway: FakeMeetGateway, registry: Registry) -> None:
    api.put_account("acc-done")
    freelancer = Freelancer(api, "acc-done")
    assert "No verification is needed" in freelancer.client.get("/verify").get_data(as_text=True)
    refused = freelancer.start()
    assert refused.status_code == 409 and "No verification is needed" in refused.get_data(as_text=True)
    assert all_calls(registry) == []


def test_with_meet_budget_spent_the_call_waits_for_its_meeting(ana: Freelancer, registry: Registry) -> None:
    registry.settings = registry.settings.replace(meet_project_creates_per_minute=0)
    ana.start()
    [call] = all_calls(registry)
    assert call.meet_status is MeetingStatus.QUEUED
    page = ana.client.get(f"/verify/calls/{call.id}").get_data(as_text=True)
    assert "Preparing your meeting" in page
    registry.settings = registry.settings.replace(meet_project_creates_per_minute=100)
    from jobs.calls import prepare_queued_meetings

    assert prepare_queued_meetings(ana.client.application) == 1
    status = ana.client.get(f"/verify/calls/{call.id}/status").get_json()
    assert status["phase"] == "waiting" and status["meet_uri"]


def test_the_check_endpoint_merges_posted_client_hints(ana: Freelancer) -> None:
    hints = {"brands": [{"brand": "Google Chrome", "version": "142"}], "mobile": False,
             "platform": "Windows", "platformVersion": "19.0.0"}
    response = ana.client.post("/verify/check", json={"client_hints": hints},
                               headers={"X-CSRFToken": ana.token, "Accept": "application/json"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["verdict"] == "supported" and "Windows 11" in body["html"]
    # Without hints the frozen "Windows NT 10.0" could be 10 or 11: allowed, with a notice.
    bare = ana.client.post("/verify/check", json={}, headers={"X-CSRFToken": ana.token}).get_json()
    assert bare["verdict"] in ("supported", "unverified")
    assert ana.client.post("/verify/check", json={"client_hints": hints}).status_code == 400  # no token
    garbage = ana.client.post("/verify/check", data=b"\xff{", content_type="application/json",
                              headers={"X-CSRFToken": ana.token})
    assert garbage.status_code == 200  # unreadable hints are ignored: the header verdict stands


@pytest.mark.parametrize("start", ["", "tomorrow", "2026-11-23T10:07:00+00:00", "2026-11-22T09:00:00+00:00",
                                   "2027-01-01T10:00:00+00:00", "2026-11-23T10:00:00"])
def test_bad_booking_times_are_refused_with_a_message_and_nothing_booked(ana: Freelancer, registry: Registry,
                                                                         start: str) -> None:
    response = ana.post("/verify/book", start=start, tz="Europe/Lisbon")
    assert response.status_code == 303 and "/verify/book" in response.headers["Location"]
    page = ana.client.get(response.headers["Location"]).get_data(as_text=True)
    assert 'role="alert"' in page
    assert all_calls(registry) == []


def test_a_booking_respects_the_one_active_session_rule(ana: Freelancer, registry: Registry,
                                                        clock: FakeClock) -> None:
    start = (clock() + dt.timedelta(days=1)).replace(hour=10, minute=0, second=0, microsecond=0)
    assert ana.post("/verify/book", start=start.isoformat(), tz="UTC").status_code == 303
    [booked] = all_calls(registry)
    assert booked.status is SessionStatus.SCHEDULED and booked.verification_request_id is not None
    again = ana.post("/verify/book", start=(start + dt.timedelta(hours=1)).isoformat(), tz="UTC")
    assert "/verify/book" in again.headers["Location"]
    assert len(all_calls(registry)) == 1
    assert "already have a verification call" in ana.client.get(again.headers["Location"]).get_data(as_text=True)


def test_a_call_left_without_a_meeting_is_adopted_by_the_queue_job(ana: Freelancer, registry: Registry,
                                                                   clock: FakeClock) -> None:
    from jobs.calls import prepare_queued_meetings

    # The process stopped between the session's insert and the call to Meet: simulate it by opening the
    # session the way start_call does, without the second half.
    with unit_of_work(registry.sessions) as session:
        account = session.get(Account, "acc-ana")
        request_id = journey.check_may_open(session, account, settings=registry.settings, now=clock())
        session.add(CallSession(account_id="acc-ana", verification_request_id=request_id,
                                status=SessionStatus.WAITING, created_at=clock(), updated_at=clock()))
    assert prepare_queued_meetings(ana.client.application) == 0  # too fresh: its own request may still be on it
    clock.advance(minutes=3)
    assert prepare_queued_meetings(ana.client.application) == 1
    [call] = all_calls(registry)
    assert call.meet_status is MeetingStatus.READY and call.meet_uri
