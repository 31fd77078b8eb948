"""The outbox's gauges on ``/metrics``: what waits for delivery, how long, and what was dead-lettered."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import sqlalchemy as sa
from prometheus_client.core import Metric

from verify_service.observability.metrics import age_seconds, gauge
from verify_service.webhooks.models import DeliveryStatus
from verify_service.webhooks.outbox import oldest_pending_event, undelivered_counts


def outbox_gauges(connection: sa.Connection, now: dt.datetime) -> Iterable[Metric]:
    counts = undelivered_counts(connection)
    yield gauge("verify_outbox_pending", "Webhook events not yet delivered.", counts.get(DeliveryStatus.PENDING, 0))
    yield gauge("verify_outbox_lag_seconds", "Age of the oldest undelivered webhook event.",
                age_seconds(oldest_pending_event(connection), now))
    yield gauge("verify_outbox_dead_letters", "Webhook events dead-lettered after retries ran out.",
                counts.get(DeliveryStatus.DEAD, 0))
