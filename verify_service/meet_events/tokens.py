"""Who may push Meet events: the OIDC token Cloud Pub/Sub attaches to every push.

A push subscription with authentication sends ``Authorization: Bearer <JWT>``, signed by Google
(RS256, the key named by the header's ``kid``, among Google's published certificates). The token
is accepted only when google-auth verifies its signature and lifetime (``google.auth.jwt.decode``,
a little clock skew allowed) and:

* ``aud`` is ``VERIFY_MEET_EVENTS_AUDIENCE`` (what the push subscription was told to send);
* ``iss`` is Google (``accounts.google.com``);
* ``email`` is ``VERIFY_MEET_EVENTS_PUSH_ACCOUNT``, the push subscription's service account, and
  ``email_verified`` is true — anyone can get a Google-signed token for their own audience, only
  that account can get one with its email.

The certificates are fetched over HTTP and kept as long as their ``Cache-Control`` allows; a
token naming a key not among them makes one early refresh (Google rotates keys), at most once a
minute. With the sandbox the app verifies against the sandbox's own certificates, in process.
"""

from __future__ import annotations

import hmac
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import google.auth.exceptions
import requests
from google.auth import jwt

from integrations.meet_events import GOOGLE_ISSUERS

log = logging.getLogger(__name__)

CLOCK_SKEW_SECONDS = 30
REFRESH_AT_MOST_EVERY = 60.0
DEFAULT_MAX_AGE = 300.0

class Certs(Protocol):
    """The signing certificates ``{kid: PEM}``; ``refresh`` asks for them again rather than from a cache."""

    def __call__(self, *, refresh: bool = False) -> Mapping[str, str]: ...


class PushRefused(Exception):
    """The push's token is missing or not acceptable; the message says why (never the token)."""


class HttpCerts:
    """Google's signing certificates (``{kid: PEM}``) from ``url``, kept while ``Cache-Control`` allows."""

    def __init__(self, url: str, *, timeout: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._url, self._timeout, self._clock = url, timeout, clock
        self._lock = threading.Lock()
        self._certs: dict[str, str] = {}
        self._expires = 0.0
        self._fetched = float("-inf")

    def __call__(self, *, refresh: bool = False) -> Mapping[str, str]:
        with self._lock:
            now = self._clock()
            due = now >= self._expires or (refresh and now - self._fetched >= REFRESH_AT_MOST_EVERY)
            if due or not self._certs:
                self._fetch(now)
            return dict(self._certs)

    def _fetch(self, now: float) -> None:
        try:
            response = requests.get(self._url, timeout=self._timeout)
            response.raise_for_status()
            certs = response.json()
        except (requests.RequestException, ValueError) as exc:
            if self._certs:  # keep verifying with the keys we have
                log.warning("cannot refresh the push token certificates from %s: %s", self._url, exc)
                self._expires = now + REFRESH_AT_MOST_EVERY
                return
            raise PushRefused(f"the certificates to verify the token could not be read ({exc})") from exc
        if not isinstance(certs, dict) or not all(isinstance(v, str) for v in certs.values()):
            raise PushRefused("the certificates to verify the token are not a {kid: certificate} object")
        match = re.search(r"max-age=(\d+)", response.headers.get("Cache-Control", ""))
        self._certs, self._fetched = dict(certs), now
        self._expires = now + (float(match.group(1)) if match else DEFAULT_MAX_AGE)


class PushVerifier:
    """Accepts a push's ``Authorization`` header or raises :class:`PushRefused`."""

    def __init__(self, *, audience: str, email: str, certs: Certs) -> None:
        self._audience, self._email, self._certs = audience, email, certs

    def verify(self, authorization: str | None) -> dict[str, Any]:
        """The token's claims. Raises: PushRefused."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise PushRefused("the push carries no bearer token (configure the push subscription with "
                              "authentication)")
        token = token.strip()
        try:
            header = jwt.decode_header(token)
        except (ValueError, google.auth.exceptions.GoogleAuthError) as exc:
            raise PushRefused(f"the token is not a JWT ({exc})") from None
        certs = self._certs()
        if header.get("kid") not in certs:  # a key newer than the certificates kept (Google rotates them)
            certs = self._certs(refresh=True)
        try:
            claims = jwt.decode(token, certs=dict(certs), audience=self._audience,
                                clock_skew_in_seconds=CLOCK_SKEW_SECONDS)
        except (ValueError, google.auth.exceptions.GoogleAuthError) as exc:
            raise PushRefused(f"the token does not verify: {exc}") from None
        if claims.get("iss") not in GOOGLE_ISSUERS:
            raise PushRefused(f"the token was not issued by Google (iss {claims.get('iss')!r})")
        email = claims.get("email")
        if not isinstance(email, str) or not hmac.compare_digest(email.encode(), self._email.encode()):
            raise PushRefused("the token is not the push service account's (email does not match "
                              "VERIFY_MEET_EVENTS_PUSH_ACCOUNT)")
        if claims.get("email_verified") is not True:
            raise PushRefused("the token's email is not verified")
        return dict(claims)
