"""Helpers of the stateful test (tests/integration/test_stateful.py), each usable on its own.

* :class:`AccountModel` — a reference model of one account's restrictions,
  written from the product's contract alone (holds, requests, decisions,
  closure). It imports nothing from the service: its hold-to-capability table
  is typed out again.
* :class:`CallTruth` — what really happened on one call (who joined its Meet
  conference and when, which ID was shown): the ground truth the rules of
  evidence are judged against, and the call's own bookkeeping (booked, canceled
  before its time) for the limit on calls opened.
* :class:`Consumer` — the account service's side of our webhooks: it applies
  each acknowledged event once (deduplicating on ``webhook-id``) and in
  ``seq`` order, and keeps per account the last restrictions it was told
  (version, blocked capabilities and holds of the last ``account.hold.*``
  snapshot, the last verification snapshot). Plug :meth:`Consumer.apply`
  into a :class:`~tests.support.receiver.Receiver` policy for what it acknowledges.
* :class:`Harness` — one app for a whole Hypothesis run, with a fresh
  database, clock, Meet fake and relay for every example.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import shutil
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from integrations.account_service import WebhookSender
from jobs.outbox import RELAY_KEY
from tests.conftest import ACCOUNT_SERVICE_SECRET, FakeClock, _truncate, make_settings
from tests.support.fake_meet import FakeMeetGateway
from tests.support.receiver import Delivery, Receiver
from tests.support.staff import staff_member
from verify_service import create_app
from verify_service.db import Base, make_engine, make_sessionmaker
from verify_service.registry import KEY, Registry
from verify_service.ratelimit import limiter
from verify_service.staff.models import Role
from verify_service.webhooks.relay import Relay

# ---------------------------------------------------------------- the reference model

# The capabilities, in the order ``blocked`` lists them.
CAPABILITIES = ("submit_proposals", "withdraw_earnings", "accept_direct_hires", "appear_in_search",
                "change_profile_photo")
PENDING = "verification_pending"
FAILED = "verification_failed"
MANUAL = "manual"
# What the two automatic kinds block; a manual hold names its own set.
KIND_BLOCKS: dict[str, frozenset[str]] = {
    PENDING: frozenset({"submit_proposals", "change_profile_photo"}),
    FAILED: frozenset({"withdraw_earnings", "submit_proposals", "accept_direct_hires", "appear_in_search"}),
}

HoldKey = tuple[str, tuple[str, ...]]  # (kind, blocks in canonical order)


def canonical(capabilities: Iterable[str]) -> tuple[str, ...]:
    chosen = set(capabilities)
    unknown = chosen - set(CAPABILITIES)
    assert not unknown, f"not a capability: {sorted(unknown)}"
    return tuple(c for c in CAPABILITIES if c in chosen)


def union(holds: Iterable[HoldKey]) -> list[str]:
    """The effective restriction set: the union of what the holds block, in canonical order."""
    return list(canonical(c for _kind, blocks in holds for c in blocks))


def hold_key(kind: str, blocks: Iterable[str] | None = None) -> HoldKey:
    return kind, canonical(KIND_BLOCKS[kind] if blocks is None else blocks)


@dataclasses.dataclass
class Request:
    """The account's open verification request."""

    deadline: dt.datetime | None
    place_hold: bool
    pending_placed_at: list[dt.datetime] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class AccountModel:
    closed: bool = False
    profile: tuple[str, str, str] | None = None   # (name, email, country)
    profile_source_at: dt.datetime | None = None  # the newest webhook snapshot applied
    holds: list[HoldKey] = dataclasses.field(default_factory=list)  # the active ones
    request: Request | None = None
    status: str = "not_required"
    version: int = 0
    # Versions no event carries: closing an account with an open request and no call to cancel (the
    # account service closed it itself, and no later event of a closed account follows).
    uncarried: set[int] = dataclasses.field(default_factory=set)

    # ------------------------------------------------------------ reading

    def has_active(self, kind: str) -> bool:
        return any(k == kind for k, _ in self.holds)

    def blocked(self) -> list[str]:
        return union(self.holds)

    # ------------------------------------------------------------ changes (each is one published change)

    def upsert(self, profile: tuple[str, str, str], source_at: dt.datetime | None) -> None:
        """A snapshot from the API (no time) or a webhook (an older one than the last applied is ignored)."""
        if source_at is not None:
            if self.profile_source_at is not None and source_at < self.profile_source_at:
                return
            self.profile_source_at = source_at
        self.profile = profile

    def request_verification(self, deadline: dt.datetime | None, place_hold: bool, now: dt.datetime) -> None:
        changed = self.request is None
        if self.request is None:
            self.request = Request(deadline, place_hold)
            self.status = "required"
        else:
            if deadline is not None and (self.request.deadline is None or deadline < self.request.deadline):
                self.request.deadline, changed = deadline, True
            if place_hold and not self.request.place_hold:
                self.request.place_hold, changed = True, True
        if place_hold and not self.has_active(PENDING):
            self._place_pending(now)
            changed = True
        if changed:
            self.version += 1

    def deadline_passed(self, now: dt.datetime) -> bool:
        """Whether the deadline job places a pending hold now (once per request: docs/architecture.md, 'Holds and restrictions')."""
        request = self.request
        return (not self.closed and request is not None and request.deadline is not None
                and request.deadline <= now and not self.has_active(PENDING)
                and not any(at >= request.deadline for at in request.pending_placed_at))

    def enforce_deadline(self, now: dt.datetime) -> None:
        self._place_pending(now)
        self.version += 1

    def place_manual(self, blocks: Iterable[str]) -> None:
        self.holds.append(hold_key(MANUAL, blocks))
        self.version += 1

    def lift(self, key: HoldKey) -> None:
        self.holds.remove(key)
        self.version += 1

    def passed(self) -> None:
        """A pass (or an overturned fail): the request passes, the verification holds go."""
        self.request, self.status = None, "verified"
        self.holds = [h for h in self.holds if h[0] == MANUAL]
        self.version += 1

    def failed(self) -> None:
        """A final fail (or a pass overturned in QA): the request fails, the failed hold replaces the pending one."""
        self.request, self.status = None, "failed"
        self.holds = [h for h in self.holds if h[0] != PENDING]
        if not self.has_active(FAILED):
            self.holds.append(hold_key(FAILED))
        self.version += 1

    def retry_allowed(self) -> None:
        """Inconclusive or no show: announced (one version), the request stays open."""
        self.version += 1

    def close(self, *, calls_canceled: int) -> None:
        """Closing cancels the open request (one change, carried by the canceled calls' events); holds stay;
        the profile (personal data) is erased."""
        if self.request is not None or calls_canceled:
            self.version += 1
            if not calls_canceled:
                self.uncarried.add(self.version)
        self.request = None
        self.closed, self.profile = True, None

    def _place_pending(self, now: dt.datetime) -> None:
        self.holds.append(hold_key(PENDING))
        assert self.request is not None
        self.request.pending_placed_at.append(now)


@dataclasses.dataclass
class CallTruth:
    """What happened on one call, as the harness made it happen (never read back from the service)."""

    account: str
    created_at: dt.datetime
    scheduled_for: dt.datetime | None = None
    canceled_before_its_time: bool = False          # a booking canceled before it was due: not a call opened
    freelancer_joined: dt.datetime | None = None    # signed in to Google, in the conference
    reviewer: str | None = None                     # the staff member who joined the conference
    reviewer_joined: dt.datetime | None = None
    left_at: dt.datetime | None = None              # everyone left then
    document: str | None = None                     # "valid" or "expired": the ID recorded on the call

    def reviewer_minutes(self, now: dt.datetime) -> float:
        if self.reviewer_joined is None:
            return 0.0
        return ((self.left_at or now) - self.reviewer_joined).total_seconds() / 60

    def missing_for(self, result: str, *, checklist_full: bool, now: dt.datetime) -> bool:
        """Whether the rules of evidence refuse ``result`` on this call (written from the rules, not the code)."""
        if result == "passed":
            return self.freelancer_joined is None or not checklist_full or self.document != "valid"
        if result == "failed":
            return self.reviewer_joined is None
        if result == "no_show":
            return self.freelancer_joined is not None or self.reviewer_joined is None \
                or self.reviewer_minutes(now) < 5
        return False  # inconclusive: a reason code is all it needs


# ---------------------------------------------------------------- the consumer

NOT_REQUIRED = {"status": "not_required", "changed_at": None, "request": None}


@dataclasses.dataclass
class View:
    """What the consumer believes of one account (the defaults: an account it has heard nothing of)."""

    version: int = 0
    blocked: list[str] = dataclasses.field(default_factory=list)
    hold_ids: list[str] = dataclasses.field(default_factory=list)
    verification: dict[str, Any] = dataclasses.field(default_factory=lambda: dict(NOT_REQUIRED))
    applied: list[int] = dataclasses.field(default_factory=list)  # seqs, in the order applied

    def apply(self, data: dict[str, Any], event_type: str) -> None:
        self.applied.append(data["seq"])
        if "restrictions_version" in data:
            self.version = max(self.version, data["restrictions_version"])
        if event_type.startswith("account.hold."):
            snapshot = data["restrictions"]
            self.blocked = list(snapshot["blocked"])
            self.hold_ids = sorted(h["id"] for h in snapshot["holds"])
        if event_type.startswith("verification.") and "verification" in data:
            self.verification = data["verification"]


class Consumer:
    """Applies acknowledged deliveries once each, in per-account ``seq`` order; safe across receiver threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: set[str] = set()
        self._waiting: dict[str, dict[int, Delivery]] = {}
        self.views: dict[str, View] = {}

    def apply(self, delivery: Delivery) -> None:
        with self._lock:
            if delivery.webhook_id in self._seen:
                return
            self._seen.add(delivery.webhook_id)
            waiting = self._waiting.setdefault(delivery.account_id, {})
            waiting[delivery.seq] = delivery
            view = self.views.setdefault(delivery.account_id, View())
            while (len(view.applied) + 1) in waiting:
                ready = waiting.pop(len(view.applied) + 1)
                view.apply(ready.data, ready.type)

    def view(self, account_id: str) -> View:
        with self._lock:
            return dataclasses.replace(self.views.get(account_id) or View())


# ---------------------------------------------------------------- a fresh app state per example

class Harness:
    """One app for a whole Hypothesis run; every example gets a fresh database, clock, Meet fake and relay.

    SQLite: a template file (schema and staff) copied over the app's database
    file. PostgreSQL: the schema emptied and the staff created again. The
    relay sends to the example's receiver with a short read timeout, so a
    slow receiver costs little.
    """

    def __init__(self, database_url: str, tmp_path: Path, pg_engine: sa.Engine | None, *,
                 staff: dict[str, Role], read_timeout: float, **settings: Any) -> None:
        self.pg_engine = pg_engine
        self.staff = staff
        self.read_timeout = read_timeout
        self.template = tmp_path / "template.sqlite3"
        url = database_url if pg_engine is not None else f"sqlite:///{tmp_path / 'example.sqlite3'}"
        if pg_engine is None:
            engine = make_engine(f"sqlite:///{self.template}")
            Base.metadata.create_all(engine)
            engine.dispose()
        self.app = create_app(make_settings(url, tmp_path, **settings))
        self.registry: Registry = self.app.extensions[KEY]
        # SQLite: every example starts from a copy of the template, staff included (the same ids each time).
        self.template_staff = self._add_staff(self.template) if pg_engine is None else {}

    def _add_staff(self, database: Path | None = None) -> dict[str, int]:
        registry = self.registry
        if database is not None:  # the template, through a registry of its own
            engine = make_engine(f"sqlite:///{database}")
            registry = dataclasses.replace(self.registry, engine=engine, sessions=make_sessionmaker(engine))
        staff = {name: staff_member(registry, role=role, email=f"{name}@example.com").id
                 for name, role in self.staff.items()}
        if database is not None:
            registry.engine.dispose()
        return staff

    def fresh_example(self, clock: FakeClock, gateway: FakeMeetGateway, receiver: Receiver) -> dict[str, int]:
        """Reset the app for a new example; returns the staff ids by name."""
        registry = self.registry
        registry.engine.dispose()
        if self.pg_engine is not None:
            _truncate(self.pg_engine)
        else:
            database = Path(registry.engine.url.database or "")
            for leftover in (database, database.with_name(database.name + "-wal"),
                             database.with_name(database.name + "-shm")):
                leftover.unlink(missing_ok=True)
            shutil.copyfile(self.template, database)
        registry.clock = clock
        registry.meet = gateway
        # The rate limits count requests per wall-clock minute across examples: each example starts uncounted,
        # or what one example may do would depend on how fast the ones before it ran.
        limiter.reset()
        sender = WebhookSender(receiver.url, ACCOUNT_SERVICE_SECRET, connect_timeout=1, read_timeout=self.read_timeout)
        self.app.extensions[RELAY_KEY] = Relay(registry.sessions, sender, clock=clock, workers=4,
                                               rng=random.Random(0))
        if self.pg_engine is not None:
            return self._add_staff()
        return dict(self.template_staff)
