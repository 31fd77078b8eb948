"""Launch links and freelancer sessions: single use, short-lived, hashed, with safe cookies (both backends)."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from flask import Flask

from tests.conftest import Api, FakeClock, assert_problem, make_settings
from verify_service import create_app
from verify_service.accounts.models import Account
from verify_service.freelancer.models import FreelancerSession, LaunchLink
from verify_service.registry import KEY


def launch_url(api: Api, account_id: str = "acc-1") -> str:
    response = api.client.post(f"/api/v1/accounts/{account_id}/launch-links", headers=api.auth)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()["url"]


def path_of(url: str) -> str:
    return urlsplit(url).path


@pytest.fixture
def freelancer(api: Api) -> Api:
    api.put_account("acc-1")
    api.request_verification("acc-1", {"reason": "new_account", "place_hold": True,
                                       "deadline": "2026-11-29T12:00:00Z"})
    return api


def test_the_api_issues_a_ten_minute_link_stored_only_as_a_hash(freelancer: Api, registry, clock) -> None:
    response = freelancer.client.post("/api/v1/accounts/acc-1/launch-links", headers=freelancer.auth)
    body = response.get_json()
    assert response.status_code == 201
    assert body["url"].startswith(f"{registry.settings.base_url}/verify/launch/")
    assert body["expires_at"] == (clock() + dt.timedelta(minutes=10)).isoformat().replace("+00:00", "Z")
    token = path_of(body["url"]).rsplit("/", 1)[1]
    assert len(token) >= 40
    with registry.sessions() as session:
        stored = session.scalars(sa.select(LaunchLink.token_hash)).all()
    assert len(stored) == 1 and token not in stored[0] and stored[0] != token


def test_the_api_refuses_unknown_and_closed_accounts_and_callers_without_a_key(freelancer: Api, registry,
                                                                              clock) -> None:
    assert_problem(freelancer.client.post("/api/v1/accounts/ghost/launch-links", headers=freelancer.auth),
                   404, "account_not_found")
    assert_problem(freelancer.client.post("/api/v1/accounts/acc-1/launch-links"), 401, "unauthorized")
    with registry.sessions.begin() as session:
        session.get(Account, "acc-1").closed_at = clock()
    assert_problem(freelancer.client.post("/api/v1/accounts/acc-1/launch-links", headers=freelancer.auth),
                   409, "account_closed")


def test_a_mail_scanner_probing_with_head_does_not_spend_the_link(freelancer: Api) -> None:
    url = path_of(launch_url(freelancer))
    client = freelancer.client.application.test_client()
    probed = client.head(url)
    assert probed.status_code == 200 and "Set-Cookie" not in probed.headers
    assert probed.headers["Cache-Control"] == "no-store"
    assert client.get(url).status_code == 303  # the freelancer's click still opens the session
    assert client.get(url).status_code == 410


def test_a_link_opens_a_session_once(freelancer: Api) -> None:
    url = path_of(launch_url(freelancer))
    client = freelancer.client.application.test_client()
    opened = client.get(url)
    assert opened.status_code == 303 and opened.headers["Location"].endswith("/verify")
    assert opened.headers["Referrer-Policy"] == "no-referrer"
    assert opened.headers["Cache-Control"] == "no-store"
    cookie = opened.headers["Set-Cookie"]
    assert cookie.startswith("verify_session=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain http in development and tests
    page = client.get("/verify")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "send new proposals to jobs" in text and "change your profile photo" in text
    # The hold is named, and what still works is said precisely: withdrawals are not blocked by it.
    assert "Verification hold." in text and "cannot send new proposals to jobs or change your profile photo" in text
    assert "You can withdraw your earnings as usual." in text
    assert "Work on your existing contracts carries on as usual" in text
    assert "Until then, your account is on hold" not in text
    assert "29 November 2026" in text

    again = freelancer.client.application.test_client().get(url)
    assert again.status_code == 410
    assert "can no longer be used" in again.get_data(as_text=True)


def test_an_expired_or_unknown_link_explains_how_to_get_a_new_one(freelancer: Api, clock) -> None:
    url = path_of(launch_url(freelancer))
    clock.advance(minutes=10)
    expired = freelancer.client.get(url)
    assert expired.status_code == 410 and "Identity verification" in expired.get_data(as_text=True)
    assert freelancer.client.get("/verify/launch/not-a-real-token").status_code == 410


def test_sessions_end_after_30_idle_minutes_and_after_8_hours(freelancer: Api, clock) -> None:
    client = freelancer.client.application.test_client()
    client.get(path_of(launch_url(freelancer)))
    clock.advance(minutes=29)
    assert client.get("/verify").status_code == 200
    clock.advance(minutes=29)  # 58 minutes in, but active 29 minutes ago
    assert client.get("/verify").status_code == 200
    clock.advance(minutes=31)
    signed_out = client.get("/verify")
    assert signed_out.status_code == 401 and "start again" in signed_out.get_data(as_text=True)

    client = freelancer.client.application.test_client()
    client.get(path_of(launch_url(freelancer)))
    for _ in range(24):  # busy for 8 hours, never idle
        clock.advance(minutes=20)
        if client.get("/verify").status_code != 200:
            break
    assert client.get("/verify").status_code == 401


def test_without_a_session_the_page_asks_to_start_again(client) -> None:
    assert client.get("/verify").status_code == 401
    client.set_cookie("verify_session", "forged-token-value")
    assert client.get("/verify").status_code == 401


def test_two_tabs_racing_on_one_link_open_one_session(freelancer: Api, registry) -> None:
    url = path_of(launch_url(freelancer))
    app = freelancer.client.application
    barrier = threading.Barrier(6)
    codes: list[int] = []

    def open_link() -> None:
        barrier.wait()
        codes.append(app.test_client().get(url).status_code)

    threads = [threading.Thread(target=open_link) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(codes) == [303] + [410] * 5
    with registry.sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(FreelancerSession)) == 1


@pytest.fixture
def https_app(database_url: str, tmp_path: Path, clock: FakeClock) -> Iterator[Flask]:
    app = create_app(make_settings(database_url, tmp_path, base_url="https://verify.example"))
    app.extensions[KEY].clock = clock
    yield app
    app.extensions[KEY].engine.dispose()


def test_over_https_the_cookie_is_secure_with_the_host_prefix(https_app: Flask) -> None:
    api = Api(https_app.test_client())
    api.put_account("acc-1")
    url = launch_url(api)
    assert url.startswith("https://verify.example/verify/launch/")
    client = https_app.test_client()
    opened = client.get(path_of(url), base_url="https://verify.example")
    cookie = opened.headers["Set-Cookie"]
    assert cookie.startswith("__Host-verify_session=") and "Secure" in cookie and "Path=/" in cookie
    assert "Domain" not in cookie
    assert client.get("/verify", base_url="https://verify.example").status_code == 200


def test_the_operation_is_in_the_openapi_document(client) -> None:
    document = client.get("/api/v1/openapi.json").get_json()
    operation = document["paths"]["/api/v1/accounts/{account_id}/launch-links"]["post"]
    assert operation["security"] == [{"bearer": []}] and "201" in operation["responses"]


def test_used_and_expired_links_and_sessions_are_purged_after_a_day(freelancer: Api, registry, clock) -> None:
    from jobs.maintenance import purge_freelancer_links

    freelancer.client.application.test_client().get(path_of(launch_url(freelancer)))  # used, session open
    launch_url(freelancer)  # never used
    assert purge_freelancer_links(freelancer.client.application) == 0
    clock.advance(hours=9)  # both links and the session are over, but kept a day
    assert purge_freelancer_links(freelancer.client.application) == 0
    clock.advance(hours=24)
    assert purge_freelancer_links(freelancer.client.application) == 3
    with registry.sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(LaunchLink)) == 0
