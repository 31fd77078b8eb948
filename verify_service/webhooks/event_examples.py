"""One example of every outbound event, built from the models (README catalogue, AsyncAPI message examples).

Built by constructing the models, so an example that no longer fits its model fails here, and the
README's catalogue (kept in step by ``tests/unit/test_event_catalogue.py``) changes with the models.
"""

from __future__ import annotations

import json
from typing import Any

from verify_service.webhooks.events import (
    EVENT_MODELS,
    BookedSession,
    Checkpoint,
    Document,
    EventData,
    Hold,
    LiftedHold,
    Restrictions,
    Session,
    Verification,
    VerificationRequest,
)

ACCOUNT = "fl-42"
CALL = "3f2c9a4e-6d1b-4f5e-9a7c-2b8d0e1f4a63"
REQUEST = "b10ae3e0-5c2d-4e8f-a1b9-7d6c3e2f1a05"
PENDING = Hold(id="d36711e9-2a4b-4c8d-9e1f-0a5b6c7d8e9f", kind="verification_pending",
               blocks=["submit_proposals", "change_profile_photo"],
               reason="Identity verification requested (new_account)", placed_at="2026-11-22T09:30:00Z",
               placed_by="account-service")
FAILED_HOLD = Hold(id="7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d", kind="verification_failed",
                   blocks=["submit_proposals", "withdraw_earnings", "accept_direct_hires", "appear_in_search"],
                   reason="Identity verification failed on a video call", placed_at="2026-11-22T10:12:00Z",
                   placed_by="reviewer:7")
OPEN = VerificationRequest(id=REQUEST, reason="new_account", deadline="2026-11-29T09:30:00Z", place_hold=True,
                           status="open", requested_at="2026-11-22T09:30:00Z")
REQUIRED = Verification(status="required", changed_at="2026-11-22T09:30:00Z", request=OPEN)


def _session(status: str, outcome: str | None = None, ended: bool = True) -> Session:
    return Session(id=CALL, status=status, attempt=1, outcome=outcome, scheduled_for=None,  # type: ignore[arg-type]
                   started_at="2026-11-22T09:40:00Z", ended_at="2026-11-22T10:05:00Z" if ended else None)


def _lifted(hold: Hold, at: str, by: str, why: str) -> LiftedHold:
    return LiftedHold(**hold.model_dump(), lifted_at=at, lifted_by=by, lift_reason=why)


def _data() -> list[EventData]:
    """An example of each type, in the table's order (keyword arguments: a typo in a name fails)."""
    models = EVENT_MODELS
    common: dict[str, Any] = {"account_id": ACCOUNT}
    decided = {"restrictions_version": 2, "verification": Verification(
        status="verified", changed_at="2026-11-22T10:05:00Z", request=None)}
    still_open = {"restrictions_version": 2, "verification": REQUIRED}
    return [
        models["verification.required"](**common, seq=1, restrictions_version=1, verification=REQUIRED),
        models["account.hold.placed"](**common, seq=2, hold=PENDING, restrictions_version=1, restrictions=Restrictions(
            version=1, blocked=["submit_proposals", "change_profile_photo"], holds=[PENDING])),
        models["account.hold.lifted"](
            **common, seq=5, hold=_lifted(PENDING, "2026-11-22T10:05:00Z", "reviewer:7",
                                          "Identity verified on a video call"),
            restrictions_version=2, restrictions=Restrictions(version=2, blocked=[], holds=[])),
        models["verification.session.started"](**common, seq=3, session=_session("in_progress", ended=False)),
        models["verification.session.expired"](**common, seq=4, session=_session("expired"), reason="abandoned"),
        models["verification.session.canceled"](**common, seq=4, session=_session("canceled"), by="lead"),
        models["verification.passed"](**common, seq=4, session=_session("completed", "passed"), request_id=REQUEST,
                                      **decided),
        models["verification.failed"](
            **common, seq=4, session=_session("completed", "failed"), reason_codes=["id_mismatch"], request_id=REQUEST,
            restrictions_version=3, verification=Verification(status="failed", changed_at="2026-11-22T10:12:00Z",
                                                              request=None)),
        models["verification.inconclusive"](**common, seq=4, session=_session("completed", "inconclusive"),
                                            reason_codes=["poor_video"], **still_open),
        models["verification.no_show"](**common, seq=4, session=_session("completed", "no_show"), **still_open),
        models["account.proposals.cancel_requested"](**common, seq=7, reason="verification_failed",
                                                     restrictions_version=3),
        models["verification.duplicate_identity_suspected"](
            **common, seq=4, matching_account_id="fl-17", call_session_id=CALL,
            document=Document(type="passport", issuing_country="PT")),
        models["verification.appointment.reminder"](
            **common, seq=2, minutes_before=15, session=BookedSession(
                id=CALL, scheduled_for="2026-11-23T14:00:00Z", meet_uri="https://meet.google.com/abc-mnop-xyz",
                time_zone="Europe/Lisbon", local_time="2026-11-23T14:00:00+00:00")),
        models["audit.checkpoint"](account_id="_audit", seq=12, checkpoint=Checkpoint(
            seq=4031, hash="9c1e5b7f0a2d4c6e8b1f3a5d7c9e0b2d4f6a8c1e3b5d7f9a0c2e4b6d8f1a3c5e",
            at="2026-11-22T11:00:00.000000Z", signature="5e" * 32)),
    ]


def examples() -> dict[str, dict[str, Any]]:
    """Each event type's example ``data``, as the outbox would write it."""
    found = {model.type: model.model_dump(mode="json") for model in _data()}
    missing = set(EVENT_MODELS) - set(found)
    assert not missing, f"no example of {sorted(missing)}"
    return found


def _pretty(value: Any, indent: str = "") -> str:
    """JSON with a value on one line when it fits in 100 columns, else one member per line."""
    flat = json.dumps(value, ensure_ascii=False)
    if len(indent) + len(flat) <= 100 or not isinstance(value, (dict, list)) or not value:
        return flat
    inner = indent + "  "
    if isinstance(value, dict):
        members = [f"{inner}{json.dumps(k)}: {_pretty(v, inner).lstrip()}" for k, v in value.items()]
        return "{\n" + ",\n".join(members) + f"\n{indent}}}"
    return "[\n" + ",\n".join(inner + _pretty(v, inner).lstrip() for v in value) + f"\n{indent}]"


def catalogue() -> str:
    """The README's event catalogue (between its markers): every type, when it is sent, an example ``data``."""
    lines = []
    for event_type, data in examples().items():
        model = EVENT_MODELS[event_type]
        internal = " Internal: not in the AsyncAPI document." if model.internal else ""
        lines += [f"`{event_type}` — {model.__doc__}{internal}", "", "```json",
                  _pretty(data), "```", ""]
    return "\n".join(lines).rstrip("\n") + "\n"
