"""An in-memory :class:`~integrations.meet_events.MeetEventsGateway` for tests (the product uses the real adapter).

It keeps subscriptions as Google would: one per (target, event types, topic), ``ALREADY_EXISTS`` answered
with the existing one, expiry from the test's clock. Tests change Google's side with :meth:`suspend`,
:meth:`lose` and :meth:`expire`, make calls fail with :meth:`fail_next`, and read :attr:`calls`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import threading
from collections.abc import Callable

from integrations.google_meet import MeetError, MeetNotFound
from integrations.meet_events import MEET_EVENT_TYPES, SUBSCRIPTION_TTL, Subscription, user_target


class FakeMeetEventsGateway:
    def __init__(self, clock: Callable[[], dt.datetime]) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.users: dict[str, str] = {}                     # host -> users/{id}
        self.subscriptions: dict[str, Subscription] = {}    # name -> as Google keeps it
        self.owners: dict[str, str] = {}                    # name -> host that created it
        self.calls: list[tuple[str, str]] = []              # (method, host)
        self.already_existed = 0                            # creations answered with an existing subscription
        self._failures: dict[str, list[MeetError]] = {}

    # ------------------------------------------------------------ what tests do to Google's side

    def fail_next(self, method: str, error: MeetError) -> None:
        """The next call of ``method`` raises ``error`` (queued: several calls fail in turn)."""
        with self._lock:
            self._failures.setdefault(method, []).append(error)

    def suspend(self, name: str, reason: str) -> None:
        with self._lock:
            self.subscriptions[name] = dataclasses.replace(self.subscriptions[name], state="SUSPENDED",
                                                           suspension_reason=reason)

    def lose(self, name: str) -> None:
        """Google deleted it (or it expired unrenewed): gone for every call."""
        with self._lock:
            self.subscriptions.pop(name, None)

    def expire(self, name: str, at: dt.datetime) -> None:
        with self._lock:
            self.subscriptions[name] = dataclasses.replace(self.subscriptions[name], expire_time=at)

    def of_host(self, host: str) -> list[Subscription]:
        with self._lock:
            return [sub for name, sub in self.subscriptions.items() if self.owners[name] == host]

    def methods(self, host: str) -> list[str]:
        return [method for method, who in self.calls if who == host]

    def _enter(self, method: str, host: str) -> None:
        """Count the call, then raise its queued failure if any; the caller holds the lock."""
        self.calls.append((method, host))
        queued = self._failures.get(method)
        if queued:
            raise queued.pop(0)

    def _get(self, name: str) -> Subscription:
        if name not in self.subscriptions:
            raise MeetNotFound(f"{name} was not found")
        return self.subscriptions[name]

    # ------------------------------------------------------------ the gateway

    def user_of(self, host: str) -> str:
        with self._lock:
            self._enter("user_of", host)
            return self.users.setdefault(host, f"users/{100 + len(self.users)}")

    def create_subscription(self, *, host: str, user: str, topic: str,
                            ttl: dt.timedelta = SUBSCRIPTION_TTL) -> Subscription:
        with self._lock:
            self._enter("create_subscription", host)
            target = user_target(user)
            for sub in self.subscriptions.values():
                if sub.target == target and sub.topic == topic and sub.event_types == MEET_EVENT_TYPES:
                    self.already_existed += 1
                    return sub
            name = f"subscriptions/sub-{next(self._ids)}"
            sub = Subscription(name=name, target=target, event_types=MEET_EVENT_TYPES, topic=topic, state="ACTIVE",
                               expire_time=self.clock() + ttl)
            self.subscriptions[name], self.owners[name] = sub, host
            return sub

    def get_subscription(self, name: str, *, host: str) -> Subscription:
        with self._lock:
            self._enter("get_subscription", host)
            return self._get(name)

    def renew_subscription(self, name: str, *, host: str, ttl: dt.timedelta = SUBSCRIPTION_TTL) -> Subscription:
        with self._lock:
            self._enter("renew_subscription", host)
            sub = dataclasses.replace(self._get(name), expire_time=self.clock() + ttl)
            self.subscriptions[name] = sub
            return sub

    def reactivate_subscription(self, name: str, *, host: str) -> Subscription:
        with self._lock:
            self._enter("reactivate_subscription", host)
            sub = dataclasses.replace(self._get(name), state="ACTIVE", suspension_reason=None)
            self.subscriptions[name] = sub
            return sub

    def delete_subscription(self, name: str, *, host: str) -> None:
        with self._lock:
            self._enter("delete_subscription", host)
            self.subscriptions.pop(name, None)
