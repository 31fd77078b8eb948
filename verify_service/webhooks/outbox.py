"""The outbox: writing events in the transaction that causes them, and operating it."""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.orm import Session

from verify_service.audit.services import record
from verify_service.errors import NotFound
from verify_service.webhooks.models import DeliveryStatus, OutboxEvent, WebhookEndpoint

EVENT_TYPES = frozenset({
    "verification.required", "verification.session.started", "verification.session.expired",
    "verification.passed", "verification.failed", "verification.inconclusive",
    "account.hold.placed", "account.hold.lifted", "account.proposals.cancel_requested",
    "verification.duplicate_identity_suspected", "verification.appointment.reminder",
    "verification.session.canceled", "verification.no_show",
    "audit.checkpoint",
})
# Set while a simulation runs the real path (README, "Testing your integration end to end"): every event written
# meanwhile carries ``"simulated": true`` in its data, so the account service can tell a test from a real call.
SIMULATED: contextvars.ContextVar[bool] = contextvars.ContextVar("SIMULATED", default=False)


@contextlib.contextmanager
def simulating() -> Iterator[None]:
    """Mark every event :func:`enqueue_event` writes inside the block as simulated."""
    token = SIMULATED.set(True)
    try:
        yield
    finally:
        SIMULATED.reset(token)


class EventStream(Protocol):
    """What the outbox needs of an account row: its id and the seq of its last event."""

    id: str
    last_event_seq: int


def enqueue_event(db: Session, account: EventStream, event_type: str, data: dict[str, Any], *,
                  now: dt.datetime) -> OutboxEvent:
    """Add an event for ``account`` with the next per-account ``seq``.

    ``account`` is the account row (``accounts.models.Account``). The caller must hold its row lock
    (``accounts.services.lock_account``): that
    is what makes ``seq`` gapless and unique under concurrent writers.
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown outbound event type {event_type!r}")
    account.last_event_seq += 1
    event = OutboxEvent(
        event_id=f"evt_{uuid.uuid4().hex}",
        account_id=account.id,
        seq=account.last_event_seq,
        type=event_type,
        data={"account_id": account.id, "seq": account.last_event_seq, **data,
              **({"simulated": True} if SIMULATED.get() else {})},
        created_at=now,
        next_attempt_at=now,
    )
    db.add(event)
    return event


# ---------------------------------------------------------------- operating the outbox

def redeliver(db: Session, *, event_id: str | None, all_dead: bool, actor: str, now: dt.datetime) -> int:
    """Put dead-lettered events back in line (their retry schedule starts over). Returns how many.

    Raises:
        NotFound: ``event_id`` names no dead-lettered event.
    """
    stmt = sa.select(OutboxEvent).where(OutboxEvent.status == DeliveryStatus.DEAD)
    if not all_dead:
        stmt = stmt.where(OutboxEvent.event_id == event_id)
    events = db.scalars(stmt.order_by(OutboxEvent.id)).all()
    if not all_dead and not events:
        raise NotFound(f"no dead-lettered event with id {event_id!r}")
    for event in events:
        event.status = DeliveryStatus.PENDING
        event.attempts = 0
        event.next_attempt_at = now
        record(db, actor=actor, action="outbox.redelivered", account_id=event.account_id,
               subject_type="outbox_event", subject_id=event.event_id, details={"type": event.type}, now=now)
    db.flush()
    return len(events)


def enable_endpoint(db: Session, url: str, *, actor: str, now: dt.datetime) -> bool:
    """Resume delivery to ``url`` after a 410. Returns whether it was disabled."""
    endpoint = db.get(WebhookEndpoint, url)
    if endpoint is None or endpoint.disabled_at is None:
        return False
    endpoint.disabled_at = None
    endpoint.disabled_reason = None
    endpoint.updated_at = now
    record(db, actor=actor, action="outbox.endpoint_enabled", now=now, subject_type="webhook_endpoint",
           details={})
    return True


@dataclasses.dataclass(frozen=True)
class OutboxStatus:
    pending: int
    dead: int
    oldest_pending_at: dt.datetime | None
    endpoint_disabled_at: dt.datetime | None
    endpoint_disabled_reason: str | None
    url_missing: bool = False

    @property
    def waiting_reason(self) -> str | None:
        """Why pending events are not delivered when the cause is the configuration (``None`` otherwise)."""
        return no_url_reason(self.pending) if self.url_missing and self.pending else None


def undelivered_counts(connection: sa.Connection | Session) -> dict[DeliveryStatus, int]:
    """How many events are pending and how many dead (the ones not delivered), by status."""
    return dict(connection.execute(  # type: ignore[arg-type]
        sa.select(OutboxEvent.status, sa.func.count()).where(OutboxEvent.status != DeliveryStatus.DELIVERED)
        .group_by(OutboxEvent.status)).all())


def oldest_pending_event(connection: sa.Connection | Session) -> dt.datetime | None:
    """When the oldest webhook event still waiting for delivery was created (``None``: none waits)."""
    return connection.scalar(sa.select(sa.func.min(OutboxEvent.created_at))
                             .where(OutboxEvent.status == DeliveryStatus.PENDING))


def no_url_reason(pending: int) -> str:
    """Why ``pending`` events wait when no webhook URL is configured (``/readyz`` and ``outbox status``)."""
    return (f"{pending} webhook event(s) are pending because VERIFY_ACCOUNT_SERVICE_WEBHOOK_URL is not set: "
            "nothing delivers them until it is (make run points it at the built-in /sandbox/account-service)")


def outbox_status(db: Session, url: str | None) -> OutboxStatus:
    counts = undelivered_counts(db)
    oldest = oldest_pending_event(db)
    endpoint = db.get(WebhookEndpoint, url) if url else None
    return OutboxStatus(counts.get(DeliveryStatus.PENDING, 0), counts.get(DeliveryStatus.DEAD, 0), oldest,
                        endpoint.disabled_at if endpoint else None, endpoint.disabled_reason if endpoint else None,
                        url_missing=not url)
