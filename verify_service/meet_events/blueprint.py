"""The Meet-events feature on the app: ``POST /webhooks/google/meet-events``, its token verifier, its gauges."""

from __future__ import annotations

from collections.abc import Mapping

from flask import Flask

from verify_service.meet_events.metrics import register_metrics
from verify_service.meet_events.tokens import Certs, HttpCerts, PushVerifier
from verify_service.registry import KEY, Registry
from verify_service.settings import with_sandbox_defaults

VERIFIER = "verify_service.meet_events.verifier"


def _sandbox_certs(app: Flask) -> Mapping[str, str]:
    """The sandbox's own signing certificates, read in process (it is served by this very app)."""
    from integrations.sandbox_google import sandbox_of

    return sandbox_of(app).push.certs()


def register(app: Flask) -> None:
    from verify_service.meet_events.views import bp

    registry: Registry = app.extensions[KEY]
    settings = with_sandbox_defaults(registry.settings)
    register_metrics(app)  # the read gauges count polling's reads too
    certs: Certs
    if settings.meet_backend == "sandbox":
        def certs(*, refresh: bool = False) -> Mapping[str, str]:  # in process: nothing to refresh
            return _sandbox_certs(app)  # read at each push: the sandbox registers after the features
    else:
        certs = HttpCerts(settings.meet_events_certs_url)
    app.extensions[VERIFIER] = PushVerifier(audience=settings.meet_events_audience,
                                            email=settings.meet_events_push_account, certs=certs)
    # With events the service's attendance is real time: the waiting room and the reviewer's attendance
    # panel poll it every second (templates fall back to their slower cadence without this).
    app.jinja_env.globals["attendance_poll_seconds"] = 1 if settings.meet_events else None
    app.register_blueprint(bp)
