"""Bearer API keys (VERIFY_API_KEYS, several for rotation)."""

from __future__ import annotations

import hmac
from typing import Any

import pytest

from verify_service.api.auth import key_matches, require_api_key
from verify_service.errors import Unauthorized

KEY_A = "current-key-" + "a" * 32
KEY_B = "rotated-key-" + "b" * 32
KEYS = (KEY_A, KEY_B)


@pytest.mark.parametrize("key", KEYS)
def test_each_configured_key_is_accepted(key: str) -> None:
    assert key_matches(f"Bearer {key}", KEYS) is True
    require_api_key(f"Bearer {key}", KEYS)  # does not raise


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "BeArEr"])
def test_scheme_is_case_insensitive(scheme: str) -> None:
    assert key_matches(f"{scheme} {KEY_A}", KEYS) is True


def test_surrounding_whitespace_in_the_token_is_ignored() -> None:
    assert key_matches(f"Bearer  {KEY_B} ", KEYS) is True


@pytest.mark.parametrize("header", [
    None,
    "",
    f"Basic {KEY_A}",
    f"Token {KEY_A}",
    "Bearer",
    "Bearer ",
    "Bearer    ",
    "Bearer wrong-key-" + "c" * 32,
    f"Bearer {KEY_A[:-1]}",          # a prefix of a valid key
    f"Bearer {KEY_A[:8]}",
    f"Bearer {KEY_A}x",              # a valid key plus more
    f"Bearer {KEY_A},{KEY_B}",
    f"Bearer {KEY_A.upper()}",       # keys are case-sensitive
    KEY_A,                           # no scheme at all
    f"Bearer{KEY_A}",
], ids=lambda h: repr(h)[:30])
def test_bad_headers_are_refused(header: str | None) -> None:
    assert key_matches(header, KEYS) is False
    with pytest.raises(Unauthorized):
        require_api_key(header, KEYS)


def test_no_configured_keys_accepts_nothing() -> None:
    assert key_matches(f"Bearer {KEY_A}", ()) is False


def test_empty_configured_key_does_not_match_anything() -> None:
    assert key_matches("Bearer  ", ("",)) is False
    assert key_matches("Bearer x", ("",)) is False


def test_non_ascii_token_is_refused_without_error() -> None:
    assert key_matches("Bearer clé-" + "é" * 40, KEYS) is False


def test_unauthorized_carries_the_bearer_challenge() -> None:
    with pytest.raises(Unauthorized) as info:
        require_api_key("Bearer nope", KEYS)
    error = info.value
    assert error.status == 401
    assert error.code == "unauthorized"
    assert error.headers.get("WWW-Authenticate", "").startswith("Bearer ")
    assert 'realm="verify-service"' in error.headers["WWW-Authenticate"]
    assert "not valid" in error.detail


def test_missing_header_says_how_to_send_the_key() -> None:
    with pytest.raises(Unauthorized) as info:
        require_api_key(None, KEYS)
    assert "Authorization: Bearer" in info.value.detail
    assert info.value.headers["WWW-Authenticate"].startswith("Bearer")


def test_every_key_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Any, Any]] = []
    real = hmac.compare_digest

    def counting(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr("verify_service.api.auth.hmac.compare_digest", counting)
    keys = (KEY_A, KEY_B, "third-key-" + "c" * 32)

    assert key_matches(f"Bearer {KEY_A}", keys) is True  # the first key matches...
    assert len(calls) == len(keys)                       # ...and every key is still compared
    assert [b for _, b in calls] == [k.encode() for k in keys]

    calls.clear()
    assert key_matches("Bearer wrong", keys) is False
    assert len(calls) == len(keys)

    calls.clear()
    assert key_matches(f"Bearer {keys[-1]}", keys) is True
    assert len(calls) == len(keys)


def test_keys_may_be_any_iterable() -> None:
    assert key_matches(f"Bearer {KEY_B}", iter(KEYS)) is True
    assert key_matches(f"Bearer {KEY_B}", [KEY_A, KEY_B]) is True
