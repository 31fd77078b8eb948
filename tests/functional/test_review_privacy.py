"""An ID document number never reaches the database, the logs, the events or the pages (both backends).

The number is letter-heavy on purpose: every 5-character piece of it holds a
letter that is not a hex digit, so no fingerprint, hash or id can contain it
by chance, and a hit always means a leak.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from tests.conftest import Api
from tests.support.fake_meet import FakeMeetGateway
from tests.support.review_desk import attend, page_text, staff, waiting
from verify_service.db import Base
from verify_service.registry import Registry
from verify_service.review.models import IdentityDocument

RAW = "kx-JQ 7r9 W4Z"
NORMALISED = "KXJQ7R9W4Z"
LAST4 = "9W4Z"
# Every piece longer than the last 4 characters, in any case.
PIECES = {NORMALISED[i:i + 5].lower() for i in range(len(NORMALISED) - 4)} | {RAW.lower(), "kx-jq", "jq 7r9"}


def leaks(text: str) -> list[str]:
    lowered = text.lower()
    return sorted(piece for piece in PIECES if piece in lowered)


def every_stored_value(registry: Registry) -> list[tuple[str, str, str]]:
    """(table, column, value as text) for every non-null value of every table."""
    found = []
    with registry.engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            for row in connection.execute(sa.select(table)).mappings():
                for column, value in row.items():
                    if value is not None:
                        text = json.dumps(value, default=str) if isinstance(value, dict | list) else str(value)
                        found.append((table.name, column, text))
    return found


@pytest.fixture
def recorded(app: Flask, api: Api, registry: Registry, caplog: pytest.LogCaptureFixture) -> dict[str, Any]:
    """Two accounts record the same document (a duplicate), one typo is refused, and a fail is decided."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="sqlalchemy.engine")  # every statement and its parameters
    gateway = registry.meet = FakeMeetGateway()
    desk = staff(app, registry)
    first, second = waiting(api, registry, gateway, "acc-a"), waiting(api, registry, gateway, "acc-b")
    pages = []
    for call_id in (first, second):
        desk.claim(call_id)
        assert desk.record_id(call_id, RAW).status_code == 303
        pages.append(page_text(desk.get(f"/review/sessions/{call_id}")))
    refused = desk.record_id(second, RAW + "#")  # a typo: the page explains, without the number
    assert refused.status_code == 422
    pages.append(page_text(refused))
    attend(registry, second, reviewer=desk.reviewer)
    assert desk.decide(second, "failed", reasons=("suspected_duplicate",)).status_code == 303
    return {"pages": pages}


def test_the_database_holds_only_the_fingerprint_and_last_four(registry: Registry, recorded: dict[str, Any]) -> None:
    values = every_stored_value(registry)
    assert len({table for table, _, _ in values}) >= 8  # the scan really read the database
    assert [(table, column) for table, column, text in values if leaks(text)] == []
    with registry.sessions() as session:
        documents = session.scalars(sa.select(IdentityDocument)).all()
    assert [d.last4 for d in documents] == [LAST4, LAST4]
    assert documents[0].fingerprint == documents[1].fingerprint
    types = {text for table, column, text in values if table == "outbox_events" and column == "type"}
    assert "verification.duplicate_identity_suspected" in types


def test_no_log_line_carries_the_number(recorded: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    records = caplog.get_records("setup")  # the fixture did the work
    messages = [record.getMessage() for record in records]
    assert any("INSERT INTO identity_documents" in message for message in messages), "SQL logging was not captured"
    assert [message for message in messages if leaks(message)] == []
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s %(exc_text)s")
    assert [record.name for record in records if leaks(formatter.format(record))] == []


def test_the_pages_show_only_the_last_four(recorded: dict[str, Any]) -> None:
    for page in recorded["pages"]:
        assert leaks(page) == []
    assert f"ending <strong>{LAST4}</strong>" in recorded["pages"][0]
