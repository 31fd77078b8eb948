"""``Idempotency-Key`` for POSTs (DESIGN §4.1).

The remembered response is written in the same transaction as the
operation's effect, so either both exist or neither does. Two requests
racing with one key meet at the unique constraint: the loser rolls back and
replays the winner's response. Only successful (2xx) responses are
remembered; an error leaves no trace, so the client may retry the key.
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
from verify_service.errors import Conflict

REPLAYED_HEADERS = ("Content-Type", "Location", "ETag")


class IdempotencyKeyReused(Conflict):
    code = "idempotency_key_reused"
    title = "This Idempotency-Key was used for a different request"


@dataclasses.dataclass(frozen=True)
class StoredResponse:
    status: int
    body: Any
    headers: dict[str, str]


def fingerprint(method: str, path: str, body: bytes) -> str:
    """A hash of the request; JSON bodies are canonicalised so formatting does not matter."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode("utf-8")
    except ValueError:
        canonical = body
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + canonical).hexdigest()


def lookup(session: Session, *, scope: str, key: str, request_hash: str, now: dt.datetime) -> StoredResponse | None:
    """The remembered response for ``key``, if any.

    Raises:
        IdempotencyKeyReused: the key was used with a different request.
    """
    row = session.scalar(sa.select(IdempotencyKey).where(
        IdempotencyKey.scope == scope, IdempotencyKey.key == key, IdempotencyKey.expires_at > now))
    if row is None:
        return None
    if row.request_hash != request_hash:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was first used with a different request body; use a new key for a new request")
    return StoredResponse(row.status_code, row.response_body, dict(row.response_headers))


def remember(session: Session, *, scope: str, key: str, request_hash: str, response: StoredResponse,
             now: dt.datetime, ttl: dt.timedelta) -> None:
    # An expired row with the same key would block the insert: clear it first.
    session.execute(sa.delete(IdempotencyKey).where(
        IdempotencyKey.scope == scope, IdempotencyKey.key == key, IdempotencyKey.expires_at <= now))
    session.add(IdempotencyKey(scope=scope, key=key, request_hash=request_hash, status_code=response.status,
                               response_body=response.body, response_headers=response.headers,
                               created_at=now, expires_at=now + ttl))
    session.flush()


def purge_expired(session: Session, *, now: dt.datetime, batch: int = 5000) -> int:
    """Delete up to ``batch`` expired keys; returns how many were deleted.

    The count is the DELETE's own: rows another run deleted meanwhile are not counted twice.
    """
    ids = session.scalars(sa.select(IdempotencyKey.id).where(IdempotencyKey.expires_at <= now).limit(batch)).all()
    if not ids:
        return 0
    return session.execute(sa.delete(IdempotencyKey).where(IdempotencyKey.id.in_(ids))).rowcount or 0
