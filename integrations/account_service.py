"""Webhooks to the account service: Standard Webhooks signing over HTTP.

One :class:`WebhookSender` serves the whole process. Each worker thread gets
its own ``requests.Session`` (kept-alive connections, no sharing across
threads). Every call has connect and read timeouts.

Failure mode: **fails closed, loses nothing.** Anything but a 2xx — an HTTP
error, a timeout, a refused connection — is reported as a failed attempt;
the relay keeps the event and retries it later with the same ``webhook-id``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import email.utils
import json
import logging
import math
import threading
from typing import Any, Protocol

import requests
from standardwebhooks import Webhook

log = logging.getLogger(__name__)

USER_AGENT = "verify-service-webhooks/1"
# Longest Retry-After we follow: beyond it the retry schedule decides.
MAX_RETRY_AFTER = dt.timedelta(hours=24)


@dataclasses.dataclass(frozen=True)
class OutboundMessage:
    event_id: str           # the webhook-id, the same on every attempt
    type: str
    created_at: dt.datetime
    data: dict[str, Any]
    attempt: int            # 1 for the first attempt

    def body(self) -> str:
        return json.dumps(event_body(self.type, self.created_at, self.data), separators=(",", ":"),
                          ensure_ascii=False)


def event_body(event_type: str, created_at: dt.datetime, data: dict[str, Any]) -> dict[str, Any]:
    """The webhook body of an event, ``{type, timestamp, data}``: what is signed and sent, and what the events API shows."""
    created = created_at.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")
    return {"type": event_type, "timestamp": created, "data": data}


@dataclasses.dataclass(frozen=True)
class DeliveryResult:
    delivered: bool
    status_code: int | None = None
    error: str | None = None
    retry_after: dt.timedelta | None = None

    @property
    def gone(self) -> bool:
        """The receiver says the endpoint no longer exists (410): stop sending there."""
        return self.status_code == 410


class AccountServiceSender(Protocol):
    url: str

    def send(self, message: OutboundMessage) -> DeliveryResult:
        """Deliver one message; never raises for network or HTTP failures."""


def parse_retry_after(value: str | None, now: dt.datetime) -> dt.timedelta | None:
    """``Retry-After`` as seconds or an HTTP date; ``None`` when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        delay = dt.timedelta(seconds=int(value))
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.timezone.utc)
        delay = when - now
    return max(dt.timedelta(0), min(delay, MAX_RETRY_AFTER))


class WebhookSender:
    """Signs and POSTs events to ``url``.

    The signature's timestamp is the attempt's real wall-clock time (receivers
    allow ±5 minutes), so every retry is signed afresh under the same id.
    """

    def __init__(self, url: str, secret: str, *, connect_timeout: float = 3.05, read_timeout: float = 10.0) -> None:
        self.url = url
        self._webhook = Webhook(secret)
        self._timeout = (connect_timeout, read_timeout)
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers["User-Agent"] = USER_AGENT
            # The environment's proxy and CA settings for this URL, read once with requests' own rules
            # rather than on every POST (that lookup walks os.environ twice: about a fifth of the relay's
            # time per delivery in tests/bench/bench_relay.py).
            found = session.merge_environment_settings(self.url, {}, None, None, None)
            session.proxies.update(found["proxies"])
            session.verify = found["verify"]
            session.trust_env = False
            self._local.session = session
        return session

    def headers(self, message: OutboundMessage, body: str, now: dt.datetime) -> dict[str, str]:
        return {
            "webhook-id": message.event_id,
            "webhook-timestamp": str(math.floor(now.timestamp())),
            "webhook-signature": self._webhook.sign(message.event_id, now, body),
            "webhook-attempt": str(message.attempt),
            "Content-Type": "application/json",
        }

    def send(self, message: OutboundMessage) -> DeliveryResult:
        now = dt.datetime.now(dt.timezone.utc)
        body = message.body()
        try:
            response = self._session().post(self.url, data=body.encode("utf-8"), timeout=self._timeout,
                                            headers=self.headers(message, body, now), allow_redirects=False)
        except requests.RequestException as exc:
            log.warning("webhook %s (%s) attempt %d to %s failed: %s", message.event_id, message.type,
                        message.attempt, self.url, type(exc).__name__)
            return DeliveryResult(False, None, f"{type(exc).__name__}: {exc}"[:1000])
        with response:
            if 200 <= response.status_code < 300:
                return DeliveryResult(True, response.status_code)
            detail = response.text[:300]
            log.warning("webhook %s (%s) attempt %d to %s answered %d", message.event_id, message.type,
                        message.attempt, self.url, response.status_code)
            return DeliveryResult(False, response.status_code, f"HTTP {response.status_code}: {detail}"[:1000],
                                  parse_retry_after(response.headers.get("Retry-After"), now))
