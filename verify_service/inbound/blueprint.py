"""The inbound-webhooks feature on the app: ``POST /webhooks/account-service`` and the verifier of its signatures."""

from __future__ import annotations

from flask import Flask

from verify_service.inbound.events import WebhookVerifier
from verify_service.registry import KEY, Registry


def register(app: Flask) -> None:
    from verify_service.inbound.views import bp

    registry: Registry = app.extensions[KEY]
    # Built now from the settings, so a malformed secret stops the app at start-up.
    registry.inbound_verifier = WebhookVerifier(registry.settings.inbound_webhook_secrets)
    app.register_blueprint(bp)
