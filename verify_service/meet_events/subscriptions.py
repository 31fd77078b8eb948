"""Keeping one Workspace Events subscription alive per Meet host user, and saying how each stands.

Every configured host user has a :class:`~verify_service.meet_events.models.MeetSubscription` row;
:func:`keep_subscriptions` (the ``keep_meet_subscriptions`` job, every 10 minutes and at once when a
scheduler takes the lead) brings each host's subscription to ACTIVE with at least ``renew_before``
left to live:

* no subscription yet (``MISSING`` / ``DELETED``, no name): the host's Meet user is asked for
  (``user_of``, kept on the row) and a subscription created; Google's ``ALREADY_EXISTS`` comes back
  from the gateway as the existing subscription, so a lost row never makes a second one;
* a known name is read back from Google (``get_subscription``): gone (deleted, or expired unrenewed)
  → created again (*recreated*); pointing at another topic than ``VERIFY_MEET_EVENTS_TOPIC`` →
  deleted and created again (*replaced*); ``SUSPENDED`` → reactivated; ``ACTIVE`` with less than
  ``renew_before`` left → renewed (a full :data:`~integrations.meet_events.SUBSCRIPTION_TTL`).

A failed attempt leaves ``problem`` on the row (for a suspension, in words an operator can act on:
:func:`suspension_advice`); a success clears it. One host's failure never stops the others. Rows of
hosts no longer configured are deleted (their subscription too, when Google still takes the call;
otherwise it lapses within its TTL). Google is never called inside a transaction: each database step
is a short unit of its own (Workflow).

Lifecycle events (:data:`~integrations.meet_events.LIFECYCLE_EVENT_TYPES`) arrive by the push like
Meet's own; :func:`apply_lifecycle` records them on the row in the push's transaction (suspended →
``SUSPENDED`` with its reason; expired → ``MISSING``, name cleared; expiration reminder — sent 12 and
1 hours before the end, so within ``renew_before`` — → the new ``expire_time``) and returns the host,
for which the caller then runs :func:`keep_subscriptions` at once (``only=[host]``).

Readiness: :func:`live_hosts` (ACTIVE, not expired) and :func:`hosts_without_live_subscription`
(host → why not), which /readyz shows.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from integrations.google_meet import MeetError, MeetNotFound
from integrations.meet_events import (
    EVENT_SCOPES, EXPIRATION_REMINDER, EXPIRED, LIFECYCLE_EVENT_TYPES, SUSPENDED, CloudEvent, MeetEventsGateway,
    Subscription, subscription_from_api,
)
from verify_service.db import unit_of_work, upsert_insert, workflow
from verify_service.meet_events.models import MeetEventReceipt, MeetSubscription
from verify_service.settings import Settings, with_sandbox_defaults

log = logging.getLogger(__name__)

RENEW_BEFORE = dt.timedelta(days=1)
PROBLEM_LENGTH = 500  # MeetSubscription.problem's column
# Google's own push account, which must be allowed to publish to the topic.
PUSH_PUBLISHER = "meet-api-event-push@system.gserviceaccount.com"
_DELEGATION = (f"the host user's domain-wide delegation or its scopes ({', '.join(EVENT_SCOPES)}) were withdrawn: "
               "grant them again to the service account's client id (Admin console, Security, API controls, "
               "Domain-wide delegation)")
_ADVICE = {
    "ENDPOINT_PERMISSION_DENIED": "Google may not publish to the Pub/Sub topic {topic}: grant the Pub/Sub Publisher "
                                  f"role (roles/pubsub.publisher) on it to {PUSH_PUBLISHER}",
    "USER_SCOPE_REVOKED": _DELEGATION,
    "USER_AUTHORIZATION_FAILURE": _DELEGATION,
    "RESOURCE_DELETED": "the host user no longer exists in Workspace: restore it, or take it out of "
                        "VERIFY_MEET_HOST_USERS",
    "ENDPOINT_NOT_FOUND": "the Pub/Sub topic {topic} no longer exists: create it again, or set "
                          "VERIFY_MEET_EVENTS_TOPIC to one that exists",
}


def suspension_advice(reason: str | None, topic: str) -> str:
    """Why Google suspended a subscription, and what an operator does about it."""
    advice = _ADVICE.get(reason or "")
    if advice is None:
        return (f"Google suspended the subscription ({reason or 'no reason given'}); see the Workspace Events "
                "documentation on reactivating subscriptions")
    return f"suspended ({reason}): " + advice.format(topic=topic or "VERIFY_MEET_EVENTS_TOPIC")


def configured_hosts(settings: Settings) -> tuple[str, ...]:
    """The host users whose subscriptions are kept (the sandbox's when the settings name none)."""
    return with_sandbox_defaults(settings).meet_host_users


@dataclasses.dataclass(frozen=True)
class KeepResult:
    created: int = 0
    renewed: int = 0
    reactivated: int = 0
    recreated: int = 0      # gone at Google (deleted, expired), or replaced for a new topic
    failed: int = 0
    removed: int = 0        # rows of hosts no longer configured

    def changed(self) -> bool:
        return any(dataclasses.astuple(self))


@dataclasses.dataclass
class _Host:
    """What one run knows of a host's subscription; the failure path stores what it had learned."""

    host: str
    user: str | None
    name: str | None
    seen: Subscription | None = None   # Google's latest answer
    lost: bool = False                 # Google no longer knows ``name``


class _Failed(Exception):
    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


@workflow
def keep_subscriptions(sessions: sessionmaker[Session], gateway: MeetEventsGateway, *, hosts: Sequence[str],
                       topic: str, now: dt.datetime, renew_before: dt.timedelta = RENEW_BEFORE,
                       only: Collection[str] | None = None) -> KeepResult:
    """Bring every host's subscription to ACTIVE on ``topic`` with ``renew_before`` to live (module doc).

    Workflow: one short unit to sync the rows with ``hosts``, then, per host, the calls to Google and
    one unit storing what came of them. ``only`` limits the calls to those hosts (the host of a
    lifecycle event); the rows still follow ``hosts``.

    Never raises a :class:`MeetError`: each host's failure is counted and left as its ``problem``.
    """
    with unit_of_work(sessions) as db:
        removed = _sync_rows(db, hosts, now=now)
        rows = db.scalars(sa.select(MeetSubscription).where(MeetSubscription.host.in_(hosts))).all()
        todo = [_Host(row.host, row.user, row.name) for row in rows if only is None or row.host in only]
    for host, name in removed:
        if name is not None:
            _delete_quietly(gateway, host, name)
    counts = {"created": 0, "renewed": 0, "reactivated": 0, "recreated": 0, "failed": 0}
    for state in sorted(todo, key=lambda h: list(hosts).index(h.host)):
        try:
            outcome = _keep_one(gateway, state, topic=topic, now=now, renew_before=renew_before)
            problem = None
        except _Failed as failure:
            outcome, problem = "failed", failure.problem
        except MeetError as exc:  # includes MeetConfigurationError: this host waits, the others go on
            outcome, problem = "failed", str(exc) or type(exc).__name__
        if problem is not None:
            log.warning("Meet events subscription of host %s: %s", state.host, problem)
        _store(sessions, state, problem=problem, now=now)
        if outcome in counts:
            counts[outcome] += 1
    return KeepResult(**counts, removed=len(removed))


@workflow
def keep_hosts_now(sessions: sessionmaker[Session], gateway: MeetEventsGateway, hosts: Collection[str], *,
                   settings: Settings, now: dt.datetime) -> KeepResult | None:
    """What a lifecycle event asks for: keep these hosts' subscriptions at once (the others are left alone;
    failures stay on the rows). None when there is nothing to keep."""
    if not hosts:
        return None
    return keep_subscriptions(sessions, gateway, hosts=configured_hosts(settings), topic=settings.meet_events_topic,
                              now=now, only=list(dict.fromkeys(hosts)))


def _keep_one(gateway: MeetEventsGateway, state: _Host, *, topic: str, now: dt.datetime,
              renew_before: dt.timedelta) -> str:
    """One host's calls to Google; returns the outcome (a :class:`KeepResult` field, or ``"unchanged"``).

    Raises:
        MeetError: a call failed (``state`` holds what was learned before it).
        _Failed: a suspension that could not be lifted, with the operator's advice.
    """
    if state.name is None:
        _create(gateway, state, topic=topic)
        return "created"
    try:
        current = gateway.get_subscription(state.name, host=state.host)
    except MeetNotFound:
        state.lost = True
        _create(gateway, state, topic=topic)
        return "recreated"
    state.seen = current
    if current.state == "DELETED":
        state.lost = True
        _create(gateway, state, topic=topic)
        return "recreated"
    if current.topic != topic:
        log.info("host %s: subscription %s publishes to %s, not %s: replacing it", state.host, current.name,
                 current.topic, topic)
        gateway.delete_subscription(current.name, host=state.host)
        state.seen, state.lost = None, True
        _create(gateway, state, topic=topic)
        return "recreated"
    if current.state == "SUSPENDED":
        try:
            state.seen = gateway.reactivate_subscription(current.name, host=state.host)
        except MeetError as exc:
            raise _Failed(f"{suspension_advice(current.suspension_reason, topic)}; reactivating failed: "
                          f"{exc}") from exc
        return "reactivated"
    if current.state != "ACTIVE":
        raise _Failed(f"Google reports the subscription as {current.state}")
    if current.expire_time is None or current.expire_time - now < renew_before:
        state.seen = gateway.renew_subscription(current.name, host=state.host)
        return "renewed"
    return "unchanged"


def _create(gateway: MeetEventsGateway, state: _Host, *, topic: str) -> None:
    # Asked again for every creation: the email may now belong to a new user (after RESOURCE_DELETED).
    state.user = gateway.user_of(state.host)
    state.seen = gateway.create_subscription(host=state.host, user=state.user, topic=topic)
    state.lost = False


def _delete_quietly(gateway: MeetEventsGateway, host: str, name: str) -> None:
    """Delete a removed host's subscription; fails open (it lapses within its TTL, its events are ignored)."""
    try:
        gateway.delete_subscription(name, host=host)
    except MeetError as exc:
        log.warning("host %s is no longer configured; its subscription %s could not be deleted (it expires "
                    "by itself): %s", host, name, exc)


def _sync_rows(db: Session, hosts: Sequence[str], *, now: dt.datetime) -> list[tuple[str, str | None]]:
    """A row for every host in ``hosts``, none for any other; returns the removed hosts and their subscriptions."""
    if hosts:
        db.execute(upsert_insert(db, MeetSubscription)
                   .values([{"host": host, "state": "MISSING", "updated_at": now} for host in hosts])
                   .on_conflict_do_nothing(index_elements=["host"]))
    gone = db.scalars(sa.select(MeetSubscription).where(MeetSubscription.host.not_in(hosts))).all()
    removed = [(row.host, row.name) for row in gone]
    for row in gone:
        db.delete(row)
    db.flush()
    return removed


@workflow
def _store(sessions: sessionmaker[Session], state: _Host, *, problem: str | None, now: dt.datetime) -> None:
    """Write what the calls learned about one host (and ``problem``, or ``None`` after a success)."""
    with unit_of_work(sessions) as db:
        row = db.get(MeetSubscription, state.host)
        if row is None:  # the host was removed meanwhile (another run with other settings)
            return
        values: dict[str, Any] = {"user": state.user, "problem": problem[:PROBLEM_LENGTH] if problem else None}
        if state.seen is not None:
            values.update(name=state.seen.name, state=state.seen.state, expire_time=state.seen.expire_time,
                          suspension_reason=state.seen.suspension_reason)
        elif state.lost:
            values.update(name=None, state="MISSING", expire_time=None, suspension_reason=None)
        _update(row, values, now=now)
        row.checked_at = now


def _update(row: MeetSubscription, values: Mapping[str, Any], *, now: dt.datetime) -> None:
    """Set ``values`` on ``row``; ``updated_at`` moves only when one of them changes."""
    changed = False
    for key, value in values.items():
        if getattr(row, key) != value:
            setattr(row, key, value)
            changed = True
    if changed:
        row.updated_at = now


@workflow
def note_unavailable(sessions: sessionmaker[Session], hosts: Sequence[str], problem: str, *,
                     now: dt.datetime) -> None:
    """Leave ``problem`` on every host's row when the events gateway cannot even be built (no host is kept)."""
    with unit_of_work(sessions) as db:
        _sync_rows(db, hosts, now=now)
        for row in db.scalars(sa.select(MeetSubscription)).all():
            _update(row, {"problem": problem[:PROBLEM_LENGTH]}, now=now)
            row.checked_at = now


# ---------------------------------------------------------------- lifecycle events

def _subscription_of(event: CloudEvent) -> Subscription | None:
    """The subscription a lifecycle event carries, or ``None`` when its data is not one.

    Google's examples spell the fields in snake case (``suspension_reason``) where the API's resource
    uses camel case; both are read.
    """
    resource = event.data.get("subscription")
    if not isinstance(resource, dict):
        return None
    camel = {"suspension_reason": "suspensionReason", "expire_time": "expireTime",
             "target_resource": "targetResource", "event_types": "eventTypes",
             "notification_endpoint": "notificationEndpoint"}
    fields = {camel.get(key, key): value for key, value in resource.items()}
    fields.setdefault("name", event.subscription)
    try:
        return subscription_from_api(fields)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def apply_lifecycle(db: Session, event: CloudEvent, now: dt.datetime) -> str | None:
    """Record a lifecycle event on its subscription's row; returns the row's host, to keep at once.

    ``None`` when the event is not a lifecycle event, or names no subscription the service keeps (one
    already replaced, or a removed host's): nothing is changed. Flushes; the caller commits.
    """
    if event.type not in LIFECYCLE_EVENT_TYPES or not event.subscription:
        return None
    row = db.scalars(sa.select(MeetSubscription).where(MeetSubscription.name == event.subscription)).first()
    if row is None:
        return None
    seen = _subscription_of(event)
    if event.type == SUSPENDED:
        _update(row, {"state": "SUSPENDED",
                      "suspension_reason": (seen.suspension_reason if seen else None) or row.suspension_reason},
                now=now)
    elif event.type == EXPIRED:
        _update(row, {"state": "MISSING", "name": None, "expire_time": None, "suspension_reason": None}, now=now)
    elif event.type == EXPIRATION_REMINDER and seen is not None and seen.expire_time is not None:
        _update(row, {"expire_time": seen.expire_time}, now=now)
    db.flush()
    return row.host


# ---------------------------------------------------------------- readiness

def _live(row: MeetSubscription, now: dt.datetime) -> bool:
    return row.state == "ACTIVE" and row.expire_time is not None and row.expire_time > now


def live_hosts(db: Session, now: dt.datetime) -> set[str]:
    """The hosts whose subscription is ACTIVE and not yet expired."""
    rows = db.scalars(sa.select(MeetSubscription).where(MeetSubscription.state == "ACTIVE",
                                                        MeetSubscription.expire_time > now)).all()
    return {row.host for row in rows}


def hosts_without_live_subscription(db: Session, hosts: Sequence[str], now: dt.datetime, *,
                                    topic: str = "", include_unchecked: bool = True) -> dict[str, str]:
    """Each of ``hosts`` without a live subscription, and why (state, suspension, the last problem).

    ``include_unchecked=False`` leaves out hosts the job has not tried yet (no row, or never checked):
    /readyz gives a new deployment's first run its grace.
    """
    rows = {row.host: row for row in db.scalars(sa.select(MeetSubscription)
                                                .where(MeetSubscription.host.in_(hosts))).all()}
    why: dict[str, str] = {}
    for host in hosts:
        row = rows.get(host)
        if row is None or row.checked_at is None:
            if include_unchecked:
                why[host] = ("no subscription yet: the keep_meet_subscriptions job has not run for it"
                             + (f" ({row.problem})" if row is not None and row.problem else ""))
            continue
        if _live(row, now):
            continue
        parts = [f"state {row.state}"]
        if row.state == "SUSPENDED" and not row.problem:  # a failed reactivation's problem gives the advice
            parts.append(suspension_advice(row.suspension_reason, topic))
        elif row.state == "ACTIVE" and row.expire_time is not None:
            parts.append(f"expired at {row.expire_time.isoformat()} without being renewed")
        if row.problem:
            parts.append(f"last attempt: {row.problem}")
        why[host] = "; ".join(parts)
    return why


# ---------------------------------------------------------------- receipts

# Pub/Sub redelivers an unacknowledged message for up to 7 days; a receipt is kept a day longer.
RECEIPT_RETENTION = dt.timedelta(days=8)


def purge_receipts(db: Session, *, now: dt.datetime) -> int:
    """Forget the applied events' ids older than :data:`RECEIPT_RETENTION`; returns how many went."""
    result = db.execute(sa.delete(MeetEventReceipt).where(MeetEventReceipt.received_at < now - RECEIPT_RETENTION))
    return result.rowcount or 0
