"""Per-IP rate limits for the public endpoints (Flask-Limiter).

Storage is in memory by default (one process); with several web processes
set ``VERIFY_RATE_LIMIT_STORAGE`` (e.g. ``redis://127.0.0.1:6379``) so they
share the counts. Behind a proxy, ``VERIFY_TRUSTED_PROXIES`` says how many
``X-Forwarded-For`` hops to trust, so the limit applies to the real client.
"""

from __future__ import annotations

from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

limiter = Limiter(key_func=get_remote_address, headers_enabled=True)


def init_rate_limits(app: Flask, storage_uri: str, trusted_proxies: int) -> None:
    app.config["RATELIMIT_STORAGE_URI"] = storage_uri
    if trusted_proxies:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=trusted_proxies)  # type: ignore[method-assign]
    limiter.init_app(app)
