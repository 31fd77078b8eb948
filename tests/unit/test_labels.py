"""The label catalogue: every code a page shows has a label, and names are isolated with their controls shown."""

from __future__ import annotations

import re

import pytest

from verify_service.labels import CATALOGUE, ENUMS, label, person, person_text
from verify_service.review.decisions import LEAD_CANCEL_REASONS
from verify_service.review.reasons import REASONS

SNAKE = re.compile(r"\b[a-z]+_[a-z_]+\b")


@pytest.mark.parametrize("kind", sorted(ENUMS))
def test_every_member_of_every_enum_a_page_shows_has_a_label(kind: str) -> None:
    missing = [member.value for member in ENUMS[kind] if member.value not in CATALOGUE[kind]]
    assert not missing, f"no {kind!r} label for {missing}: add them to verify_service/labels.py"


@pytest.mark.parametrize(("kind", "codes"), [("reason", REASONS), ("cancel_reason", LEAD_CANCEL_REASONS)])
def test_every_reason_code_has_a_label(kind: str, codes: dict[str, str]) -> None:
    assert set(codes) <= set(CATALOGUE[kind])


def test_no_label_is_itself_a_code() -> None:
    coded = [(kind, code, text) for kind, part in CATALOGUE.items() for code, text in part.items()
             if not text.strip() or SNAKE.search(text)]
    assert not coded


def test_a_label_is_looked_up_by_member_or_value_and_an_unknown_code_reads_as_words() -> None:
    outcome = ENUMS["outcome"]
    assert label(outcome("no_show"), "outcome") == label("no_show", "outcome") == "No show"
    assert label("national_id", "document") == "National ID card"
    assert label("some_new_field", "field") == "Some new field"


def test_a_name_is_isolated_escaped_and_its_direction_controls_are_shown() -> None:
    html = str(person("Ana\u202eamiL <b>"))
    assert html.startswith('<bdi class="person">') and html.endswith("</bdi>")
    assert "\u202e" not in html and "⟨U+202E⟩" in html and 'class="bidi-mark"' in html
    assert "&lt;b&gt;" in html
    assert person_text("a\u2066b\u200fc") == "a⟨U+2066⟩b⟨U+200F⟩c"
    assert person_text(None) == "(no name)" and str(person("", "–")) == '<bdi class="person">–</bdi>'
