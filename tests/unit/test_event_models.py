"""The outbound events' models: one per type, the vocabularies of the packages that make them, strict."""

from __future__ import annotations

import copy
import datetime as dt
import json
from dataclasses import dataclass
from typing import get_args

import pydantic
import pytest

from tests.support.event_contract import validators
from verify_service.accounts.domain import (
    Capability,
    HoldKind,
    RequestReason,
    RequestStatus,
    VerificationStatus,
)
from verify_service.accounts.schemas import ACCOUNT_ID_PATTERN
from verify_service.calls.state import EndReason, Outcome, SessionStatus
from verify_service.review.models import DocumentType
from verify_service.review.reasons import REASONS
from verify_service.webhooks import events
from verify_service.webhooks.event_examples import examples
from verify_service.webhooks.outbox import EVENT_TYPES, SIMULATED, enqueue_event, simulating

NOW = dt.datetime(2026, 11, 22, 10, 5, tzinfo=dt.timezone.utc)


@dataclass
class Stream:
    """An account row as far as the outbox needs one."""

    id: str
    last_event_seq: int = 0


class Recorder:
    """A stand-in for the database session: keeps what the outbox adds."""

    def __init__(self) -> None:
        self.added: list[object] = []

    def add(self, row: object) -> None:
        self.added.append(row)


def _enqueue(event_type: str, data: dict, stream: Stream | None = None) -> tuple[Recorder, Stream]:
    db, stream = Recorder(), stream or Stream("fl-42", 3)
    enqueue_event(db, stream, event_type, data, now=NOW)  # type: ignore[arg-type]
    return db, stream


def _data_of(event_type: str) -> dict:
    """The example's data without the envelope enqueue_event adds."""
    data = copy.deepcopy(examples()[event_type])
    del data["account_id"], data["seq"]
    return data


def test_event_types_are_the_model_table() -> None:
    assert EVENT_TYPES == frozenset(events.EVENT_MODELS)
    assert all(model.type == event_type for event_type, model in events.EVENT_MODELS.items())
    assert set(events.EVENT_MODELS) - set(events.PUBLIC_EVENT_MODELS) == {"audit.checkpoint"}


@pytest.mark.parametrize(("literal", "values"), [
    (events.Capability, [c.value for c in Capability]),
    (events.HoldKind, [k.value for k in HoldKind]),
    (events.VerificationStatus, [s.value for s in VerificationStatus]),
    (events.RequestReason, [r.value for r in RequestReason]),
    (events.RequestStatus, [s.value for s in RequestStatus]),
    (events.SessionStatus, [s.value for s in SessionStatus]),
    (events.Outcome, [o.value for o in Outcome]),
    (events.ReasonCode, list(REASONS)),
    (events.DocumentType, [d.value for d in DocumentType]),
], ids=["capability", "hold_kind", "verification_status", "request_reason", "request_status", "session_status",
        "outcome", "reason_code", "document_type"])
def test_the_value_lists_are_the_enums_of_the_producers(literal: object, values: list[str]) -> None:
    assert list(get_args(literal)) == values


def test_account_ids_are_the_apis() -> None:
    assert events.ACCOUNT_ID_PATTERN == ACCOUNT_ID_PATTERN
    assert list(events.AuditCheckpoint.model_fields)[:2] == ["account_id", "seq"]


def test_end_reasons_are_split_between_expired_and_canceled() -> None:
    expired = get_args(events.SessionExpired.model_fields["reason"].annotation)
    canceled = get_args(events.SessionCanceled.model_fields["by"].annotation)
    assert sorted(expired + canceled) == sorted(r.value for r in EndReason)


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_enqueue_stores_what_the_model_dumps_with_the_next_seq(event_type: str) -> None:
    db, stream = _enqueue(event_type, _data_of(event_type), Stream(examples()[event_type]["account_id"], 3))
    [row] = db.added
    assert stream.last_event_seq == 4
    assert row.data == {**examples()[event_type], "seq": 4}  # type: ignore[attr-defined]
    assert list(row.data) == list(examples()[event_type])  # the producers' key order  # type: ignore[attr-defined]
    assert "simulated" not in row.data  # type: ignore[attr-defined]


@pytest.mark.parametrize(("event_type", "change"), [
    ("verification.session.expired", {"reason": "lead"}),                      # a canceled reason on an expiry
    ("verification.session.started", {"extra": 1}),                            # a field no model has
    ("account.hold.placed", {"restrictions_version": "2"}),                    # a string for a number
    ("verification.failed", {"reason_codes": ["because"]}),                    # an unknown reason code
    ("verification.failed", {"reason_codes": []}),                             # present but empty
    ("verification.passed", {"request_id": None, "verification": None}),       # a required part null
    ("verification.required", {"verification": {"status": "required"}}),       # a part without its fields
], ids=["wrong-literal", "extra-field", "lax-number", "unknown-code", "empty-codes", "null-part", "missing-fields"])
def test_an_event_that_does_not_fit_raises_and_writes_nothing(event_type: str, change: dict) -> None:
    db, stream = Recorder(), Stream("fl-42", 3)
    with pytest.raises(pydantic.ValidationError):
        enqueue_event(db, stream, event_type, {**_data_of(event_type), **change}, now=NOW)  # type: ignore[arg-type]
    assert db.added == [] and stream.last_event_seq == 3


def test_a_time_in_another_format_is_refused() -> None:
    data = _data_of("verification.session.started")
    data["session"]["started_at"] = "2026-11-22T09:40:00+00:00"  # the producers always write Z
    with pytest.raises(pydantic.ValidationError, match="started_at"):
        _enqueue("verification.session.started", data)


def test_an_unknown_type_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown outbound event type"):
        _enqueue("verification.maybe", {})


def test_fields_some_events_leave_out_are_absent_not_null() -> None:
    lead_cancel = _data_of("verification.session.canceled")
    db, _ = _enqueue("verification.session.canceled", lead_cancel)
    assert "restrictions_version" not in db.added[0].data  # type: ignore[attr-defined]
    assert "reason_codes" not in examples()["verification.no_show"]
    assert examples()["verification.session.started"]["session"]["ended_at"] is None  # always there, may be null


def test_simulating_marks_the_events_enqueued_inside_it_only() -> None:
    assert SIMULATED.get() is False
    with simulating():
        db, _ = _enqueue("verification.no_show", _data_of("verification.no_show"))
    after, _ = _enqueue("verification.no_show", _data_of("verification.no_show"))
    assert db.added[0].data["simulated"] is True  # type: ignore[attr-defined]
    assert "simulated" not in after.added[0].data and SIMULATED.get() is False  # type: ignore[attr-defined]
    body = {"type": "verification.no_show", "timestamp": "2026-11-22T10:05:00Z", "data": db.added[0].data}  # type: ignore[attr-defined]
    assert validators()["verification.no_show"](body) == []
    assert validators()["verification.no_show"]({**body, "data": {**body["data"], "simulated": False}}) != []


def test_every_model_is_closed_and_every_field_described() -> None:
    schema = json.dumps(pydantic.json_schema.models_json_schema(
        [(m, "validation") for m in events.EVENT_MODELS.values()])[1])
    for model in {m for e in events.EVENT_MODELS.values() for m in e.__mro__ if isinstance(m, type)
                  and issubclass(m, events.Part) and m is not events.Part}:
        assert model.model_config.get("extra") == "forbid", model
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"
    assert '"default": null' not in schema  # absent fields are not advertised as null
