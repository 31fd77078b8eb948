"""ID numbers become keyed fingerprints; reason codes fit their decision; the queue's system-check line (no DB)."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import pytest

from verify_service.calls.state import Outcome
from verify_service.errors import InvalidInput
from verify_service.review import identity
from verify_service.review.queue import compact_system_check, describe_system_check
from verify_service.review.reasons import REASONS, check_reasons
from verify_service.support import catalog as catalog_module
from verify_service.support.classify import Classifier

CATALOG = catalog_module.load(Path(__file__).resolve().parents[1] / "fixtures" / "test_catalog.json")

PEPPER = "pepper-" + "z" * 40


@pytest.mark.parametrize("written", ["AB123456", "ab123456", " AB 123 456 ", "AB-123-456", "a-b 1\t2-3456"])
def test_spaces_dashes_and_case_do_not_matter(written: str) -> None:
    assert identity.normalise(written) == "AB123456"
    assert identity.fingerprint(PEPPER, identity.normalise(written)) == identity.fingerprint(PEPPER, "AB123456")


@pytest.mark.parametrize("written", ["", "AB1", "AB/123456", "AB.123456", "ÄB123456", "A" * 31])
def test_other_characters_and_lengths_are_refused_without_quoting_the_number(written: str) -> None:
    with pytest.raises(InvalidInput) as error:
        identity.normalise(written)
    assert error.value.errors[0].field == "document_number"
    assert not written or written not in str(error.value)


def test_the_fingerprint_is_an_hmac_keyed_with_the_pepper() -> None:
    expected = hmac.new(PEPPER.encode(), b"AB123456", hashlib.sha256).hexdigest()
    assert identity.fingerprint(PEPPER, "AB123456") == expected
    assert identity.fingerprint("another-" + PEPPER, "AB123456") != expected
    assert identity.same_number(PEPPER, "ab-123 456", expected)
    assert not identity.same_number(PEPPER, "AB123457", expected)
    with pytest.raises(identity.PepperMissing):
        identity.fingerprint("", "AB123456")


def test_the_parsed_form_never_shows_the_number() -> None:
    form = identity.DocumentForm.parse({"doc_type": "passport", "issuing_country": " pt ", "expires_on": "2031-02-03",
                                        "document_number": "ZQ-998877"})
    assert (form.issuing_country, form.number, str(form.expires_on)) == ("PT", "ZQ998877", "2031-02-03")
    assert "998877" not in repr(form) and "998877" not in str(form)


def test_every_wrong_field_is_named_at_once() -> None:
    with pytest.raises(InvalidInput) as error:
        identity.DocumentForm.parse({"doc_type": "x", "issuing_country": "PRT", "expires_on": "soon",
                                     "document_number": "1"})
    assert [e.field for e in error.value.errors] == ["doc_type", "issuing_country", "expires_on", "document_number"]


@pytest.mark.parametrize(("result", "codes", "notes", "expected"), [
    (Outcome.FAILED, ["poor_video", "id_mismatch", "id_mismatch"], None, ["id_mismatch", "poor_video"]),
    (Outcome.INCONCLUSIVE, ["connection_failed"], None, ["connection_failed"]),
    (Outcome.NO_SHOW, [], None, []),
    (Outcome.PASSED, [], None, []),
    (Outcome.FAILED, ["other"], "Showed a photo of a screen", ["other"]),
])
def test_reason_codes_that_fit(result: Outcome, codes: list[str], notes: str | None, expected: list[str]) -> None:
    assert check_reasons(result, codes, notes) == expected


@pytest.mark.parametrize(("result", "codes", "notes", "field"), [
    (Outcome.FAILED, [], None, "reason_codes"),
    (Outcome.INCONCLUSIVE, [], None, "reason_codes"),
    (Outcome.PASSED, ["poor_video"], None, "reason_codes"),
    (Outcome.FAILED, ["nope"], None, "reason_codes"),
    (Outcome.FAILED, ["other"], "  ", "notes"),
])
def test_reason_codes_that_do_not_fit(result: Outcome, codes: list[str], notes: str | None, field: str) -> None:
    with pytest.raises(InvalidInput) as error:
        check_reasons(result, codes, notes)
    assert error.value.errors[0].field == field


def test_the_catalogue_is_the_one_the_issue_names() -> None:
    assert list(REASONS) == ["id_mismatch", "profile_mismatch", "document_not_shown", "document_expired",
                             "poor_video", "refused_camera", "suspected_duplicate", "connection_failed", "other"]


def test_the_queue_line_of_a_system_check() -> None:
    firefox = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:141.0) Gecko/20100101 Firefox/141.0"
    verdict = Classifier().classify(firefox, None, CATALOG)
    assert describe_system_check(compact_system_check(verdict)) == "Firefox 141 on Windows — not supported"
    # Recorded before the summary was kept: the families, named.
    legacy = {"verdict": "unverified", "browser": "firefox", "browser_major": 141, "os": "windows", "os_version": None}
    assert describe_system_check(legacy) == "Firefox 141 on Windows — not confirmed, allowed"
    assert describe_system_check({"verdict": "unsupported", "browser": "other", "browser_major": 156,
                                  "os": "windows", "os_version": "10"}) == "Windows 10 — not supported"
    assert describe_system_check(None) == "Not recorded"
