"""Writing events to the outbox."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy.orm import Session

from verify_service.accounts.models import Account
from verify_service.webhooks.models import OutboxEvent

EVENT_TYPES = frozenset({
    "verification.required", "verification.session.started", "verification.session.expired",
    "verification.passed", "verification.failed", "verification.inconclusive",
    "account.hold.placed", "account.hold.lifted", "account.proposals.cancel_requested",
    "verification.duplicate_identity_suspected", "verification.appointment.reminder",
})


def enqueue_event(session: Session, account: Account, event_type: str, data: dict[str, Any], *,
                  now: dt.datetime) -> OutboxEvent:
    """Add an event for ``account`` with the next per-account ``seq``.

    The caller must hold the account's row lock (see ``lock_account``): that
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
        data={"account_id": account.id, "seq": account.last_event_seq, **data},
        created_at=now,
        next_attempt_at=now,
    )
    session.add(event)
    return event
