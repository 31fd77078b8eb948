"""verify-service: video identity verification for a freelance marketplace."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import sqlalchemy.orm
from flask import Flask, Request, Response, jsonify
from flask.sessions import SecureCookieSessionInterface
from flask_openapi3 import Info, OpenAPI

from verify_service.observability import register_observability
from verify_service.settings import Settings, finalize, load_settings
from verify_service.web_input import register_page_input_checks

__version__ = "0.1.0"

ROOT = Path(__file__).resolve().parent.parent


def create_app(config: Settings | Mapping[str, Any] | None = None, *, serving: bool = True) -> Flask:
    """The WSGI application factory (``gunicorn "verify_service:create_app()"``).

    ``config`` is a :class:`Settings`, a mapping of ``VERIFY_*`` variables, or
    ``None`` to read the process environment. ``serving=False`` is for a command
    that answers no request (``verify-service db upgrade``, ``outbox status``…):
    what only requests use (the user-agent parser, ~0.7 s) loads when first
    needed instead of at start.
    """
    settings = _settings(config)
    app = _make_flask(settings)
    register_observability(app, settings)
    register_extensions(app, settings, serving=serving)
    register_page_input_checks(app)  # every page's input checked before its view; before the routes (ids)
    register_blueprints(app)
    register_labels(app)
    register_errorhandlers(app)
    register_security_headers(app)
    register_commands(app)
    return app


def _settings(config: Settings | Mapping[str, Any] | None) -> Settings:
    if isinstance(config, Settings):
        return finalize(config)
    return load_settings(config)


def _make_flask(settings: Settings) -> OpenAPI:
    from verify_service.api.schemas import Problem
    from verify_service.api.validation import problem_from_validation_error

    app = OpenAPI(
        __name__,
        info=Info(title="verify-service", version=__version__,
                  description="Video identity verification: holds, restrictions and verification requests."),
        security_schemes={"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "opaque API key"}},
        doc_ui=False,
        validation_error_status="422",
        validation_error_model=Problem,
        validation_error_callback=problem_from_validation_error,
        validate_response=settings.validate_responses,
        template_folder=str(ROOT / "templates"),
        static_folder="static",
    )
    app.config.update(SECRET_KEY=settings.secret_key,
                      MAX_CONTENT_LENGTH=1024 * 1024, TESTING=settings.env == "testing")
    app.session_interface = _SignedCookieSessionWhenSent()
    return app


class _SignedCookieSessionWhenSent(SecureCookieSessionInterface):
    """Flask's signed cookie session, which builds its signer only when a request sends the cookie.

    API calls never send one (the hot path among them): they get an empty session for free.
    """

    def open_session(self, app: Flask, request: Request) -> Any:
        if self.get_cookie_name(app) not in request.cookies and app.secret_key:
            return self.session_class()
        return super().open_session(app, request)


def register_extensions(app: Flask, settings: Settings, *, serving: bool = True) -> None:
    from verify_service.db import make_engine, make_sessionmaker
    from verify_service.registry import KEY, Registry, close_session

    from verify_service.csrf import init_csrf
    from verify_service.observability.metrics import install_business_gauges
    from verify_service.ratelimit import init_rate_limits
    from verify_service.support import classifier

    import verify_service.models  # noqa: F401  (every mapped class)

    sqlalchemy.orm.configure_mappers()  # now, once, and not in each gunicorn worker's first request
    # A request waits this long for a pooled connection, then answers 503 (not 500 after 30 s).
    engine = make_engine(settings.database_url, pool_timeout=settings.db_pool_timeout_seconds)
    app.extensions[KEY] = registry = Registry(settings=settings, engine=engine, sessions=make_sessionmaker(engine))
    install_business_gauges(app, engine, registry.now)  # the features add their gauges as they register
    app.teardown_appcontext(close_session)
    init_rate_limits(app, settings.rate_limit_storage, settings.trusted_proxies)
    init_csrf(app, settings)
    if serving:
        classifier()  # load the user-agent parser now, not on the first request


# Each feature adds itself to the app from its ``blueprint.py`` (``register(app)``): its routes, and
# anything it hangs on the registry. Order matters only where URLs overlap: none do.
FEATURES = ("accounts", "webhooks", "support", "calls", "freelancer", "staff", "review", "leads", "inbound",
            "events", "simulations", "meet_events")


def register_blueprints(app: Flask) -> None:
    import importlib

    from verify_service import health, web
    from verify_service.registry import KEY

    assert isinstance(app, OpenAPI)
    for feature in FEATURES:
        importlib.import_module(f"verify_service.{feature}.blueprint").register(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(web.bp)
    if app.extensions[KEY].settings.meet_backend == "sandbox":
        from integrations.sandbox_google import register_sandbox

        # The Meet + Calendar + Workspace Events emulator the gateways talk to over HTTP; it pushes Meet events
        # as the settings say.
        register_sandbox(app, app.extensions[KEY].now, app.extensions[KEY].settings)
    settings = app.extensions[KEY].settings
    if not settings.smtp_url and not settings.is_production:  # production requires VERIFY_SMTP_URL
        from integrations.sandbox_mail import register_sandbox_mail

        register_sandbox_mail(app, app.extensions[KEY].sessions)  # /sandbox/mail: the mail the sandbox mailbox kept instead of sending it
    if not settings.is_production:  # /sandbox/account-service: where development's webhooks go (README)
        from integrations.sandbox_account_service import register_sandbox_account_service

        register_sandbox_account_service(app, app.extensions[KEY].sessions, settings.account_service_webhook_secret,
                                         app.extensions[KEY].now)

    register_documents(app)


# The generated documents change only with a deploy: caches may keep them a few minutes.
DOCUMENT_CACHE_CONTROL = "public, max-age=300"


def register_documents(app: OpenAPI) -> None:
    """``/api/v1/openapi.json`` and ``/api/v1/asyncapi.json``: public (no API key), generated, never hand-written."""
    from verify_service.registry import KEY
    from verify_service.webhooks.asyncapi import asyncapi_document as build_asyncapi

    def served(document: dict[str, object]) -> Response:
        response = jsonify(document)
        response.headers["Cache-Control"] = DOCUMENT_CACHE_CONTROL
        return response

    def openapi_document() -> Response:
        return served(app.api_doc)

    def asyncapi_document() -> Response:
        return served(build_asyncapi(app.extensions[KEY].settings.account_service_webhook_url, __version__))

    # Plain routes, so the OpenAPI document does not describe itself (nor the AsyncAPI one).
    app.add_url_rule("/api/v1/openapi.json", "openapi_document", openapi_document)
    app.add_url_rule("/api/v1/asyncapi.json", "asyncapi_document", asyncapi_document)


def register_labels(app: Flask) -> None:
    from verify_service import labels

    labels.register(app)  # the one label catalogue every page shows codes through


def register_errorhandlers(app: Flask) -> None:
    from verify_service.errors import register_errorhandlers as register

    register(app)

    @app.context_processor
    def _has_endpoint() -> dict[str, object]:
        # Navigation shows only the pages that exist (and the role allows: see templates/review/_layout.html).
        from verify_service.staff.models import Role

        return {"has_endpoint": lambda name: name in app.view_functions, "role_of": Role}


DEFAULT_CSP = "default-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
# Directives every policy keeps, also one a blueprint sets for its own pages.
REQUIRED_CSP = {"object-src": "'none'", "base-uri": "'none'", "frame-ancestors": "'none'"}
HSTS = "max-age=31536000; includeSubDomains"


@functools.lru_cache(maxsize=64)  # a handful of policies: the default and a few pages' own
def _hardened_csp(policy: str) -> str:
    present = {part.split()[0].lower() for part in policy.split(";") if part.strip()}
    missing = [f"{name} {value}" for name, value in REQUIRED_CSP.items() if name not in present]
    return "; ".join([policy.rstrip("; ")] + missing) if missing else policy


def register_security_headers(app: Flask) -> None:
    """Security headers on every response; a page's own CSP keeps the required directives."""
    from verify_service.registry import KEY

    settings = app.extensions[KEY].settings
    hsts = settings.env != "development" and settings.base_url.startswith("https://")

    @app.after_request
    def _headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers["Content-Security-Policy"] = _hardened_csp(
            response.headers.get("Content-Security-Policy", DEFAULT_CSP))
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if hsts:
            response.headers.setdefault("Strict-Transport-Security", HSTS)
        return response


def register_commands(app: Flask) -> None:
    from verify_service.cli import register_flask_commands

    register_flask_commands(app)
