"""The suite-wide check (tests/conftest.py, ``database_url``) sees the outbox and can fail."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from tests.support.event_contract import check_emitted_events
from verify_service.accounts.domain import VerificationStatus
from verify_service.accounts.models import Account
from verify_service.webhooks.models import OutboxEvent

NOW = dt.datetime(2026, 11, 22, 10, 5, tzinfo=dt.timezone.utc)


def _write(engine: sa.Engine, event_id: str, data: dict) -> None:
    with engine.begin() as connection:  # straight into the table: what enqueue_event would refuse
        connection.execute(sa.insert(OutboxEvent).values(
            event_id=event_id, account_id="fl-42", seq=data["seq"], type="verification.session.expired", data=data,
            created_at=NOW, next_attempt_at=NOW))


def test_an_event_that_does_not_fit_fails_the_check_naming_it(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        connection.execute(sa.insert(Account).values(id="fl-42", created_at=NOW, updated_at=NOW, restrictions_version=0,
                                                     verification_status=VerificationStatus.NOT_REQUIRED,
                                                     last_event_seq=2))
    session = {"id": "c1", "status": "expired", "attempt": 1, "outcome": None, "scheduled_for": None,
               "started_at": None, "ended_at": "2026-11-22T10:05:00Z"}
    _write(engine, "evt_good", {"account_id": "fl-42", "seq": 1, "session": session, "reason": "not_joined"})
    assert check_emitted_events(engine) == 1
    _write(engine, "evt_bad", {"account_id": "fl-42", "seq": 2, "session": session, "reason": "lead"})
    with pytest.raises(AssertionError, match=r"evt_bad .*\n    data/reason: 'lead' is not one of"):
        check_emitted_events(engine)
    with engine.begin() as connection:  # leave the outbox fit for this test's own teardown check
        connection.execute(sa.delete(OutboxEvent).where(OutboxEvent.event_id == "evt_bad"))
