"""The outbox: writing events in the transaction that causes them, and operating it."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from verify_service.accounts.domain import VerificationStatus
from verify_service.accounts.models import Account
from verify_service.audit.services import record
from verify_service.db import for_update, upsert_insert
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
# Events about the service itself (not about a marketplace account) travel on a reserved *system
# account*, so they keep every outbox guarantee: a gapless per-account seq, in order, at least once.
# Marketplace ids start with a letter or digit (accounts.schemas.ACCOUNT_ID_PATTERN), so an id that
# starts with this prefix can never be one: the API and the webhooks refuse it, and the account
# services and the lead pages treat it as unknown.
SYSTEM_ACCOUNT_PREFIX = "_"


def is_system_account(account_id: str) -> bool:
    """Whether ``account_id`` is a reserved system account (never a marketplace account)."""
    return account_id.startswith(SYSTEM_ACCOUNT_PREFIX)


def lock_system_account(session: Session, account_id: str, *, now: dt.datetime) -> Account:
    """The system account ``account_id`` (created on first use), its row locked for the transaction.

    Lock it before appending to the audit log, as every account writer does (account, then head).

    Raises:
        ValueError: ``account_id`` is not a system account id.
    """
    if not is_system_account(account_id):
        raise ValueError(f"{account_id!r} is not a system account id (it must start with {SYSTEM_ACCOUNT_PREFIX!r})")
    # ON CONFLICT DO NOTHING: two first uses at once both succeed; the second then waits on the row lock.
    session.execute(upsert_insert(session, Account).values(
        id=account_id, created_at=now, updated_at=now, verification_status=VerificationStatus.NOT_REQUIRED,
        restrictions_version=0, last_event_seq=0).on_conflict_do_nothing(index_elements=["id"]))
    stmt = for_update(session, sa.select(Account).where(Account.id == account_id))
    return session.execute(stmt.execution_options(populate_existing=True)).scalar_one()


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


# ---------------------------------------------------------------- operating the outbox

def redeliver(session: Session, *, event_id: str | None, all_dead: bool, actor: str, now: dt.datetime) -> int:
    """Put dead-lettered events back in line (their retry schedule starts over). Returns how many.

    Raises:
        NotFound: ``event_id`` names no dead-lettered event.
    """
    stmt = sa.select(OutboxEvent).where(OutboxEvent.status == DeliveryStatus.DEAD)
    if not all_dead:
        stmt = stmt.where(OutboxEvent.event_id == event_id)
    events = session.scalars(stmt.order_by(OutboxEvent.id)).all()
    if not all_dead and not events:
        raise NotFound(f"no dead-lettered event with id {event_id!r}")
    for event in events:
        event.status = DeliveryStatus.PENDING
        event.attempts = 0
        event.next_attempt_at = now
        record(session, actor=actor, action="outbox.redelivered", account_id=event.account_id,
               subject_type="outbox_event", subject_id=event.event_id, details={"type": event.type}, now=now)
    session.flush()
    return len(events)


def enable_endpoint(session: Session, url: str, *, actor: str, now: dt.datetime) -> bool:
    """Resume delivery to ``url`` after a 410. Returns whether it was disabled."""
    endpoint = session.get(WebhookEndpoint, url)
    if endpoint is None or endpoint.disabled_at is None:
        return False
    endpoint.disabled_at = None
    endpoint.disabled_reason = None
    endpoint.updated_at = now
    record(session, actor=actor, action="outbox.endpoint_enabled", now=now, subject_type="webhook_endpoint",
           details={})
    return True


@dataclasses.dataclass(frozen=True)
class OutboxStatus:
    pending: int
    dead: int
    oldest_pending_at: dt.datetime | None
    endpoint_disabled_at: dt.datetime | None
    endpoint_disabled_reason: str | None


def outbox_status(session: Session, url: str | None) -> OutboxStatus:
    counts = dict(session.execute(
        sa.select(OutboxEvent.status, sa.func.count()).where(OutboxEvent.status != DeliveryStatus.DELIVERED)
        .group_by(OutboxEvent.status)).all())
    oldest = session.scalar(sa.select(sa.func.min(OutboxEvent.created_at))
                            .where(OutboxEvent.status == DeliveryStatus.PENDING))
    endpoint = session.get(WebhookEndpoint, url) if url else None
    return OutboxStatus(counts.get(DeliveryStatus.PENDING, 0), counts.get(DeliveryStatus.DEAD, 0), oldest,
                        endpoint.disabled_at if endpoint else None, endpoint.disabled_reason if endpoint else None)
