"""Time zone names read into their canonical IANA spelling, garbage refused, and times put in words."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest

from verify_service.accounts import zones
from verify_service.errors import InvalidInput
from verify_service.freelancer.timezones import full_date, moment

UTC = dt.timezone.utc


@pytest.mark.parametrize(("given", "canonical"), [
    ("Asia/Calcutta", "Asia/Kolkata"),          # what Chromium reports in India
    ("Europe/Kiev", "Europe/Kyiv"),
    ("US/Eastern", "America/New_York"),
    (" Asia/Kolkata ", "Asia/Kolkata"),
    ("Europe/Oslo", "Europe/Oslo"),             # a country's own zone stays, link or not
    ("UTC", "UTC"),                             # not "Etc/UTC"
    ("Europe/Berlin", "Europe/Berlin"),
])
def test_zone_names_are_read_in_their_canonical_spelling(given: str, canonical: str) -> None:
    assert zones.canonical_name(given) == canonical
    assert str(zones.canonical_zone(given)) == canonical


def test_every_link_points_at_a_zone_that_exists() -> None:
    assert zones.links()["Asia/Calcutta"] == "Asia/Kolkata"
    for target in zones.links().values():
        zoneinfo.ZoneInfo(target)


@pytest.mark.parametrize("garbage", ["", "   ", "Mars/Olympus", "Europe", "../../etc/passwd", "/etc/localtime",
                                     "localtime", "Factory", "x\x00y", "A" * 200, "UTC ."])
def test_a_name_that_is_no_zone_is_refused_with_a_message_for_the_field(garbage: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        zones.canonical_name(garbage)
    [error] = refused.value.errors
    assert error.field == "tz" and "is not a time zone we know" in error.message
    assert "\x00" not in error.message and len(error.message) < 200
    assert zones.known_zone(garbage) is None


def test_a_missing_zone_is_none() -> None:
    assert zones.known_zone(None) is None and zones.known_zone("") is None


def test_times_are_put_in_words_in_the_freelancers_zone() -> None:
    kolkata = zoneinfo.ZoneInfo("Asia/Kolkata")
    now = dt.datetime(2026, 11, 22, 9, 0, tzinfo=UTC)   # Sunday, 14:30 in Kolkata
    assert moment(dt.datetime(2026, 11, 22, 12, 30, tzinfo=UTC), kolkata, now=now) == "today at 18:00"
    assert moment(dt.datetime(2026, 11, 22, 20, 0, tzinfo=UTC), kolkata, now=now) == "tomorrow at 01:30"
    assert moment(dt.datetime(2026, 11, 25, 16, 30, tzinfo=UTC), kolkata, now=now) == "Wednesday 25 November at 22:00"
    # The day is the freelancer's: 20:00 UTC on Sunday is Monday in Kolkata, still Sunday in UTC.
    assert moment(dt.datetime(2026, 11, 22, 20, 0, tzinfo=UTC), zones.UTC, now=now) == "today at 20:00"
    shown = full_date(dt.datetime(2026, 11, 23, 8, 30, tzinfo=UTC), kolkata)
    assert shown == "Monday 23 November 2026 at 14:00 (Asia/Kolkata)"
