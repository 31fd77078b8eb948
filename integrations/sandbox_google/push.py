"""The sandbox's Cloud Pub/Sub push: each event as Pub/Sub would POST it, with an OIDC token the sandbox signs.

Pub/Sub pushes a message to the push endpoint with ``Authorization: Bearer <token>``, a Google-signed
OIDC token whose ``aud`` is the push subscription's audience and whose ``email`` is its service
account. The sandbox signs its tokens with an RSA key of its own, made once per process, and serves
the matching certificates in the format of Google's v1 certs endpoint (:func:`certs`, and the
``SANDBOX_EVENTS["certs"]`` route), so the service verifies them exactly as it verifies Google's.

Delivery is Pub/Sub's: at least once, from a background thread; an answer other than 2xx, or no
answer, is retried with exponential backoff (capped), and given up (logged) after ``max_attempts``.
Messages go in the order they happened, but a retried one is overtaken by later ones, as with
Pub/Sub without ordering keys.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import hashlib
import heapq
import itertools
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from google.auth import crypt, jwt

from integrations.meet_events import CloudEvent, push_body

log = logging.getLogger(__name__)

ISSUER = "https://accounts.google.com"
TOKEN_LIFETIME = dt.timedelta(hours=1)
CERTS_MAX_AGE = 3600  # seconds the certs endpoint lets caches keep its answer
# ``transport(url, headers, body)`` → the HTTP status the push endpoint answered (raises: no answer).
Transport = Callable[[str, dict[str, str], dict[str, Any]], int]


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


# ---------------------------------------------------------------- the signing key and its certificates

@dataclasses.dataclass(frozen=True)
class SigningKey:
    """An RSA key that signs push tokens, its key id (the token's ``kid``) and its X.509 certificate (PEM)."""

    kid: str
    private_pem: bytes = dataclasses.field(repr=False)
    certificate_pem: str

    def signer(self) -> crypt.RSASigner:
        return crypt.RSASigner.from_string(self.private_pem, key_id=self.kid)


def new_signing_key(now: dt.datetime | None = None) -> SigningKey:
    """A fresh 2048-bit key with a self-signed certificate valid from a day before ``now`` for a year."""
    now = now or _utcnow()
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "verify-service sandbox Pub/Sub push tokens")])
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(private.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=365))
                   .sign(private, hashes.SHA256()))
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return SigningKey(uuid.uuid4().hex, pem, certificate.public_bytes(serialization.Encoding.PEM).decode())


_KEY: SigningKey | None = None
_KEY_LOCK = threading.Lock()


def default_key() -> SigningKey:
    """This process's sandbox signing key, made on first use (every app of the process shares it)."""
    global _KEY
    with _KEY_LOCK:
        if _KEY is None:
            _KEY = new_signing_key()
        return _KEY


def certs(key: SigningKey | None = None) -> dict[str, str]:
    """``{kid: PEM certificate}`` of the sandbox's key, as Google's v1 certs endpoint answers."""
    key = key or default_key()
    return {key.kid: key.certificate_pem}


def numeric_id(email: str) -> str:
    """A stable numeric ``sub`` for a service account, as Google's tokens carry one."""
    return "1" + f"{int(hashlib.sha256(email.casefold().encode()).hexdigest()[:15], 16):020d}"


def sign_push_token(audience: str, email: str, *, now: dt.datetime, lifetime: dt.timedelta = TOKEN_LIFETIME,
                    key: SigningKey | None = None) -> str:
    """An OIDC token as Pub/Sub's push sends: issued by Google for ``email`` (the push account) to ``audience``."""
    issued = int(now.timestamp())
    payload = {"iss": ISSUER, "aud": audience, "azp": numeric_id(email), "sub": numeric_id(email),
               "email": email, "email_verified": True, "iat": issued,
               "exp": issued + int(lifetime.total_seconds())}
    signer = (key or default_key()).signer()
    return jwt.encode(signer, payload).decode()


# ---------------------------------------------------------------- delivery

@dataclasses.dataclass(frozen=True)
class PushConfig:
    """Where the sandbox's push subscription delivers: the topic it reads, the endpoint and its token's claims."""

    topic: str                     # settings.meet_events_topic: only subscriptions on it are delivered
    url: str                       # settings.base_url + MEET_EVENTS_PATH
    audience: str                  # settings.meet_events_audience
    account: str                   # settings.meet_events_push_account (the token's email)

    @property
    def push_subscription(self) -> str:
        project, _, topic = self.topic.removeprefix("projects/").partition("/topics/")
        return f"projects/{project}/subscriptions/{topic}-push"


@dataclasses.dataclass(frozen=True)
class PushAttempt:
    """One delivery attempt, for tests: the event, the attempt's number and what the endpoint answered."""

    event: CloudEvent
    attempt: int
    status: int | None             # None: no answer (connection error)


def post_json(url: str, headers: dict[str, str], body: dict[str, Any]) -> int:
    """The default transport: a real POST with a timeout. Raises: requests.RequestException."""
    return requests.post(url, headers=headers, json=body, timeout=10).status_code


class PushDelivery:
    """Queues events and pushes them from a worker thread; every method is safe to call from any thread.

    ``transport`` may be replaced (tests deliver through Flask's test client); ``token_clock`` is
    what the tokens' ``iat`` is read from (the wall clock, as Google's; tests may give the app's);
    ``backoff_base``, ``backoff_cap`` and ``max_attempts`` shape the retries (tests shorten them).
    :attr:`attempts` keeps the latest delivery attempts. Nothing is queued without a
    :class:`PushConfig` (events off).
    """

    def __init__(self, config: PushConfig | None, clock: Callable[[], dt.datetime] = _utcnow, *,
                 transport: Transport = post_json, backoff_base: float = 0.5, backoff_cap: float = 10.0,
                 max_attempts: int = 10, idle_seconds: float = 5.0) -> None:
        self.config = config
        self.transport = transport
        self.token_clock: Callable[[], dt.datetime] = _utcnow
        self.key = default_key()
        self.attempts: collections.deque[PushAttempt] = collections.deque(maxlen=1000)  # the latest, oldest first
        self.backoff_base, self.backoff_cap, self.max_attempts = backoff_base, backoff_cap, max(1, max_attempts)
        self._clock = clock
        self._idle = idle_seconds
        self._ids = itertools.count(int(time.time() * 1000))
        self._queue: list[tuple[float, int, int, CloudEvent, dict[str, Any]]] = []  # (due, seq, attempt, …)
        self._seq = itertools.count()
        self._busy = 0
        self._worker: threading.Thread | None = None
        self._ready = threading.Condition()

    def certs(self) -> dict[str, str]:
        """The certificates its tokens verify with (``{kid: PEM}``)."""
        return certs(self.key)

    def publish(self, event: CloudEvent, topic: str) -> bool:
        """Queue ``event`` if it was published to the topic the push subscription reads; whether it was queued."""
        if self.config is None or topic != self.config.topic:
            return False
        body = push_body(event, message_id=str(next(self._ids)), push_subscription=self.config.push_subscription,
                         publish_time=self._clock())
        with self._ready:
            heapq.heappush(self._queue, (time.monotonic(), next(self._seq), 1, event, body))
            if self._worker is None:
                self._worker = threading.Thread(target=self._run, name="sandbox-pubsub-push", daemon=True)
                self._worker.start()
            self._ready.notify_all()
        return True

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until nothing is queued or being delivered; whether that happened within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._ready:
            while self._queue or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._ready.wait(left)
            return True

    def _run(self) -> None:
        while True:
            with self._ready:
                item = self._next()
                if item is None:
                    self._worker = None
                    self._ready.notify_all()
                    return
                self._busy += 1
            try:
                self._deliver(*item)
            finally:
                with self._ready:
                    self._busy -= 1
                    self._ready.notify_all()

    def _next(self) -> tuple[int, CloudEvent, dict[str, Any]] | None:
        """The next message due, waiting for it (lock held); ``None`` after ``idle_seconds`` with nothing queued."""
        idle_until = time.monotonic() + self._idle
        while True:
            now = time.monotonic()
            if self._queue and self._queue[0][0] <= now:
                _due, _seq, attempt, event, body = heapq.heappop(self._queue)
                return attempt, event, body
            if not self._queue and now >= idle_until:
                return None
            self._ready.wait((self._queue[0][0] if self._queue else idle_until) - now)

    def _deliver(self, attempt: int, event: CloudEvent, body: dict[str, Any]) -> None:
        assert self.config is not None
        token = sign_push_token(self.config.audience, self.config.account, now=self.token_clock(), key=self.key)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                   "User-Agent": "APIs-Google (verify-service sandbox Pub/Sub push)"}
        status: int | None = None
        try:
            status = int(self.transport(self.config.url, headers, body))
        except Exception as exc:  # noqa: BLE001 — any failure to deliver is retried, as Pub/Sub does
            log.info("sandbox push of %s (%s) attempt %d: no answer (%s: %s)",
                     event.id, event.type, attempt, type(exc).__name__, exc)
        self.attempts.append(PushAttempt(event, attempt, status))
        if status is not None and 200 <= status < 300:
            return
        if attempt >= self.max_attempts:
            log.warning("sandbox push of %s (%s) to %s: gave up after %d attempts (last answer %s)",
                        event.id, event.type, self.config.url, attempt, status)
            return
        delay = min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1))
        with self._ready:
            heapq.heappush(self._queue, (time.monotonic() + delay, next(self._seq), attempt + 1, event, body))
            self._ready.notify_all()
