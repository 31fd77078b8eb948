"""The outbox relay: delivers events to the account service, in order, at least once.

Guarantees:

* **Per-account order.** An event is sent only when every earlier event of
  its account (lower ``seq``) was acknowledged with a 2xx. A dead-lettered
  event therefore holds back the rest of its account until it is redelivered.
* **At least once.** An event is marked delivered only after the receiver's
  2xx. A crash between the 2xx and the commit sends it again, with the same
  ``webhook-id``; receivers deduplicate on that id.
* **No double claims.** A relay claims due events with a short lease, in a
  transaction that locks them (``FOR UPDATE SKIP LOCKED`` on PostgreSQL;
  SQLite's ``BEGIN IMMEDIATE`` serialises claims), so concurrent relays never
  deliver the same claim twice. No transaction stays open during HTTP calls.

Accounts proceed in parallel on a bounded worker pool; one worker keeps
going down one account's queue while its events keep being acknowledged.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import random
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased, sessionmaker

from integrations.account_service import AccountServiceSender, DeliveryResult, OutboundMessage
from verify_service.db import unit_of_work
from verify_service.webhooks.models import DeliveryStatus, OutboxEvent, WebhookEndpoint

log = logging.getLogger(__name__)

# Delay after the n-th failed attempt (the first attempt is immediate): about 3.5 days in all.
RETRY_SCHEDULE: tuple[dt.timedelta, ...] = tuple(dt.timedelta(seconds=s) for s in (
    5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600, 14 * 3600, 20 * 3600, 24 * 3600))
MAX_ATTEMPTS = len(RETRY_SCHEDULE) + 1
JITTER = 0.1  # each delay is stretched or shrunk by up to 10%, so retries of many events spread out
LEASE = dt.timedelta(minutes=2)  # longer than one attempt (timeouts) plus recording it


def next_delay(failed_attempts: int, retry_after: dt.timedelta | None,
               rng: random.Random | None = None) -> dt.timedelta | None:
    """How long to wait after ``failed_attempts`` failures; ``None`` means dead-letter now.

    A ``Retry-After`` from the receiver is honoured: never retry sooner than it asks.
    """
    if failed_attempts >= MAX_ATTEMPTS:
        return None
    delay = RETRY_SCHEDULE[failed_attempts - 1] * (rng or random).uniform(1 - JITTER, 1 + JITTER)
    if retry_after is not None and retry_after > delay:
        delay = retry_after
    return delay


@dataclasses.dataclass
class PassReport:
    delivered: int = 0
    failed: int = 0
    dead: int = 0
    errors: int = 0
    disabled: bool = False

    def add(self, other: PassReport) -> None:
        self.delivered += other.delivered
        self.failed += other.failed
        self.dead += other.dead
        self.errors += other.errors


@dataclasses.dataclass(frozen=True)
class Claimed:
    id: int
    event_id: str
    account_id: str
    seq: int
    type: str
    data: dict
    created_at: dt.datetime
    attempt: int


def endpoint_disabled(session: Session, url: str) -> WebhookEndpoint | None:
    endpoint = session.get(WebhookEndpoint, url)
    return endpoint if endpoint is not None and endpoint.disabled_at is not None else None


class Relay:
    def __init__(self, sessions: sessionmaker[Session], sender: AccountServiceSender, *,
                 clock: Callable[[], dt.datetime], workers: int = 8, batch: int = 200,
                 chain_limit: int = 100, lease: dt.timedelta = LEASE, rng: random.Random | None = None) -> None:
        self.sessions = sessions
        self.sender = sender
        self.clock = clock
        self.workers = workers
        self.batch = batch
        self.chain_limit = chain_limit
        self.lease = lease
        self.rng = rng or random.Random()
        self.relay_id = f"relay-{uuid.uuid4().hex[:12]}"
        self._rng_lock = threading.Lock()

    # ------------------------------------------------------------ one pass

    def run_once(self) -> PassReport:
        """Deliver everything due now; returns what happened."""
        report = PassReport()
        with unit_of_work(self.sessions, write=False) as session:
            if endpoint_disabled(session, self.sender.url) is not None:
                log.error("webhook delivery to %s is disabled (410 Gone); events are kept. "
                          "Re-enable with 'verify-service outbox enable'", self.sender.url)
                report.disabled = True
                return report
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="relay") as pool:
            while heads := self._claim(account_id=None, after_seq=None):
                for chain in pool.map(self._deliver_chain, heads):
                    report.add(chain)
                with unit_of_work(self.sessions, write=False) as session:
                    if endpoint_disabled(session, self.sender.url) is not None:
                        report.disabled = True
                        break
        return report

    # ------------------------------------------------------------ claiming

    def _claim(self, *, account_id: str | None, after_seq: int | None) -> list[Claimed]:
        """Lease due events whose earlier events are all delivered.

        With ``account_id``: only that account's event right after ``after_seq``.
        """
        now = self.clock()
        event = OutboxEvent
        earlier = aliased(OutboxEvent)
        blocked = sa.exists().where(earlier.account_id == event.account_id, earlier.seq < event.seq,
                                    earlier.status != DeliveryStatus.DELIVERED)
        stmt = sa.select(event).where(
            event.status == DeliveryStatus.PENDING,
            event.next_attempt_at <= now,
            sa.or_(event.claimed_until.is_(None), event.claimed_until <= now),
            ~blocked,
        )
        if account_id is not None:
            stmt = stmt.where(event.account_id == account_id, event.seq == (after_seq or 0) + 1)
        stmt = stmt.order_by(event.next_attempt_at, event.id).limit(self.batch)
        with unit_of_work(self.sessions) as session:
            if session.get_bind().dialect.name == "postgresql":
                stmt = stmt.with_for_update(skip_locked=True, of=event)
            rows = session.scalars(stmt.execution_options(populate_existing=True)).all()
            for row in rows:
                row.claimed_by = self.relay_id
                row.claimed_until = now + self.lease
            return [Claimed(r.id, r.event_id, r.account_id, r.seq, r.type, dict(r.data), r.created_at,
                            r.attempts + 1) for r in rows]

    # ------------------------------------------------------------ delivering

    def _deliver_chain(self, first: Claimed) -> PassReport:
        """Send ``first``, then the account's following events while they are acknowledged."""
        report = PassReport()
        event: Claimed | None = first
        for _ in range(self.chain_limit):
            if event is None:
                break
            try:
                result = self.sender.send(OutboundMessage(event.event_id, event.type, event.created_at,
                                                          event.data, event.attempt))
                outcome = self._record(event, result)
            except Exception:  # a bug or a crash mid-way: the lease expires and the event is sent again
                log.exception("relay failed on event %s; it will be retried after its lease", event.event_id)
                report.errors += 1
                break
            setattr(report, outcome, getattr(report, outcome) + 1)
            if outcome != "delivered":
                break
            claimed = self._claim(account_id=event.account_id, after_seq=event.seq)
            event = claimed[0] if claimed else None
        return report

    def _record(self, claimed: Claimed, result: DeliveryResult) -> str:
        """Write the attempt's result; returns ``delivered``, ``failed`` or ``dead``."""
        now = self.clock()
        with unit_of_work(self.sessions) as session:
            stmt = sa.select(OutboxEvent).where(OutboxEvent.id == claimed.id)
            if session.get_bind().dialect.name == "postgresql":
                stmt = stmt.with_for_update()
            row = session.scalars(stmt.execution_options(populate_existing=True)).one()
            row.attempts += 1
            row.last_attempt_at = now
            row.last_status_code = result.status_code
            row.claimed_by = row.claimed_until = None
            if row.status == DeliveryStatus.DELIVERED or result.delivered:
                row.status = DeliveryStatus.DELIVERED
                row.delivered_at = row.delivered_at or now
                row.last_error = None
                return "delivered"
            row.last_error = result.error
            if result.gone:
                _disable_endpoint(session, self.sender.url, f"410 Gone for event {row.event_id}", now)
                return "failed"
            with self._rng_lock:
                delay = next_delay(row.attempts, result.retry_after, self.rng)
            if delay is None:
                row.status = DeliveryStatus.DEAD
                log.error("webhook %s (%s, account %s seq %d) dead-lettered after %d attempts: %s",
                          row.event_id, row.type, row.account_id, row.seq, row.attempts, result.error)
                return "dead"
            row.next_attempt_at = now + delay
            return "failed"


def _disable_endpoint(session: Session, url: str, reason: str, now: dt.datetime) -> None:
    endpoint = session.get(WebhookEndpoint, url)
    if endpoint is None:
        endpoint = WebhookEndpoint(url=url, updated_at=now)
        session.add(endpoint)
    if endpoint.disabled_at is None:
        endpoint.disabled_at = now
        endpoint.disabled_reason = reason
        endpoint.updated_at = now
        log.critical("ALERT: the account service answered 410 Gone at %s: webhook delivery is disabled and "
                     "events are kept; after fixing the endpoint run 'verify-service outbox enable'", url)
