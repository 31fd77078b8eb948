"""Bearer API keys for the account service (``VERIFY_API_KEYS``, several for rotation)."""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from verify_service.errors import Unauthorized

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="verify-service"'}


def key_matches(authorization: str | None, keys: Iterable[str]) -> bool:
    """Whether the ``Authorization`` header carries one of ``keys``.

    Every configured key is compared, in constant time, whatever the outcome,
    so timing says nothing about which key (or how much of one) matched.
    """
    if not authorization:
        return False
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return False
    presented = token.strip().encode("utf-8")
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(presented, key.encode("utf-8"))
    return matched


def require_api_key(authorization: str | None, keys: Iterable[str]) -> None:
    """Raises: Unauthorized (with a ``WWW-Authenticate`` challenge)."""
    if not key_matches(authorization, keys):
        detail = ("send the API key as 'Authorization: Bearer <key>'" if not authorization
                  else "the API key is not valid")
        raise Unauthorized(detail, headers=CHALLENGE)
