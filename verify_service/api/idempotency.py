"""``Idempotency-Key`` for POSTs (docs/architecture.md, 'The API' and 'The unit of work').

The remembered response is written in the same transaction as the
operation's effect, so either both exist or neither does. Two requests
racing with one key meet at the unique constraint: the loser rolls back and
replays the winner's response. Only successful (2xx) responses are
remembered; an error leaves no trace, so the client may retry the key.

A response marked ``Cache-Control: no-store`` carries a secret (a launch
link's sign-in token, otherwise kept only as a hash): its body is sealed with
the data keys (``VERIFY_DATA_KEYS``, :class:`verify_service.crypto.Sealer`)
before it is written down, so the table (a backup, a read replica) never holds
the secret in the clear, and ``verify-service keys rotate`` re-seals it with the
other secrets at rest.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from verify_service.api.models import IdempotencyKey
from verify_service.crypto import Sealer, Unreadable
from verify_service.errors import Conflict

REPLAYED_HEADERS = ("Content-Type", "Location", "ETag", "Cache-Control")
SEALED = "sealed"


class IdempotencyKeyReused(Conflict):
    code = "idempotency_key_reused"
    title = "This Idempotency-Key was used for a different request"


class IdempotentResponseUnreadable(Conflict):
    code = "idempotency_key_unreadable"
    title = "The response remembered for this Idempotency-Key cannot be read"


@dataclasses.dataclass(frozen=True)
class StoredResponse:
    status: int
    body: Any
    headers: dict[str, str]

    @property
    def secret(self) -> bool:
        return "no-store" in self.headers.get("Cache-Control", "")


def seal(stored: StoredResponse, sealer: Sealer) -> StoredResponse:
    """``stored`` as it may be written down: a secret response's body sealed.

    Raises:
        KeysUnavailable: a secret response, and no data key is configured (never stored in clear instead).
    """
    if not stored.secret:
        return stored
    return dataclasses.replace(stored, body={SEALED: sealer.seal(json.dumps(stored.body))})


def unseal(stored: StoredResponse, sealer: Sealer) -> StoredResponse:
    """The response :func:`seal` was given.

    Raises:
        IdempotentResponseUnreadable: no configured data key opens it (its key was removed since).
        KeysUnavailable: a sealed response, and no data key is configured.
    """
    if not stored.secret:
        return stored
    try:
        body = json.loads(sealer.open_(str(stored.body[SEALED])))
    except (Unreadable, KeyError, TypeError, ValueError) as exc:
        raise IdempotentResponseUnreadable(
            "the response to this Idempotency-Key was sealed with a data key that has since been removed; "
            "send the request again with a new key") from exc
    return dataclasses.replace(stored, body=body)


def fingerprint(method: str, path: str, body: bytes) -> str:
    """A hash of the request; JSON bodies are canonicalised so formatting does not matter."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode("utf-8")
    except ValueError:
        canonical = body
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + canonical).hexdigest()


def lookup(db: Session, *, scope: str, key: str, request_hash: str, now: dt.datetime) -> StoredResponse | None:
    """The remembered response for ``key``, if any.

    Raises:
        IdempotencyKeyReused: the key was used with a different request.
    """
    row = db.scalar(sa.select(IdempotencyKey).where(
        IdempotencyKey.scope == scope, IdempotencyKey.key == key, IdempotencyKey.expires_at > now))
    if row is None:
        return None
    if row.request_hash != request_hash:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was first used with a different request body; use a new key for a new request")
    return StoredResponse(row.status_code, row.response_body, dict(row.response_headers))


def remember(db: Session, *, scope: str, key: str, request_hash: str, response: StoredResponse,
             now: dt.datetime, ttl: dt.timedelta) -> None:
    # An expired row with the same key would block the insert: clear it first.
    db.execute(sa.delete(IdempotencyKey).where(
        IdempotencyKey.scope == scope, IdempotencyKey.key == key, IdempotencyKey.expires_at <= now))
    db.add(IdempotencyKey(scope=scope, key=key, request_hash=request_hash, status_code=response.status,
                               response_body=response.body, response_headers=response.headers,
                               created_at=now, expires_at=now + ttl))
    db.flush()


def purge_expired(db: Session, *, now: dt.datetime, batch: int = 5000) -> int:
    """Delete up to ``batch`` expired keys; returns how many were deleted.

    The count is the DELETE's own: rows another run deleted meanwhile are not counted twice.
    """
    ids = db.scalars(sa.select(IdempotencyKey.id).where(IdempotencyKey.expires_at <= now).limit(batch)).all()
    if not ids:
        return 0
    return db.execute(sa.delete(IdempotencyKey).where(IdempotencyKey.id.in_(ids))).rowcount or 0
