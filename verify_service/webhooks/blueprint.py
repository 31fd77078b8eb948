"""The outbox on the app: its gauges on ``/metrics`` (the relay runs in the scheduler, the lead pages show it)."""

from __future__ import annotations

from flask import Flask

from verify_service.observability.metrics import add_gauges
from verify_service.webhooks.metrics import outbox_gauges


def register(app: Flask) -> None:
    add_gauges(app, "outbox", outbox_gauges)
