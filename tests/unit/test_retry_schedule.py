"""The outbound retry schedule and Retry-After parsing."""

from __future__ import annotations

import datetime as dt
import email.utils
import random

import pytest

from integrations.account_service import MAX_RETRY_AFTER, OutboundMessage, parse_retry_after
from verify_service.webhooks.relay import JITTER, MAX_ATTEMPTS, RETRY_SCHEDULE, next_delay

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.timezone.utc)
EXPECTED = [5, 300, 1800, 7200, 18000, 36000, 36000, 50400, 72000, 86400]  # seconds, per the issue


def test_schedule_matches_the_contract_and_spans_three_days_even_with_jitter() -> None:
    assert [int(d.total_seconds()) for d in RETRY_SCHEDULE] == EXPECTED
    assert MAX_ATTEMPTS == 11  # the immediate attempt plus ten retries
    assert sum(RETRY_SCHEDULE, dt.timedelta()) * (1 - JITTER) >= dt.timedelta(days=3)


@pytest.mark.parametrize("failed", range(1, MAX_ATTEMPTS))
def test_each_delay_is_its_step_with_bounded_jitter(failed: int) -> None:
    base = dt.timedelta(seconds=EXPECTED[failed - 1])
    delays = {next_delay(failed, None, random.Random(seed)) for seed in range(50)}
    assert all(base * (1 - JITTER) <= d <= base * (1 + JITTER) for d in delays)
    assert len(delays) > 40  # really jittered, not a constant


def test_after_the_last_attempt_the_event_is_dead() -> None:
    assert next_delay(MAX_ATTEMPTS, None) is None
    assert next_delay(MAX_ATTEMPTS + 3, dt.timedelta(seconds=1)) is None


def test_retry_after_is_a_floor_never_a_shortcut() -> None:
    assert next_delay(1, dt.timedelta(minutes=10), random.Random(1)) == dt.timedelta(minutes=10)
    shorter = next_delay(3, dt.timedelta(seconds=1), random.Random(1))
    assert shorter is not None and shorter >= dt.timedelta(minutes=27)


@pytest.mark.parametrize(("header", "expected"), [
    (None, None),
    ("", None),
    ("120", dt.timedelta(seconds=120)),
    (" 0 ", dt.timedelta(0)),
    ("soon", None),
    ("-5", None),
    (email.utils.format_datetime(NOW + dt.timedelta(minutes=3), usegmt=True), dt.timedelta(minutes=3)),
    (email.utils.format_datetime(NOW - dt.timedelta(minutes=3), usegmt=True), dt.timedelta(0)),
    ("999999999", MAX_RETRY_AFTER),
])
def test_parse_retry_after(header: str | None, expected: dt.timedelta | None) -> None:
    assert parse_retry_after(header, NOW) == expected


def test_message_body_is_the_documented_envelope() -> None:
    message = OutboundMessage("evt_1", "account.hold.lifted", NOW, {"account_id": "a", "seq": 3}, attempt=2)
    assert message.body() == ('{"type":"account.hold.lifted","timestamp":"2026-11-22T12:00:00Z",'
                              '"data":{"account_id":"a","seq":3}}')
