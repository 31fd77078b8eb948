"""The freelancer's way back, outcome pages, limits and privacy text, over the Flask test client (both backends).

A launch link's ``return_url`` (its origin in ``VERIFY_RETURN_URL_ORIGINS``) becomes the pages' "Back to
<marketplace>" link; the outcome pages name the holds and what still works; the daily limit and a verified
account are offered nothing they cannot do; the help page says what the purge and the closure really erase.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from tests.conftest import Api, FakeClock, assert_problem
from tests.functional.test_freelancer_journey import CHROME
from tests.support.fake_meet import FakeMeetGateway
from tests.support.review_desk import record_with_evidence
from verify_service.calls.models import CallSession
from verify_service.calls.state import Outcome, SessionStatus
from verify_service.closure import close_account
from verify_service.db import unit_of_work
from verify_service.freelancer import journey, timezones
from verify_service.freelancer.models import FreelancerSession, LaunchLink
from verify_service.registry import Registry
from verify_service.review.decisions import claim_session, second_review
from verify_service.staff.models import Role
from verify_service.staff.passwords import create_reviewer

MARKET = "https://market.example.com"
BACK = f"{MARKET}/settings/identity?from=verify"
TOKEN = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


@pytest.fixture
def market(registry: Registry, gateway: FakeMeetGateway) -> Registry:
    registry.settings = registry.settings.replace(return_url_origins=(MARKET, "http://localhost:3000"),
                                                  marketplace_name="Market Example")
    return registry


@pytest.fixture
def gateway(registry: Registry) -> FakeMeetGateway:
    registry.meet = FakeMeetGateway()
    return registry.meet


def asked(api: Api, account_id: str = "acc-1", **profile: Any) -> None:
    assert api.put_account(account_id, email=f"{account_id}@example.com", **profile).status_code in (200, 201)
    assert api.request_verification(account_id, {"reason": "new_account", "place_hold": True}).status_code == 201


def link(api: Api, account_id: str = "acc-1", body: Any = None) -> Any:
    kwargs = {} if body is None else {"json": body}
    return api.client.post(f"/api/v1/accounts/{account_id}/launch-links", headers=api.auth, **kwargs)


def signed_in(api: Api, account_id: str = "acc-1", return_url: str | None = BACK) -> FlaskClient:
    response = link(api, account_id, {"return_url": return_url} if return_url else None)
    assert response.status_code == 201, response.get_data(as_text=True)
    browser = api.client.application.test_client()
    assert browser.get(urlsplit(response.get_json()["url"]).path).status_code == 303
    return browser


def back_links(html: str) -> list[str]:
    return re.findall(r'<a [^>]*href="([^"]+)"[^>]*>Back to Market Example</a>', html)


def count(registry: Registry, model: Any) -> int:
    with registry.sessions() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(model))


# ---------------------------------------------------------------- return_url on the launch-link API

def test_a_return_url_on_an_allowed_origin_is_kept_on_the_link_and_the_session(api: Api, market: Registry) -> None:
    asked(api)
    browser = signed_in(api)
    with market.sessions() as session:
        assert session.scalars(sa.select(LaunchLink.return_url)).all() == [BACK]
        assert session.scalars(sa.select(FreelancerSession.return_url)).all() == [BACK]
    page = browser.get("/verify").get_data(as_text=True)
    assert back_links(page) == [BACK.replace("&", "&amp;")]  # in the header's navigation
    assert 'class="nav-back"' in page
    # An explicit default port and capitals in the host are the same origin.
    assert link(api, body={"return_url": "https://MARKET.example.com:443/x"}).status_code == 201
    assert link(api, body={"return_url": "http://localhost:3000/back"}).status_code == 201


def test_without_a_return_url_no_back_link_is_shown(api: Api, market: Registry) -> None:
    asked(api)
    assert link(api, body={}).status_code == 201  # an empty body, like no body, asks for no way back
    browser = signed_in(api, return_url=None)
    page = browser.get("/verify").get_data(as_text=True)
    assert "Back to Market Example" not in page


@pytest.mark.parametrize("return_url", [
    "https://evil.example.com/settings",          # an origin not in the list
    "https://market.example.com.evil.test/",      # a look-alike host
    "https://market.example.com:8443/",           # another port
    "http://market.example.com/",                 # another scheme
    "https://user@market.example.com/",           # credentials in the URL
    "javascript:alert(1)",
    "//market.example.com/",                      # no scheme
    "https://",                                   # no host
    "https://market.example.com:99999/",          # a port out of range
    "https://market.example.com/a b",             # a space
    "https://market.example.com/" + "a" * 2000,   # longer than the column
])
def test_any_other_return_url_is_refused_with_a_problem_and_makes_no_link(api: Api, market: Registry,
                                                                          return_url: str) -> None:
    asked(api)
    body = assert_problem(link(api, body={"return_url": return_url}), 422, "validation_failed")
    assert "return_url" in [error["field"] for error in body["errors"]]
    assert count(market, LaunchLink) == 0


def test_a_malformed_body_is_refused_and_makes_no_link(api: Api, market: Registry) -> None:
    asked(api)
    for body in ({"return_url": 42}, {"return_url": BACK, "extra": 1}, {"return_url": ""}):
        assert_problem(link(api, body=body), 422, "validation_failed")
    assert count(market, LaunchLink) == 0


def test_with_no_origins_configured_every_return_url_is_refused(api: Api, registry: Registry) -> None:
    asked(api)
    assert registry.settings.return_url_origins == ()
    assert_problem(link(api, body={"return_url": BACK}), 422, "validation_failed")
    assert count(registry, LaunchLink) == 0
    assert link(api).status_code == 201  # without one the link is made as before


def test_the_openapi_document_describes_the_optional_body(api: Api) -> None:
    document = api.client.get("/api/v1/openapi.json").get_json()
    operation = document["paths"]["/api/v1/accounts/{account_id}/launch-links"]["post"]
    assert operation["requestBody"]["required"] is False
    properties = document["components"]["schemas"]["LaunchLinkIn"]["properties"]
    assert properties["return_url"]["anyOf"][0]["maxLength"] == 2000
    assert "VERIFY_RETURN_URL_ORIGINS" in properties["return_url"]["description"]


# ---------------------------------------------------------------- outcome pages and the closed account

def decide(registry: Registry, call_id: str, result: Outcome, reasons: list[str]) -> None:
    now = registry.now()
    with unit_of_work(registry.sessions) as session:
        reviewer = create_reviewer(session, email="rita@example.com", display_name="Rita", role=Role.REVIEWER,
                                   password="a-long-enough-password", actor="test", now=now)
        lead = create_reviewer(session, email="lena@example.com", display_name="Lena", role=Role.LEAD,
                               password="another-long-password", actor="test", now=now)
        claim_session(session, call_id, reviewer_id=reviewer.id, now=now)
        reviewer_id, lead_id = reviewer.id, lead.id
    outcome = record_with_evidence(registry.sessions, call_id, reviewer_id, result, now, notes="internal words",
                                   reason_codes=reasons)
    if result is Outcome.FAILED:
        with unit_of_work(registry.sessions) as session:
            second_review(session, outcome.id, lead_id=lead_id, decision="confirm", notes=None, now=now)


def outcome_page(api: Api, registry: Registry, result: Outcome, reasons: list[str] | None = None,
                 headers: dict[str, str] | None = None) -> str:
    asked(api)
    browser = signed_in(api)
    call_id, _ = journey.start_call(registry.sessions, registry.meet, "acc-1", settings=registry.settings,
                                    now=registry.now())
    decide(registry, call_id, result, reasons if reasons is not None else [])
    response = browser.get(f"/verify/calls/{call_id}", headers=headers or {"User-Agent": CHROME})
    assert response.status_code == 200
    return response.get_data(as_text=True)


@pytest.mark.parametrize("result,reasons,heading", [
    (Outcome.PASSED, [], "You are verified"),
    (Outcome.FAILED, ["document_expired"], "We could not verify your identity"),
    (Outcome.INCONCLUSIVE, ["connection_failed"], "We need another call"),
    (Outcome.NO_SHOW, [], "We missed each other"),
])
def test_every_outcome_page_shows_the_way_back(api: Api, market: Registry, result: Outcome, reasons: list[str],
                                               heading: str) -> None:
    page = outcome_page(api, market, result, reasons)
    assert heading in page
    assert len(back_links(page)) == 2  # the header's, and the page's own after the outcome


def test_the_failed_page_names_the_hold_says_what_still_works_and_why(api: Api, market: Registry) -> None:
    page = outcome_page(api, market, Outcome.FAILED, ["document_expired", "suspected_duplicate", "other"])
    assert "Hold after a failed verification." in page
    assert ("you cannot send new proposals to jobs, withdraw your earnings, accept direct offers from clients or "
            "appear in freelancer search results") in page
    assert "It is lifted once you pass a new verification." in page
    assert "Work on your existing contracts carries on as usual" in page
    assert "you can withdraw them once the hold that blocks withdrawals is lifted" in page
    assert "get paid" not in page and "Until then, your account is on hold" not in page
    assert "Verification hold." not in page  # the pending hold was lifted when the fail was confirmed
    assert "Bring a valid, unexpired ID to the next call." in page
    # A suspicion of fraud, and the reviewer's own words, are not the freelancer's to read.
    assert "another account" not in page and "internal words" not in page
    assert "contact Market Example&#39;s" in page or "contact Market Example's" in page


def test_an_inconclusive_page_says_what_to_do_differently(api: Api, market: Registry) -> None:
    page = outcome_page(api, market, Outcome.INCONCLUSIVE, ["poor_video"])
    assert "The video was too unclear to tell who you are." in page
    assert "Start a new call now" in page


def test_an_inconclusive_page_offers_no_start_to_a_browser_the_gate_refuses(api: Api, market: Registry) -> None:
    old_chrome = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/120.0.0.0 Safari/537.36")
    page = outcome_page(api, market, Outcome.INCONCLUSIVE, ["poor_video"], headers={"User-Agent": old_chrome})
    assert "Start a new call now" not in page  # the server would refuse it: the page sends them to /verify
    assert 'href="/verify">Back to your verification' in page


def test_the_closed_account_page_shows_the_way_back(api: Api, market: Registry) -> None:
    asked(api)
    browser = signed_in(api)
    with unit_of_work(market.sessions) as session:
        assert close_account(session, "acc-1", actor="account-service", now=market.now()).closed
    response = browser.get("/verify")
    assert response.status_code == 410
    page = response.get_data(as_text=True)
    assert "This account is closed" in page and len(back_links(page)) == 2


# ---------------------------------------------------------------- the daily limit, a verified account

def use_up_the_limit(registry: Registry, clock: FakeClock) -> list[dt.datetime]:
    started = []
    for _ in range(registry.settings.daily_session_limit):
        started.append(registry.now())
        journey.start_call(registry.sessions, registry.meet, "acc-1", settings=registry.settings, now=registry.now())
        with registry.sessions.begin() as session:  # the call ended without a decision
            for call in session.scalars(sa.select(CallSession).where(CallSession.status == SessionStatus.WAITING)):
                call.status, call.ended_at = SessionStatus.EXPIRED, registry.now()
        clock.advance(minutes=20)
    return started


@pytest.mark.parametrize("timezone,shown", [(None, "(UTC)"), ("Asia/Kolkata", "(Asia/Kolkata)")])
def test_at_the_daily_limit_verify_offers_no_start_or_booking_and_says_when(api: Api, market: Registry,
                                                                            clock: FakeClock, timezone: str | None,
                                                                            shown: str) -> None:
    asked(api, **({"timezone": timezone} if timezone else {}))
    first = use_up_the_limit(market, clock)[0]
    browser = signed_in(api)
    page = browser.get("/verify").get_data(as_text=True)
    assert "Start a call now" not in page and "Book a time" not in page
    assert "You can start again later" in page
    again = first + journey.LIMIT_WINDOW
    local = again.astimezone(dt.timezone(dt.timedelta(hours=5, minutes=30))) if timezone else again
    assert local.strftime("%A %d %B %Y at %H:%M") in page and shown in page
    refused = browser.get("/verify/book")  # nor does the booking page offer times
    assert refused.status_code == 303 and refused.headers["Location"].endswith("/verify")
    clock.advance(hours=24)
    assert "Start a call now" in signed_in(api).get("/verify").get_data(as_text=True)


def test_a_verified_freelancer_is_not_offered_a_booking(api: Api, market: Registry) -> None:
    page = outcome_page(api, market, Outcome.PASSED)
    assert "Book a time" not in page
    browser = signed_in(api)
    status = browser.get("/verify").get_data(as_text=True)
    assert "Your identity is verified" in status and "Book a time" not in status and "Start a call" not in status
    response = browser.get("/verify/book")
    assert response.status_code == 303
    assert "there is no call to book" in browser.get("/verify").get_data(as_text=True)


def test_error_pages_keep_the_navigation_and_speak_in_sentences(api: Api, market: Registry) -> None:
    asked(api)
    browser = signed_in(api)
    response = browser.get("/verify/calls/no-such-call")
    assert response.status_code == 404
    page = response.get_data(as_text=True)
    assert 'aria-label="Verification"' in page and len(back_links(page)) == 2
    assert "<h1>We cannot find that call</h1>" in page
    assert "There is no such call on your account." in page
    assert "Error code" not in page and '<p class="muted">Reference: call_session_not_found</p>' in page
    # A used link: the header too, and the way back the link itself was given.
    response = link(api, body={"return_url": BACK})
    path = urlsplit(response.get_json()["url"]).path
    fresh = api.client.application.test_client()
    assert fresh.get(path).status_code == 303
    expired = api.client.application.test_client().get(path)
    assert expired.status_code == 410
    text = expired.get_data(as_text=True)
    assert 'aria-label="Verification"' in text and len(back_links(text)) == 2


# ---------------------------------------------------------------- the privacy text, and the favicon

def test_the_privacy_text_follows_the_retention_setting(client: FlaskClient, registry: Registry) -> None:
    page = client.get("/verify/help").get_data(as_text=True)
    assert "90 days after a call ends" in page
    assert "we do not copy it" not in page
    for kept in ("last 4", "keyed fingerprint", "expiry date", "issuing country"):
        assert kept in page
    # What the browser keeps, from the same constants the sign-in and the time-zone cookie use.
    text = " ".join(page.split())
    assert "after 30 minutes without activity, or after 8 hours" in text
    assert f"in a cookie kept for {timezones.REMEMBER.days} days" in text
    registry.settings = registry.settings.replace(retention_days=30)
    page = client.get("/verify/help").get_data(as_text=True)
    assert "30 days after a call ends" in page and "90 days" not in page


def test_the_favicon_is_served_and_linked(client: FlaskClient) -> None:
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response.headers["Location"].endswith("/static/favicon.svg")
    icon = client.get("/static/favicon.svg")
    assert icon.status_code == 200 and icon.mimetype == "image/svg+xml"
    assert 'rel="icon" href="/static/favicon.svg"' in client.get("/verify/help").get_data(as_text=True)
