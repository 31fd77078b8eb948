"""Optional single sign-on with Google Workspace (OpenID Connect via authlib).

On only when ``VERIFY_OIDC_CLIENT_ID`` is set; local accounts keep working
(the embedded default, and break-glass when Google is unreachable). authlib
keeps the state and nonce in the signed Flask session cookie, checks the
ID token's signature against the provider's JWKS, and its issuer, audience,
expiry and nonce. Which identities may then sign in is decided by
:func:`verify_service.staff.services.sign_in_with_google`.
"""

from __future__ import annotations

import logging
from typing import Any

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.flask_client import FlaskOAuth2App, OAuth
from flask import Flask, current_app, url_for
from joserfc.errors import JoseError

from verify_service.registry import KEY, registry

log = logging.getLogger(__name__)

EXTENSION = "verify_staff_oidc"
NAME = "google"
TIMEOUT_SECONDS = 10
# What talking to the provider can raise: HTTP and network errors, OAuth errors (a state that does not
# match, an error from the provider), token validation errors, and malformed JSON.
PROVIDER_ERRORS: tuple[type[BaseException], ...] = (
    AuthlibBaseError, JoseError, requests.RequestException, ValueError, KeyError, TypeError)


def init_app(app: Flask) -> None:
    """Register the Google client on ``app`` when the settings configure one; otherwise do nothing."""
    settings = app.extensions[KEY].settings
    if not settings.oidc_client_id:
        return
    oauth = OAuth(app)
    oauth.register(NAME, client_id=settings.oidc_client_id, client_secret=settings.oidc_client_secret,
                   server_metadata_url=settings.oidc_discovery_url,
                   client_kwargs={"scope": "openid email profile", "default_timeout": TIMEOUT_SECONDS})
    app.extensions[EXTENSION] = oauth


def enabled() -> bool:
    return EXTENSION in current_app.extensions


def client() -> FlaskOAuth2App | None:
    oauth: OAuth | None = current_app.extensions.get(EXTENSION)
    return oauth.create_client(NAME) if oauth is not None else None


def redirect_uri() -> str:
    """The callback address registered with the provider (built from VERIFY_BASE_URL, not the Host header)."""
    return registry().settings.base_url + url_for("staff.google_callback")


def start_url(google: FlaskOAuth2App, *, allowed_domain: str) -> str | None:
    """The provider's authorization URL (state and nonce saved in the session), or None when unreachable.

    Fails closed: when the discovery document cannot be read, Google sign-in is unavailable (logged)
    and the password sign-in remains. Raises nothing.
    """
    try:
        # "hd" only preselects the Workspace account at Google; the callback checks the claim itself.
        extra = {"hd": allowed_domain} if allowed_domain else {}
        response = google.authorize_redirect(redirect_uri(), **extra)
    except PROVIDER_ERRORS as error:
        log.warning("Google sign-in unavailable (discovery %s): %s: %s",
                    registry().settings.oidc_discovery_url, type(error).__name__, error)
        return None
    return response.headers["Location"]


def verified_claims(google: FlaskOAuth2App) -> dict[str, Any] | None:
    """The validated ID token claims of this callback request, or None when anything is wrong (logged).

    Fails closed: a network error, a provider error, a state or nonce that does not match, or a
    token that does not validate all refuse the sign-in. Raises nothing.
    """
    try:
        token = google.authorize_access_token()
    except PROVIDER_ERRORS as error:
        log.warning("Google sign-in callback refused: %s: %s", type(error).__name__, error)
        return None
    userinfo = token.get("userinfo") if isinstance(token, dict) else None
    return dict(userinfo) if userinfo else None
