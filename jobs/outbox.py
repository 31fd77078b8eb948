"""Delivering the outbox to the account service (every ~2 s)."""

from __future__ import annotations

import logging
import time

from flask import Flask

from integrations.account_service import WebhookSender
from verify_service.registry import KEY, Registry
from verify_service.webhooks.relay import PassReport, Relay

log = logging.getLogger("jobs")
RELAY_KEY = "verify_service.relay"


def relay_for(app: Flask) -> Relay | None:
    """The app's relay (one sender, so connections are reused across passes); None without a URL."""
    if RELAY_KEY not in app.extensions:
        registry: Registry = app.extensions[KEY]
        settings = registry.settings
        relay = None
        if settings.account_service_webhook_url:
            sender = WebhookSender(settings.account_service_webhook_url, settings.account_service_webhook_secret)
            relay = Relay(registry.sessions, sender, clock=registry.now)
        app.extensions[RELAY_KEY] = relay
    return app.extensions[RELAY_KEY]


def deliver_outbox(app: Flask) -> PassReport | None:
    """One relay pass. The relay commits per claim and per attempt (no transaction spans HTTP)."""
    relay = relay_for(app)
    if relay is None:
        log.debug("outbox: VERIFY_ACCOUNT_SERVICE_WEBHOOK_URL is not set; events wait in the outbox")
        return None
    started = time.monotonic()
    report = relay.run_once()
    if report.delivered or report.failed or report.dead or report.errors:
        log.info("job deliver_outbox: %d delivered, %d failed, %d dead-lettered, %d errors in %.3fs",
                 report.delivered, report.failed, report.dead, report.errors, time.monotonic() - started)
    return report
