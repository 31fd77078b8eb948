"""Observability: structured logs with a request id, Prometheus metrics, and their wiring into the app."""

from __future__ import annotations

from flask import Flask

from verify_service.settings import Settings


def register_observability(app: Flask, settings: Settings) -> None:
    """Configure logging, tag requests with an id, count them, and serve ``/metrics``."""
    from verify_service.observability.logging import configure_logging
    from verify_service.observability.metrics import bp
    from verify_service.observability.requests import register_request_hooks

    configure_logging(settings.log_format)
    register_request_hooks(app)
    app.register_blueprint(bp)
