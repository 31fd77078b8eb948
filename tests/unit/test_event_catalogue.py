"""The README's event catalogue is the one the models generate, and every example fits the AsyncAPI document."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.event_contract import validators
from verify_service.webhooks.event_examples import catalogue, examples
from verify_service.webhooks.events import EVENT_MODELS

README = Path(__file__).resolve().parents[2] / "README.md"
START = "<!-- event catalogue: generated, do not edit by hand -->\n\n"
END = "<!-- end of the event catalogue -->"


def test_the_readme_catalogue_is_the_generated_one() -> None:
    text = README.read_text(encoding="utf-8")
    assert START in text and END in text, f"README.md needs the markers {START.strip()!r} and {END!r}"
    written = text.split(START, 1)[1].split(END, 1)[0]
    expected = catalogue()
    if written != expected:
        print(f"Paste this between the markers in README.md:\n{START}{expected}{END}")
    assert written == expected, "README.md's event catalogue differs from the models' (the block to paste is printed)"


def test_every_type_has_an_example_in_the_models_order() -> None:
    assert list(examples()) == list(EVENT_MODELS)


@pytest.mark.parametrize("event_type", list(EVENT_MODELS))
def test_each_example_fits_the_asyncapi_document(event_type: str) -> None:
    body = {"type": event_type, "timestamp": "2026-11-22T10:05:00Z", "data": examples()[event_type]}
    assert validators()[event_type](body) == []
