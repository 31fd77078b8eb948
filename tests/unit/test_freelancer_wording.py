"""The freelancer's words are complete: every reason code, hold kind and kind of personal data has its sentence."""

from __future__ import annotations

import pytest

from verify_service.accounts.domain import PROFILE_FIELDS, Capability, HoldKind
from verify_service.errors import InvalidInput
from verify_service.freelancer import holds_text, privacy
from verify_service.freelancer.return_url import check_return_url
from verify_service.settings import origin_of
from verify_service.review.reasons import REASONS
from verify_service.review.retention import PURGED_AFTER_RETENTION
from verify_service.settings import Settings


def test_every_reason_code_is_worded_for_the_freelancer_or_hidden_on_purpose() -> None:
    assert set(holds_text.REASON_TEXT) == set(REASONS)
    hidden = {code for code, text in holds_text.REASON_TEXT.items() if text is None}
    assert hidden == {"suspected_duplicate", "other"}
    assert holds_text.reason_lines(["suspected_duplicate", "document_expired", "no-such-code"]) == [
        "The ID you showed has expired. Bring a valid, unexpired ID to the next call."]


def test_every_hold_kind_and_capability_has_words() -> None:
    assert set(holds_text.HOLD_TEXT) == {kind.value for kind in HoldKind}
    assert set(holds_text.CAPABILITY_TEXT) == {c.value for c in Capability}
    failed = holds_text.kind_blocks(HoldKind.VERIFICATION_FAILED)
    assert failed.blocks_text == ("send new proposals to jobs, withdraw your earnings, accept direct offers from "
                                  "clients or appear in freelancer search results")


def test_the_privacy_text_names_everything_the_purge_and_the_closure_erase() -> None:
    assert set(privacy.PROFILE_WORDS) == set(PROFILE_FIELDS)
    assert set(privacy.PURGED_WORDS) == set(PURGED_AFTER_RETENTION)
    facts = privacy.privacy_facts(Settings(retention_days=45))
    assert facts["retention_days"] == 45 and len(facts["purged"]) == len(PURGED_AFTER_RETENTION)


def test_origins_are_compared_normalised() -> None:
    assert origin_of("https://Market.Example:443/a?b#c") == "https://market.example"
    assert origin_of("http://[::1]:8080/") == "http://[::1]:8080"
    assert origin_of("javascript:alert(1)") is None and origin_of("ftp://market.example/") is None


def test_production_takes_only_https_return_urls() -> None:
    production = Settings(env="production", return_url_origins=("https://market.example", "http://market.example"))
    assert check_return_url("https://market.example/back", production) == "https://market.example/back"
    with pytest.raises(InvalidInput, match="https"):
        check_return_url("http://market.example/back", production)
    development = production.replace(env="development")
    assert check_return_url("http://market.example/back", development) == "http://market.example/back"
