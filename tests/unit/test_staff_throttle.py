"""Pure rules of staff sign-in: lockout lengths, throttle keys, TOTP windows and replay, safe redirects."""

from __future__ import annotations

import datetime as dt
import hashlib

import pyotp
import pytest

from verify_service.crypto import Keyring, derive_key
from verify_service.settings import Settings
from verify_service.staff import throttle, two_step
from verify_service.staff.auth import safe_next
from verify_service.staff.models import ThrottleKind

NOW = dt.datetime(2026, 11, 22, 9, 0, 0, tzinfo=dt.timezone.utc)
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
KEY = Keyring.from_settings(Settings(secret_key="s" * 48)).throttle_key()


def test_the_limits_are_five_per_account_and_fifty_per_ip_within_fifteen_minutes() -> None:
    assert throttle.LIMITS == {ThrottleKind.ACCOUNT: 5, ThrottleKind.IP: 50, ThrottleKind.SECOND_FACTOR: 5}
    assert throttle.WINDOW == dt.timedelta(minutes=15)


def test_lockouts_start_at_the_limit_double_and_stop_growing_at_an_hour() -> None:
    minutes = [throttle.lock_duration(n, 5) for n in range(1, 14)]
    assert minutes[:4] == [None] * 4
    assert [m.total_seconds() / 60 for m in minutes[4:] if m] == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert throttle.lock_duration(10**6, 5) == dt.timedelta(hours=1)  # a long attack never overflows


def test_throttle_keys_hide_the_email_and_ignore_its_case() -> None:
    key = throttle.account_key(" Ana@Example.COM ", secret=KEY)
    assert key == throttle.account_key("ana@example.com", secret=KEY)
    assert "ana" not in key.hash and len(key.hash) == 64
    assert throttle.ip_key("10.0.0.1", secret=KEY) != throttle.account_key("10.0.0.1", secret=KEY)


def test_throttle_keys_depend_on_the_secret_so_a_copy_of_the_table_alone_reveals_nothing() -> None:
    other = Keyring.from_settings(Settings(secret_key="t" * 48)).throttle_key()
    assert other != KEY and len(KEY) == 32
    assert throttle.account_key("ana@example.com", secret=KEY) != throttle.account_key("ana@example.com",
                                                                                       secret=other)
    assert throttle.ip_key("10.0.0.1", secret=KEY).hash != hashlib.sha256(b"ip:10.0.0.1").hexdigest()
    # Its own key: not the session-signing secret itself, nor what another use derives from it.
    assert KEY != ("s" * 48).encode() and KEY != derive_key("s" * 48, b"another use")


def test_a_totp_code_is_accepted_one_step_either_side_and_only_after_the_last_used_step() -> None:
    totp = pyotp.TOTP(SECRET)
    step = totp.timecode(NOW)
    for offset in (-1, 0, 1):
        assert two_step.matching_step(SECRET, totp.at(NOW, counter_offset=offset), now=NOW, after=None) \
            == step + offset
    assert two_step.matching_step(SECRET, totp.at(NOW, counter_offset=2), now=NOW, after=None) is None
    assert two_step.matching_step(SECRET, totp.at(NOW), now=NOW, after=step) is None       # replayed
    assert two_step.matching_step(SECRET, totp.at(NOW, counter_offset=-1), now=NOW, after=step) is None
    assert two_step.matching_step(SECRET, totp.at(NOW, counter_offset=1), now=NOW, after=step) == step + 1
    code = totp.at(NOW)
    assert two_step.matching_step(SECRET, f"{code[:3]} {code[3:]}", now=NOW, after=None) == step
    for junk in ("", "12345", "1234567", "abcdef", "١٢٣٤٥٦"):
        assert two_step.matching_step(SECRET, junk, now=NOW, after=None) is None


@pytest.mark.parametrize("value", ["/review/queue", "/review/lead/accounts?status=open", "/"])
def test_local_paths_are_safe_targets(value: str) -> None:
    assert safe_next(value) == value


@pytest.mark.parametrize("value", [None, "", "review/queue", "https://evil.example/", "//evil.example",
                                   "/\\evil.example", "\\\\evil.example", "/\t/evil.example",
                                   "/\r\nLocation: https://evil.example", "javascript:alert(1)",
                                   "http:/evil.example", "/" + "a" * 3000])
def test_anything_else_is_refused(value: str | None) -> None:
    assert safe_next(value) is None
