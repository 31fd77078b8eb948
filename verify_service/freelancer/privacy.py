"""What the help page says we keep, for how long, and what closing the account erases.

Built from the constants and settings the purge and the closure themselves use
(``review/retention.py``, ``accounts/domain.PROFILE_FIELDS``, ``VERIFY_RETENTION_DAYS``), so the text
cannot drift from what is done: a new kind of personal data without words here is a KeyError in the tests.
"""

from __future__ import annotations

from typing import Any

from verify_service.accounts.domain import PROFILE_FIELDS
from verify_service.freelancer.services import ABSOLUTE_TIMEOUT, IDLE_TIMEOUT
from verify_service.freelancer.timezones import REMEMBER as ZONE_REMEMBERED
from verify_service.review.retention import PURGED_AFTER_RETENTION, retention_period
from verify_service.settings import Settings

PROFILE_WORDS = {
    "display_name": "your name",
    "email": "your email address",
    "country": "your country",
    "photo_url": "the address of your profile photo",
    "timezone": "your time zone",
    "locale": "your language setting",
}

PURGED_WORDS = {
    "reviewer_notes": "the reviewer's notes on the call",
    "id_document": "the details of the ID you showed (its type, issuing country, expiry date, the last 4 "
                   "characters of its number and the keyed fingerprint of the number)",
    "meet_display_names": "the names shown in Google Meet for the people who joined the call",
}


def privacy_facts(settings: Settings) -> dict[str, Any]:
    """The values of the help page's privacy section."""
    return {"retention_days": retention_period(settings).days,
            "profile": [PROFILE_WORDS[field] for field in PROFILE_FIELDS],
            "purged": [PURGED_WORDS[name] for name in PURGED_AFTER_RETENTION],
            "zone_cookie_days": ZONE_REMEMBERED.days,
            "idle_minutes": int(IDLE_TIMEOUT.total_seconds() // 60),
            "session_hours": int(ABSOLUTE_TIMEOUT.total_seconds() // 3600)}
