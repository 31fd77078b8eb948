"""The outbox relay: delivers events to the account service, in order, at least once.

Guarantees:

* **Per-account order.** An event is sent only when every earlier event of
  its account (lower ``seq``) was acknowledged with a 2xx. A dead-lettered
  event therefore holds back the rest of its account until it is redelivered.
* **At least once.** An event is marked delivered only after the receiver's
  2xx. A crash between the 2xx and the commit sends it again, with the same
  ``webhook-id``; receivers deduplicate on that id. (Acknowledgements are
  written a run at a time, so a crash can resend up to ``claim_ahead``
  acknowledged events of an account, in order.)
* **No double claims.** A relay claims due events with a short lease, in a
  transaction that locks them (``FOR UPDATE SKIP LOCKED`` on PostgreSQL;
  SQLite's ``BEGIN IMMEDIATE`` serialises claims), so concurrent relays never
  deliver the same claim twice. No transaction stays open during HTTP calls.

Accounts proceed in parallel on a bounded worker pool; one worker keeps
going down one account's queue while its events keep being acknowledged.
The database work is batched so that it costs little next to the HTTP
round trip: one transaction leases, for up to ``batch`` accounts, a run of
each one's next events (its head and up to ``claim_ahead - 1`` after it);
per account one more transaction writes the run's acknowledgements, and
leases the next run when the account may have more (see ``_deliver_chain``).
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased, sessionmaker

from integrations.account_service import AccountServiceSender, DeliveryResult, OutboundMessage
from verify_service.db import UTCDateTime, for_update, unit_of_work, upsert_insert
from verify_service.errors import database_unavailable
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
    leased_at: dt.datetime  # the lease runs until leased_at + Relay.lease


# What a claim reads (the last column, attempts so far, becomes Claimed.attempt).
CLAIMED_COLUMNS = (OutboxEvent.id, OutboxEvent.event_id, OutboxEvent.account_id, OutboxEvent.seq, OutboxEvent.type,
                   OutboxEvent.data, OutboxEvent.created_at, OutboxEvent.attempts)


class Attempt(NamedTuple):
    event: Claimed
    result: DeliveryResult
    at: dt.datetime


def _mark_delivered() -> sa.Update:
    """Acknowledged events, several at once (executemany): the receiver's 2xx is in hand."""
    table = OutboxEvent.__table__
    at = sa.bindparam("at", type_=UTCDateTime())
    return sa.update(table).where(table.c.id == sa.bindparam("pk")).values(
        status=DeliveryStatus.DELIVERED, attempts=table.c.attempts + 1, last_attempt_at=at,
        last_status_code=sa.bindparam("code"), last_error=None, claimed_by=None, claimed_until=None,
        delivered_at=sa.func.coalesce(table.c.delivered_at, at))


MARK_DELIVERED = _mark_delivered()


def endpoint_disabled(db: Session, url: str) -> WebhookEndpoint | None:
    endpoint = db.get(WebhookEndpoint, url)
    return endpoint if endpoint is not None and endpoint.disabled_at is not None else None


class Relay:
    def __init__(self, sessions: sessionmaker[Session], sender: AccountServiceSender, *,
                 clock: Callable[[], dt.datetime], workers: int = 8, batch: int = 200,
                 chain_limit: int = 100, claim_ahead: int = 20, lease: dt.timedelta = LEASE,
                 rng: random.Random | None = None) -> None:
        self.sessions = sessions
        self.sender = sender
        self.clock = clock
        self.workers = workers
        self.batch = batch  # heads (one per account) leased per claim
        self.chain_limit = chain_limit  # events of one account per pass, so one busy account cannot hog a worker
        self.claim_ahead = claim_ahead  # an account's following events leased per claim
        self.lease = lease
        self.rng = rng or random.Random()
        self.relay_id = f"relay-{uuid.uuid4().hex[:12]}"
        self._rng_lock = threading.Lock()

    # ------------------------------------------------------------ one pass

    def run_once(self) -> PassReport:
        """Deliver everything due now; returns what happened."""
        report = PassReport()
        with unit_of_work(self.sessions, write=False) as db:
            if endpoint_disabled(db, self.sender.url) is not None:
                log.error("webhook delivery to %s is disabled (410 Gone); events are kept. "
                          "Re-enable with 'verify-service outbox enable'", self.sender.url)
                report.disabled = True
                return report
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="relay") as pool:
            while runs := self._claim_heads():
                for chain in pool.map(self._deliver_chain, runs):
                    report.add(chain)
                with unit_of_work(self.sessions, write=False) as db:
                    if endpoint_disabled(db, self.sender.url) is not None:
                        report.disabled = True
                        break
        return report

    # ------------------------------------------------------------ claiming

    def _claim_heads(self) -> list[list[Claimed]]:
        """Lease due events whose earlier events are all delivered (one per account: its next in line).

        Each comes with the account's following events, ``claim_ahead`` in all, leased in the same
        transaction: one run per account, ready to be sent in order.
        """
        now = self.clock()
        event = OutboxEvent
        earlier = aliased(OutboxEvent)
        blocked = sa.exists().where(earlier.account_id == event.account_id, earlier.seq < event.seq,
                                    earlier.status != DeliveryStatus.DELIVERED)
        stmt = sa.select(*CLAIMED_COLUMNS).where(
            event.status == DeliveryStatus.PENDING,
            event.next_attempt_at <= now,
            sa.or_(event.claimed_until.is_(None), event.claimed_until <= now),
            ~blocked,
        ).order_by(event.next_attempt_at, event.id).limit(self.batch)
        with unit_of_work(self.sessions) as db:
            heads = self._lease(db, stmt, now)
            followers = self._lease_followers(db, heads, now)
        return [[head, *followers.get(head.account_id, [])] for head in heads]

    def _lease_followers(self, db: Session, heads: list[Claimed], now: dt.datetime) -> dict[str, list[Claimed]]:
        """Lease the events right after each head: up to ``claim_ahead - 1`` per account, no gaps, all due."""
        size = min(self.claim_ahead, self.chain_limit)
        if not heads or size < 2:
            return {}
        event = OutboxEvent
        # An account's pending events are its head and those after it: the head ranks first.
        ranked = (sa.select(event.id, sa.func.row_number().over(partition_by=event.account_id, order_by=event.seq)
                            .label("place"))
                  .where(event.account_id.in_([head.account_id for head in heads]),
                         event.status == DeliveryStatus.PENDING).subquery())
        stmt = sa.select(*CLAIMED_COLUMNS).where(
            event.id.in_(sa.select(ranked.c.id).where(ranked.c.place.between(2, size))),
            event.next_attempt_at <= now, sa.or_(event.claimed_until.is_(None), event.claimed_until <= now),
        ).order_by(event.account_id, event.seq)
        found: dict[str, list[Claimed]] = {}
        for claimed in self._locked(db, stmt, now):
            found.setdefault(claimed.account_id, []).append(claimed)
        after = {head.account_id: head.seq + 1 for head in heads}
        runs = {account_id: _contiguous(claimed, after[account_id]) for account_id, claimed in found.items()}
        self._take(db, [claimed for run in runs.values() for claimed in run], now)
        return runs

    def _claim_run(self, db: Session, account_id: str, first_seq: int, size: int) -> list[Claimed]:
        """Lease the account's events ``first_seq``, ``first_seq + 1`` … (at most ``size``, no gaps, all due).

        Only called once every event before ``first_seq`` is delivered (or being marked so in the same
        transaction). Events this relay leased already are leased afresh (that renews a lease).
        """
        now = self.clock()
        event = OutboxEvent
        stmt = sa.select(*CLAIMED_COLUMNS).where(
            event.account_id == account_id, event.seq >= first_seq, event.seq < first_seq + size,
            event.status == DeliveryStatus.PENDING, event.next_attempt_at <= now,
            sa.or_(event.claimed_until.is_(None), event.claimed_until <= now, event.claimed_by == self.relay_id),
        ).order_by(event.seq)
        return self._lease(db, stmt, now, contiguous_from=first_seq)

    def _lease(self, db: Session, stmt: sa.Select[Any], now: dt.datetime, *,
               contiguous_from: int | None = None) -> list[Claimed]:
        """Run the claim query and lease what it found (from ``contiguous_from``: up to the first gap)."""
        claimed = self._locked(db, stmt, now)
        if contiguous_from is not None:
            claimed = _contiguous(claimed, contiguous_from)
        self._take(db, claimed, now)
        return claimed

    @staticmethod
    def _locked(db: Session, stmt: sa.Select[Any], now: dt.datetime) -> list[Claimed]:
        """The claim query's rows, locked (rows other transactions hold are skipped)."""
        if db.get_bind().dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True, of=OutboxEvent)
        return [Claimed(*row[:-1], attempt=row[-1] + 1, leased_at=now) for row in db.execute(stmt)]

    def _take(self, db: Session, claimed: list[Claimed], now: dt.datetime) -> None:
        if claimed:
            db.execute(sa.update(OutboxEvent).where(OutboxEvent.id.in_([c.id for c in claimed]))
                            .values(claimed_by=self.relay_id, claimed_until=now + self.lease))

    # ------------------------------------------------------------ delivering

    def _deliver_chain(self, first_run: list[Claimed]) -> PassReport:
        """Send the account's leased run in order, and lease the next run while events keep being acknowledged.

        Acknowledgements are written in one transaction with the next lease: when a run is used up,
        before its lease is half gone, and when a send fails. An event is thus marked delivered only
        after its 2xx (a crash before that write sends it again: at least once), and the next event
        is sent only after the previous one's 2xx (per-account order).
        """
        report = PassReport()
        account_id = first_run[0].account_id
        run: collections.deque[Claimed] = collections.deque(first_run)
        more = len(first_run) >= min(self.claim_ahead, self.chain_limit)  # a full lease: there may be more
        acked: list[Attempt] = []
        try:
            while run:
                if self.clock() - run[0].leased_at >= self.lease / 2:  # slow going: renew before the lease ends
                    run = collections.deque(self._settle(acked, next_run=(account_id, run[0].seq, len(run))))
                    acked = []
                    continue
                event = run.popleft()
                result = self.sender.send(OutboundMessage(event.event_id, event.type, event.created_at,
                                                          event.data, event.attempt))
                attempt = Attempt(event, result, self.clock())
                if not result.delivered:
                    outcome = self._settle(acked, failed=attempt, release=list(run))
                    acked, run = [], collections.deque()
                    setattr(report, outcome, getattr(report, outcome) + 1)
                    break
                acked.append(attempt)
                report.delivered += 1
                if run:
                    continue
                size = min(self.claim_ahead, self.chain_limit - report.delivered)
                if more and size > 0:
                    run = collections.deque(self._settle(acked, next_run=(account_id, event.seq + 1, size)))
                    more = len(run) >= size
                else:  # drained when leased (later events are heads of a later claim), or its share of the pass
                    self._settle(acked)
                acked = []
        except Exception:  # a bug or a crash mid-way: the lease expires and the event is sent again
            log.exception("relay failed on account %s; its events will be retried after their lease", account_id)
            report.errors += 1
        finally:
            if acked or run:
                self._settle_quietly(acked, release=list(run))
        return report

    def _settle(self, acked: list[Attempt], *, failed: Attempt | None = None,
                next_run: tuple[str, int, int] | None = None, release: Sequence[Claimed] = ()) -> Any:
        """One transaction: mark ``acked`` delivered, record ``failed``, release the rest, lease the next run.

        ``next_run`` is (account, first seq, how many). Returns the outcome of ``failed`` (``failed`` or
        ``dead``), else the newly leased run.
        """
        with unit_of_work(self.sessions) as db:
            if acked:
                db.execute(MARK_DELIVERED, [{"pk": a.event.id, "at": a.at, "code": a.result.status_code}
                                                 for a in acked])
            if release:
                db.execute(sa.update(OutboxEvent).where(OutboxEvent.id.in_([c.id for c in release]),
                                                             OutboxEvent.claimed_by == self.relay_id)
                                .values(claimed_by=None, claimed_until=None))
            if failed is not None:
                return self._record_failure(db, failed)
            return self._claim_run(db, *next_run) if next_run is not None else []

    def _settle_quietly(self, acked: list[Attempt], *, release: Sequence[Claimed]) -> None:
        """Write the acknowledgements in hand and release the rest, after an error mid-chain.

        While the database is unreachable (a restart), keep trying for half a lease: still ours, no
        other relay can have leased these events, and a short outage does not send them twice.
        """
        deadline = time.monotonic() + self.lease.total_seconds() / 2
        pause = 0.5
        while True:
            try:
                self._settle(acked, release=release)
                return
            except Exception as exc:
                if not (isinstance(exc, sa.exc.DBAPIError) and database_unavailable(exc)
                        and time.monotonic() + pause < deadline):  # a bug, or too long: the leases expire
                    log.exception("relay could not record %d acknowledged events; they will be sent again",
                                  len(acked))
                    return
                log.warning("relay: database unavailable (%s); recording %d acknowledged events again in %.1fs",
                            type(exc.orig).__name__, len(acked), pause)
            time.sleep(pause)
            pause = min(2 * pause, 5.0)

    def _record_failure(self, db: Session, attempt: Attempt) -> str:
        """Write a failed attempt; returns ``failed`` or ``dead`` (``delivered`` if another relay got there)."""
        claimed, result, now = attempt
        stmt = for_update(db, sa.select(OutboxEvent).where(OutboxEvent.id == claimed.id))
        row = db.scalars(stmt.execution_options(populate_existing=True)).one()
        row.attempts += 1
        row.last_attempt_at = now
        row.last_status_code = result.status_code
        row.claimed_by = row.claimed_until = None
        if row.status == DeliveryStatus.DELIVERED:
            return "delivered"
        row.last_error = result.error
        if result.gone:
            _disable_endpoint(db, self.sender.url, f"410 Gone for event {row.event_id}", now)
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


def _contiguous(claimed: list[Claimed], first_seq: int) -> list[Claimed]:
    """``claimed`` (in seq order) up to the first gap: a later event must wait for the missing one."""
    return [c for n, c in enumerate(claimed) if c.seq == first_seq + n]


def _disable_endpoint(db: Session, url: str, reason: str, now: dt.datetime) -> None:
    # Several workers (or relays) can meet the 410 at once: the row is inserted if absent without
    # failing on another's insert, then locked, so exactly one of them disables it (and alerts).
    db.execute(upsert_insert(db, WebhookEndpoint).values(url=url, updated_at=now)
                    .on_conflict_do_nothing(index_elements=["url"]))
    endpoint = db.execute(for_update(db, sa.select(WebhookEndpoint).where(WebhookEndpoint.url == url))
                               .execution_options(populate_existing=True)).scalar_one()
    if endpoint.disabled_at is None:
        endpoint.disabled_at = now
        endpoint.disabled_reason = reason
        endpoint.updated_at = now
        log.critical("ALERT: the account service answered 410 Gone at %s: webhook delivery is disabled and "
                     "events are kept; after fixing the endpoint run 'verify-service outbox enable'", url)
