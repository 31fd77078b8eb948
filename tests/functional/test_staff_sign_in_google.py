"""Optional Google Workspace single sign-on, against a fake OpenID provider on real loopback HTTP (no network)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import FakeClock, make_settings
from tests.support.fake_oidc import FakeOpenIDProvider
from tests.support.staff import staff_member
from verify_service import create_app
from verify_service.audit.models import AuditEntry
from verify_service.registry import KEY, Registry
from verify_service.staff.models import Reviewer, StaffSession, Stage

CLIENT_ID = "verify-service-client"
CLIENT_SECRET = "client-secret-" + "z" * 24


@pytest.fixture
def provider() -> Iterator[FakeOpenIDProvider]:
    running = FakeOpenIDProvider(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    yield running
    running.stop()


@pytest.fixture
def sso_app(database_url: str, tmp_path: Path, clock: FakeClock, provider: FakeOpenIDProvider) -> Iterator[Flask]:
    app = create_app(make_settings(database_url, tmp_path, oidc_client_id=CLIENT_ID,
                                   oidc_client_secret=CLIENT_SECRET, oidc_discovery_url=provider.discovery_url,
                                   oidc_allowed_domain="example.com"))
    registry: Registry = app.extensions[KEY]
    registry.clock = clock
    yield app
    registry.engine.dispose()


@pytest.fixture
def sso_registry(sso_app: Flask) -> Registry:
    return sso_app.extensions[KEY]


@pytest.fixture
def browser(sso_app: Flask) -> FlaskClient:
    return sso_app.test_client()


def google_sign_in(browser: FlaskClient, next: str | None = None) -> Any:
    """Start at the app, let the provider answer (real HTTP), and bring its redirect back to the app."""
    start = browser.get("/review/sign-in/google", query_string={"next": next} if next else None)
    assert start.status_code == 303, start.get_data(as_text=True)
    at_provider = requests.get(start.headers["Location"], allow_redirects=False, timeout=5)
    assert at_provider.status_code == 302, at_provider.text
    back = urlsplit(at_provider.headers["Location"])
    return browser.get(f"{back.path}?{back.query}")


def live_sessions(registry: Registry) -> list[StaffSession]:
    with registry.sessions() as session:
        return list(session.scalars(sa.select(StaffSession).where(StaffSession.revoked_at.is_(None))))


def failures(registry: Registry) -> list[dict[str, Any]]:
    with registry.sessions() as session:
        return [entry.details for entry in session.scalars(
            sa.select(AuditEntry).where(AuditEntry.action == "staff.sign_in_failed").order_by(AuditEntry.seq))]


def test_a_workspace_reviewer_signs_in_with_google(browser, sso_registry, provider) -> None:
    reviewer = staff_member(sso_registry, email="reviewer@example.com")
    assert "Sign in with Google" in browser.get("/review/sign-in").get_data(as_text=True)
    done = google_sign_in(browser, next="/review/lead/accounts")
    assert done.status_code == 303 and done.headers["Location"] == "/review/lead/accounts"
    assert browser.get_cookie("verify_staff") is not None

    asked = provider.authorize_requests[-1]
    assert asked["hd"] == "example.com" and asked["nonce"] and asked["state"]
    assert asked["redirect_uri"] == f"{sso_registry.settings.base_url}/review/sign-in/google/callback"
    assert set(asked["scope"].split()) >= {"openid", "email"}
    [live] = live_sessions(sso_registry)
    assert live.stage is Stage.ACTIVE and live.reviewer_id == reviewer.id
    with sso_registry.sessions() as session:
        entry = session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "staff.sign_in")).one()
    assert entry.details == {"method": "google"} and entry.actor == f"reviewer:{reviewer.id}"


@pytest.mark.parametrize(("claims", "reason"), [
    ({"hd": "other.example"}, "wrong_domain"),
    ({"hd": None}, "wrong_domain"),                       # a consumer Google account: no hosted domain
    ({"email_verified": False}, "unverified_email"),
    ({"email_verified": "true"}, "unverified_email"),     # only a real boolean counts
    ({"email": "stranger@example.com"}, "unknown_account"),
])
def test_only_verified_existing_workspace_staff_get_in(browser, sso_registry, provider, claims, reason) -> None:
    staff_member(sso_registry, email="reviewer@example.com")
    provider.user = {**provider.user, **claims}
    if provider.user.get("hd") is None:
        provider.user.pop("hd")
    refused = google_sign_in(browser)
    text = refused.get_data(as_text=True)
    assert refused.status_code == 403 and 'role="alert"' in text and "cannot sign in here" in text
    assert live_sessions(sso_registry) == [] and browser.get_cookie("verify_staff") is None
    assert failures(sso_registry) == [{"reason": reason, "method": "google"}]
    with sso_registry.sessions() as session:  # nobody is created from a Google identity
        assert session.scalar(sa.select(sa.func.count()).select_from(Reviewer)) == 1


def test_a_disabled_reviewer_cannot_use_google_either(browser, sso_registry) -> None:
    reviewer = staff_member(sso_registry, email="reviewer@example.com")
    with sso_registry.sessions.begin() as session:
        session.get(Reviewer, reviewer.id).active = False
    assert google_sign_in(browser).status_code == 403
    assert failures(sso_registry) == [{"reason": "inactive", "method": "google"}]


def test_a_replayed_or_foreign_callback_is_refused(browser, sso_app, sso_registry, provider) -> None:
    staff_member(sso_registry, email="reviewer@example.com")
    start = browser.get("/review/sign-in/google")
    callback = requests.get(start.headers["Location"], allow_redirects=False, timeout=5).headers["Location"]
    back = urlsplit(callback)
    stranger = sso_app.test_client()  # another browser: it never started this sign-in (login CSRF)
    assert stranger.get(f"{back.path}?{back.query}").status_code == 403
    assert browser.get(f"{back.path}?{back.query}").status_code == 303
    assert browser.get(f"{back.path}?{back.query}").status_code == 403  # the state works once
    forged = browser.get("/review/sign-in/google/callback?code=x&state=made-up")
    assert forged.status_code == 403
    assert [f["reason"] for f in failures(sso_registry)] == ["provider_error"] * 3
    assert len(live_sessions(sso_registry)) == 1


def test_an_unreachable_provider_leaves_the_password_sign_in(browser, provider) -> None:
    provider.stop()
    down = browser.get("/review/sign-in/google")
    text = down.get_data(as_text=True)
    assert down.status_code == 503 and "unavailable" in text and 'name="password"' in text


def test_without_configuration_there_is_no_google_sign_in(client) -> None:
    assert client.get("/review/sign-in/google").status_code == 404
    assert client.get("/review/sign-in/google/callback?code=x&state=y").status_code == 404


def test_the_fake_provider_refuses_what_google_would(provider) -> None:
    """The double is checked against the contract: wrong client credentials and reused codes fail."""
    query = {"client_id": CLIENT_ID, "response_type": "code", "scope": "openid email", "state": "s", "nonce": "n",
             "redirect_uri": "http://127.0.0.1:1/cb"}
    code = parse_qs(urlsplit(requests.get(f"{provider.issuer}/authorize", params=query, allow_redirects=False,
                                          timeout=5).headers["Location"]).query)["code"][0]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": query["redirect_uri"]}
    assert requests.post(f"{provider.issuer}/token", data=form, auth=(CLIENT_ID, "wrong"), timeout=5).status_code == 401
    assert requests.post(f"{provider.issuer}/token", data=form, auth=(CLIENT_ID, CLIENT_SECRET),
                         timeout=5).status_code == 200
    assert requests.post(f"{provider.issuer}/token", data=form, auth=(CLIENT_ID, CLIENT_SECRET),
                         timeout=5).status_code == 400
