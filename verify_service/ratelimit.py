"""Rate limits (Flask-Limiter): the cheap front line on public and costly endpoints.

Limited: client checks and the support matrix (per IP,
``VERIFY_CLIENT_CHECK_RATE_LIMIT``), launch links (per account,
``VERIFY_LAUNCH_LINK_RATE_LIMIT``), staff sign-in POSTs (per IP,
``VERIFY_SIGN_IN_RATE_LIMIT``; the database throttle with lockouts in
``staff/throttle.py`` stays the real defence) and call starts (per freelancer
session, else IP, ``VERIFY_CALL_START_RATE_LIMIT``).

Storage: Redis when ``VERIFY_REDIS_URL`` is set, so every web process shares
the counts; else ``VERIFY_RATE_LIMIT_STORAGE`` (memory by default: per
process). Behind a proxy, ``VERIFY_TRUSTED_PROXIES`` says how many
``X-Forwarded-For`` hops to trust, so the limit applies to the real client.
A refused request is a 429 with ``Retry-After``: problem+json on the API, the
HTML error page elsewhere (``errors.py``).

Never limited, and skipped before any of the limiter's bookkeeping: the
restrictions lookup (``UNLIMITED_ENDPOINTS``). Only the account service calls
it, with an API key, on the marketplace's hot path; a refusal there would stop
freelancers' work on a count rather than a fact.
"""

from __future__ import annotations

import math
import time

from flask import Flask, Response, request
from flask_limiter import Limiter, RateLimitExceeded
from flask_limiter.util import get_remote_address

from verify_service.errors import http_error_response
from verify_service.settings import Settings

# No X-RateLimit-*/Retry-After on every response: Flask-Limiter would rewrite a view's own
# Retry-After (the sign-in lockout's). Only a refusal says when to come back (too_many_requests).
limiter = Limiter(key_func=get_remote_address, headers_enabled=False)

UNLIMITED_ENDPOINTS = frozenset({"accounts_api.get_restrictions"})


@limiter.request_filter
def _unlimited() -> bool:
    return request.endpoint in UNLIMITED_ENDPOINTS


def storage_uri_for(settings: Settings) -> str:
    """Redis (shared by every process) when ``redis_url`` is set, else ``rate_limit_storage``."""
    return settings.redis_url or settings.rate_limit_storage


def init_rate_limits(app: Flask, storage_uri: str, trusted_proxies: int) -> None:
    """Attach the limiter to ``app``; ``VERIFY_REDIS_URL``, when set, wins over ``storage_uri``.

    Raises:
        flask_limiter / limits errors: the storage URI is malformed or its backend's client is missing.
    """
    from verify_service.registry import KEY

    registry = app.extensions.get(KEY)
    if registry is not None and registry.settings.redis_url:
        storage_uri = storage_uri_for(registry.settings)
    app.config["RATELIMIT_STORAGE_URI"] = storage_uri
    if trusted_proxies:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=trusted_proxies)  # type: ignore[method-assign]
    limiter.init_app(app)
    app.register_error_handler(RateLimitExceeded, too_many_requests)


def too_many_requests(error: RateLimitExceeded) -> Response:
    """The 429, with ``Retry-After`` = seconds until the breached window resets (at least 1)."""
    current = limiter.current_limit
    reset_at = current.reset_at if current is not None else time.time() + 1
    error.retry_after = max(1, math.ceil(reset_at - time.time()))
    return http_error_response(error)


def account_key() -> str:
    """The account of a ``/accounts/<account_id>/…`` API call (all API keys share one count per account)."""
    return "account:" + str((request.view_args or {}).get("account_id", ""))
