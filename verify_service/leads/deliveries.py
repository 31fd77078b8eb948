"""What the webhook deliveries page reads: dead-lettered events and events still failing."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session

from verify_service.webhooks.models import DeliveryStatus, OutboxEvent
from verify_service.webhooks.outbox import OutboxStatus, outbox_status

LIMIT = 100


@dataclasses.dataclass(frozen=True)
class Deliveries:
    status: OutboxStatus
    dead: Sequence[OutboxEvent]
    failing: Sequence[OutboxEvent]  # pending, with at least one failed attempt (retrying with backoff)


def problem_deliveries(db: Session, url: str | None) -> Deliveries:
    """The first :data:`LIMIT` dead and failing events, oldest first (the counts in ``status`` are complete)."""
    dead = db.scalars(sa.select(OutboxEvent).where(OutboxEvent.status == DeliveryStatus.DEAD)
                           .order_by(OutboxEvent.id).limit(LIMIT)).all()
    failing = db.scalars(sa.select(OutboxEvent).where(OutboxEvent.status == DeliveryStatus.PENDING,
                                                           OutboxEvent.attempts > 0)
                              .order_by(OutboxEvent.id).limit(LIMIT)).all()
    return Deliveries(outbox_status(db, url), dead, failing)
