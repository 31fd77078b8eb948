"""The Workspace Events v1 emulator: host users' subscriptions to their spaces' Meet events, and their lifecycle.

Behaves as Google documents it for Meet: a subscription targets a user
(``//cloudidentity.googleapis.com/users/{id}``, the id the sandbox gives that email everywhere),
lists Meet event types and a Pub/Sub topic, and lives at most :data:`SUBSCRIPTION_TTL`. Writes
answer a long-running ``Operation``; a second subscription with the same target, types and topic
is ``ALREADY_EXISTS`` with a ``google.rpc.ErrorInfo`` naming the first. Time is the sandbox's
clock: a subscription past its expiry is gone (NOT_FOUND) and has sent its ``expired`` event; 12
hours before, its ``expirationReminder``. Every call needs the caller's identity (the sandbox
credentials), and a host sees only its own subscriptions.

The Meet emulator tells :meth:`SandboxEvents.publish_meet` what happens in each space; an ACTIVE
subscription of the space's owner that lists the event type delivers it (``deliver(event, topic)``:
the sandbox's Pub/Sub push). Tests suspend, expire and forget subscriptions with the methods under
"test controls", and make operations pending with :attr:`SandboxEvents.operation_delay`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
import threading
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from integrations.meet_events import (
    EXPIRATION_REMINDER,
    EXPIRED,
    MEET_EVENT_TYPES,
    SUBSCRIPTION_TTL,
    SUSPENDED,
    CloudEvent,
    user_target,
)
from integrations.sandbox_google.discovery import document
from integrations.sandbox_google.errors import MeetApiError, invalid, not_found
from integrations.sandbox_google.listing import page, parse_time, timestamp
from integrations.sandbox_google.meet import Happened, check_body
from integrations.sandbox_google.shapes import listing, user_id

PACKAGE = "google.apps.events.subscriptions.v1"
TYPE_URL = f"type.googleapis.com/{PACKAGE}"
ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
REMINDER_BEFORE = dt.timedelta(hours=12)
SUSPENSION_REASONS = tuple(document("workspaceevents.v1")["schemas"]["Subscription"]["properties"]
                           ["suspensionReason"]["enum"][1:])
_TARGET = re.compile(r"//cloudidentity\.googleapis\.com/(users/[^/]+)")
_TOPIC = re.compile(r"projects/[^/]+/topics/[^/]+")
_DURATION = re.compile(r"(\d+)(?:\.\d{1,9})?s")
_FILTER_TYPES = re.compile(r'event_types\s*:\s*"([^"]+)"')
_FILTER_TARGET = re.compile(r'target_resource\s*=\s*"([^"]+)"')
_MASK_PATHS = {"ttl": "ttl", "expire_time": "expire_time", "expireTime": "expire_time",
               "event_types": "event_types", "eventTypes": "event_types"}


@dataclasses.dataclass
class Subscription:
    id: str
    user: str                      # "users/{id}": who created it, and whose spaces it covers
    event_types: tuple[str, ...]
    topic: str
    created: dt.datetime
    updated: dt.datetime
    expires: dt.datetime
    state: str = "ACTIVE"          # ACTIVE | SUSPENDED
    suspension_reason: str | None = None
    reminded: bool = False
    uid: str = dataclasses.field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def name(self) -> str:
        return f"subscriptions/{self.id}"

    @property
    def target(self) -> str:
        return user_target(self.user)


def subscription_json(sub: Subscription) -> dict[str, Any]:
    """The ``Subscription`` resource as Google writes it (proto3 JSON: unset fields left out)."""
    body: dict[str, Any] = {
        "name": sub.name, "uid": sub.uid, "targetResource": sub.target, "eventTypes": list(sub.event_types),
        "notificationEndpoint": {"pubsubTopic": sub.topic}, "state": sub.state,
        "authority": sub.user, "userAuthority": sub.user, "createTime": timestamp(sub.created),
        "updateTime": timestamp(sub.updated), "expireTime": timestamp(sub.expires),
        "etag": hashlib.sha256(f"{sub.uid}{sub.updated.isoformat()}{sub.state}".encode()).hexdigest()[:16]}
    if sub.suspension_reason:
        body["suspensionReason"] = sub.suspension_reason
    return body


def _check(body: Any) -> None:
    check_body("Subscription", body, "subscription", api="workspaceevents.v1", package=PACKAGE)


def _event_types(value: Any) -> tuple[str, ...]:
    types = tuple(dict.fromkeys(value or ()))
    if not types:
        raise invalid("Subscription.event_types is required: name at least one Meet event type.")
    unknown = [kind for kind in types if kind not in MEET_EVENT_TYPES]
    if unknown:
        raise invalid(f"Invalid event types for a Meet user target: {', '.join(unknown)} (supported: "
                      f"{', '.join(MEET_EVENT_TYPES)}).")
    return types


def _expiry(body: dict[str, Any], now: dt.datetime) -> dt.datetime:
    """When a subscription given ``ttl`` or ``expireTime`` (or neither: the longest) expires, at most the TTL away."""
    ttl, expire = body.get("ttl"), body.get("expireTime")
    if ttl is not None and expire is not None:
        raise invalid("Only one of ttl and expire_time may be set.")
    longest = now + SUBSCRIPTION_TTL
    if expire is not None:
        try:
            when = parse_time(str(expire))
        except ValueError:
            raise invalid(f"Invalid value at 'subscription.expire_time' (type.googleapis.com/"
                          f"google.protobuf.Timestamp), {expire!r}") from None
        if when <= now:
            raise invalid("expire_time must be in the future.")
        return min(when, longest)
    match = _DURATION.fullmatch(str(ttl or "0s"))
    if not match:
        raise invalid(f"Invalid value at 'subscription.ttl' (type.googleapis.com/google.protobuf.Duration), {ttl!r}")
    seconds = int(match.group(1))
    return min(now + dt.timedelta(seconds=seconds), longest) if seconds else longest  # 0: the longest


def _parse_filter(text: str | None) -> tuple[list[set[str]], str | None]:
    """(groups of event types, each group OR'd and the groups AND'd; the target or None). Raises: INVALID_ARGUMENT."""
    if not text or not text.strip():
        raise invalid('Invalid filter: a filter is required and must name an event type (event_types:"…").')
    groups: list[set[str]] = []
    target: str | None = None
    for clause in re.split(r"\s+AND\s+", text.strip()):
        clause = clause.strip()
        if clause.startswith("(") and clause.endswith(")"):
            clause = clause[1:-1].strip()
        found = _FILTER_TARGET.fullmatch(clause)
        if found and target is None:
            target = found.group(1)
            continue
        kinds = [_FILTER_TYPES.fullmatch(part.strip()) for part in re.split(r"\s+OR\s+", clause)]
        if not all(kinds):
            raise invalid(f'Invalid filter: {clause!r} (the sandbox knows event_types:"…" joined by OR, and '
                          f'target_resource="…", joined by AND)')
        groups.append({kind.group(1) for kind in kinds if kind})
    if not groups:
        raise invalid('Invalid filter: name at least one event type (event_types:"…").')
    return groups, target


class SandboxEvents:
    """Subscriptions in memory; every method is safe to call from any thread.

    ``hosts`` are the host users' emails: a subscription may target only one of them, and only
    as that user. ``deliver(event, topic)`` gets every event a subscription sends.
    """

    def __init__(self, clock: Callable[[], dt.datetime], hosts: Sequence[str],
                 deliver: Callable[[CloudEvent, str], object] | None = None) -> None:
        self._clock = clock
        self._users = {user_id(host): host for host in hosts}
        self._deliver = deliver
        self._lock = threading.RLock()
        self._subscriptions: dict[str, Subscription] = {}
        self._operations: dict[str, list[Any]] = {}  # id -> [polls left before done, the done Operation]
        # Test control: how many operations.get a write's Operation answers "not done" before it is.
        self.operation_delay = 0

    def _now(self) -> dt.datetime:
        return self._clock().astimezone(dt.timezone.utc)

    # ------------------------------------------------------------ the API

    def create(self, body: dict[str, Any], caller: str | None, *, validate_only: bool = False) -> dict[str, Any]:
        """``subscriptions.create``. Raises: UNAUTHENTICATED, PERMISSION_DENIED, INVALID_ARGUMENT, ALREADY_EXISTS."""
        user = self._user(caller)
        _check(body)
        target = str(body.get("targetResource") or "")
        match = _TARGET.fullmatch(target)
        if not match:
            raise invalid(f"Invalid target resource {target!r}: a Meet subscription targets a user, "
                          "//cloudidentity.googleapis.com/users/{id}.")
        if match.group(1) not in self._users:
            raise invalid(f"Invalid target resource {target!r}: no such user in the sandbox.")
        if match.group(1) != user:
            raise MeetApiError("PERMISSION_DENIED", f"{caller} cannot subscribe to the events of {target}.")
        types = _event_types(body.get("eventTypes"))
        topic = str((body.get("notificationEndpoint") or {}).get("pubsubTopic") or "")
        if not _TOPIC.fullmatch(topic):
            raise invalid(f"Invalid notification endpoint: pubsub_topic {topic!r} is not projects/{{p}}/topics/{{t}}.")
        with self._lock:
            now = self._sweep()
            existing = next((s for s in self._subscriptions.values() if s.user == user and s.topic == topic
                             and set(s.event_types) == set(types)), None)
            if existing:
                raise MeetApiError("ALREADY_EXISTS", f"Subscription already exists: {existing.name}.", [{
                    "@type": ERROR_INFO, "reason": "SUBSCRIPTION_ALREADY_EXISTS",
                    "domain": "workspaceevents.googleapis.com", "metadata": {"current_subscription": existing.name}}])
            sub = Subscription(uuid.uuid4().hex[:24], user, types, topic, now, now, _expiry(body, now))
            if not validate_only:
                self._subscriptions[sub.id] = sub
            return self._operation("Create", subscription_json(sub))

    def get(self, sub_id: str, caller: str | None) -> dict[str, Any]:
        with self._lock:
            return subscription_json(self._owned(sub_id, caller))

    def list_subscriptions(self, filter_text: str | None, page_size: str | None, token: str | None,
             caller: str | None) -> dict[str, Any]:
        """``subscriptions.list``: the caller's, oldest first. Raises: INVALID_ARGUMENT for a bad filter."""
        user = self._user(caller)
        groups, target = _parse_filter(filter_text)
        with self._lock:
            self._sweep()
            chosen = [s for s in sorted(self._subscriptions.values(), key=lambda s: s.created)
                      if s.user == user and (target is None or s.target == target)
                      and all(group & set(s.event_types) for group in groups)]
            items, next_token = page(chosen, page_size, token, default=50, maximum=100)
            return listing("subscriptions", [subscription_json(s) for s in items], next_token)

    def patch(self, sub_id: str, body: dict[str, Any], update_mask: str | None, caller: str | None, *,
              validate_only: bool = False) -> dict[str, Any]:
        """``subscriptions.patch`` of ``ttl``, ``expire_time`` or ``event_types`` (no mask: those given)."""
        _check(body)
        if update_mask:
            paths = [path.strip() for path in update_mask.split(",") if path.strip()]
        else:
            paths = [name for name in ("ttl", "expireTime", "eventTypes") if name in body]
        unknown = [path for path in paths if path not in _MASK_PATHS]
        if unknown or not paths:
            raise invalid(f"Invalid update_mask {update_mask!r}: the fields a subscription updates are ttl, "
                          "expire_time and event_types.")
        fields = {_MASK_PATHS[path] for path in paths}
        with self._lock:
            sub = self._owned(sub_id, caller)
            now = self._now()
            changed = dataclasses.replace(sub, updated=now)
            if fields & {"ttl", "expire_time"}:
                if "expire_time" in fields and body.get("expireTime") is None:
                    raise invalid("update_mask names expire_time, which the subscription given does not set.")
                wanted = {"ttl": body.get("ttl")} if "ttl" in fields else {"expireTime": body["expireTime"]}
                changed.expires, changed.reminded = _expiry(wanted, now), False
            if "event_types" in fields:
                changed.event_types = _event_types(body.get("eventTypes"))
            if not validate_only:
                self._subscriptions[sub.id] = changed
            return self._operation("Update", subscription_json(changed))

    def reactivate(self, sub_id: str, body: dict[str, Any], caller: str | None) -> dict[str, Any]:
        """``subscriptions.reactivate``: SUSPENDED becomes ACTIVE. Raises: FAILED_PRECONDITION otherwise."""
        check_body("ReactivateSubscriptionRequest", body, "reactivate_subscription_request",
                   api="workspaceevents.v1", package=PACKAGE)
        with self._lock:
            sub = self._owned(sub_id, caller)
            if sub.state != "SUSPENDED":
                raise MeetApiError("FAILED_PRECONDITION", f"{sub.name} is {sub.state}, not SUSPENDED.")
            sub.state, sub.suspension_reason, sub.updated = "ACTIVE", None, self._now()
            return self._operation("Reactivate", subscription_json(sub))

    def delete(self, sub_id: str, caller: str | None, *, allow_missing: bool = False,
               validate_only: bool = False) -> dict[str, Any]:
        """``subscriptions.delete``. Raises: NOT_FOUND unless ``allow_missing``."""
        with self._lock:
            try:
                sub = self._owned(sub_id, caller)
            except MeetApiError as exc:
                if exc.status != "NOT_FOUND" or not allow_missing:
                    raise
            else:
                if not validate_only:
                    del self._subscriptions[sub.id]
            return self._operation("Delete", {"@type": "type.googleapis.com/google.protobuf.Empty"})

    def operation(self, operation_id: str, caller: str | None) -> dict[str, Any]:
        """``operations.get``: the Operation, done once its polls are used up."""
        self._user(caller)
        with self._lock:
            kept = self._operations.get(operation_id)
            if kept is None:
                raise not_found(f"operations/{operation_id}")
            if kept[0] > 0:
                kept[0] -= 1
                return {key: value for key, value in kept[1].items() if key in ("name", "metadata")}
            return dict(kept[1])

    # ------------------------------------------------------------ what happens in Meet

    def publish_meet(self, happened: Happened) -> None:
        """Deliver a Meet event to the ACTIVE subscriptions of the space owner that list its type."""
        if happened.owner is None or self._deliver is None:
            return
        user = user_id(happened.owner)
        with self._lock:
            self._sweep()
            for sub in list(self._subscriptions.values()):
                if sub.user == user and sub.state == "ACTIVE" and happened.type in sub.event_types:
                    self._emit(sub, happened.type, happened.data, happened.time)

    # ------------------------------------------------------------ test controls

    def suspend(self, name: str, reason: str = "ENDPOINT_PERMISSION_DENIED") -> None:
        """Google suspends the subscription (sends its ``suspended`` event). Raises: ValueError, MeetApiError."""
        if reason not in SUSPENSION_REASONS:
            raise ValueError(f"not a suspension reason: {reason!r} (one of {', '.join(SUSPENSION_REASONS)})")
        with self._lock:
            sub = self._existing(name)
            sub.state, sub.suspension_reason, sub.updated = "SUSPENDED", reason, self._now()
            self._emit(sub, SUSPENDED, {"subscription": subscription_json(sub)}, sub.updated)

    def expire(self, name: str) -> None:
        """The subscription reaches its expiry now (sends its ``expired`` event, then is gone)."""
        with self._lock:
            self._existing(name).expires = self._now()
            self._sweep()

    def forget(self, name: str) -> None:
        """The subscription vanishes without a word (deleted by someone else)."""
        with self._lock:
            self._subscriptions.pop(self._existing(name).id)

    @property
    def subscriptions(self) -> list[dict[str, Any]]:
        """Every live subscription's resource, oldest first."""
        with self._lock:
            self._sweep()
            return [subscription_json(s) for s in sorted(self._subscriptions.values(), key=lambda s: s.created)]

    # ------------------------------------------------------------ internals (lock held where it matters)

    def _user(self, caller: str | None) -> str:
        if not caller:
            raise MeetApiError("UNAUTHENTICATED", "Request is missing required authentication credential: the "
                                                  "sandbox expects Authorization: Bearer sandbox:<host email>.")
        return user_id(caller)

    def _existing(self, name: str) -> Subscription:
        sub_id = name.removeprefix("subscriptions/")
        self._sweep()
        if sub_id not in self._subscriptions:
            raise not_found(f"subscriptions/{sub_id}")
        return self._subscriptions[sub_id]

    def _owned(self, sub_id: str, caller: str | None) -> Subscription:
        user = self._user(caller)
        sub = self._existing(sub_id)
        if sub.user != user:
            raise MeetApiError("PERMISSION_DENIED", f"{caller} cannot use {sub.name}.")
        return sub

    def _sweep(self) -> dt.datetime:
        """Expire what the clock has passed, remind what expires soon; returns now."""
        now = self._now()
        for sub in list(self._subscriptions.values()):
            if sub.expires <= now:
                del self._subscriptions[sub.id]
                self._emit(sub, EXPIRED, {"subscription": subscription_json(sub)}, sub.expires)
            elif not sub.reminded and sub.expires - now <= REMINDER_BEFORE:
                sub.reminded = True
                self._emit(sub, EXPIRATION_REMINDER, {"subscription": subscription_json(sub)}, now)
        return now

    def _emit(self, sub: Subscription, kind: str, data: dict[str, Any], when: dt.datetime) -> None:
        if self._deliver is not None:
            self._deliver(CloudEvent(id=str(uuid.uuid4()), type=kind, source=f"//workspaceevents.googleapis.com/"
                                     f"{sub.name}", subject=sub.target, time=when, data=data), sub.topic)

    def _operation(self, kind: str, response: dict[str, Any]) -> dict[str, Any]:
        """A write's Operation: done (with ``response``), or pending for :attr:`operation_delay` polls."""
        operation_id = uuid.uuid4().hex
        if "@type" not in response:
            response = {"@type": f"{TYPE_URL}.Subscription", **response}
        done = {"name": f"operations/{operation_id}", "metadata": {"@type": f"{TYPE_URL}.{kind}SubscriptionMetadata"},
                "done": True, "response": response}
        self._operations[operation_id] = [self.operation_delay, done]
        while len(self._operations) > 1000:  # keep the latest
            self._operations.pop(next(iter(self._operations)))
        if self.operation_delay:
            return {"name": done["name"], "metadata": done["metadata"]}
        return dict(done)
