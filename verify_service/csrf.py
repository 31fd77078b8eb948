"""CSRF protection for the browser pages (Flask-WTF's CSRFProtect).

The API and the inbound webhooks authenticate every request (API key,
signature) and carry no cookies, so only the browser blueprints opt in, with
:func:`protect_posts` as their ``before_request``. Forms send the token as a
hidden ``csrf_token`` field, scripts as an ``X-CSRFToken`` header.
"""

from __future__ import annotations

from flask import Flask, request
from flask_wtf.csrf import CSRFError, CSRFProtect

from verify_service.errors import DomainError, domain_error_response
from verify_service.settings import Settings

csrf = CSRFProtect()


class StaleForm(DomainError):
    status = 400
    code = "csrf_failed"
    title = "This page has expired"


def init_csrf(app: Flask, settings: Settings) -> None:
    secure = settings.base_url.startswith("https://")
    app.config.update(
        WTF_CSRF_CHECK_DEFAULT=False,  # opt-in per blueprint (protect_posts)
        # The pages send no Referer (Referrer-Policy: no-referrer), so the HTTPS referrer check would refuse
        # every post; the token plus SameSite cookies carry the protection.
        WTF_CSRF_SSL_STRICT=False,
        WTF_CSRF_TIME_LIMIT=8 * 3600,  # as long as a freelancer session can last
        SESSION_COOKIE_NAME="__Host-verify_csrf" if secure else "verify_csrf",
        SESSION_COOKIE_SECURE=secure,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
    )
    csrf.init_app(app)

    @app.errorhandler(CSRFError)
    def _stale(error: CSRFError) -> object:
        return domain_error_response(StaleForm("For your security, forms expire. Go back, reload the page and try again."))


def protect_posts() -> None:
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        csrf.protect()
