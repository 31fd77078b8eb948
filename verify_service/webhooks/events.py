"""The outbound events' models: the one definition of every event's ``data``.

``outbox.enqueue_event`` validates each event against its type's model and stores only what the
model dumps, so an event that does not fit is refused when it is written, never sent. The AsyncAPI
document (``GET /api/v1/asyncapi.json``, :mod:`verify_service.webhooks.asyncapi`) and the README's
catalogue ("Events to the account service") are generated from these models.

Two kinds of empty field, both as the producers have always written them: a field that is part of
the event but has no value now (a session not started yet) is written as ``null``; a field that only
some events of a type carry (``reason_codes``, ``simulated``, the closure's snapshot on a canceled
session) is left out when it has no value. The first kind has no default; the second is declared with
:func:`absent`.

The value lists repeat the enums of the packages above this one (``accounts``, ``calls``, ``review``),
which the outbox may not import (docs/architecture.md, "Layers and packages");
``tests/unit/test_event_models.py`` fails when one of them differs from its enum.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer
from pydantic.json_schema import JsonDict, SkipJsonSchema

# Times as the producers write them: UTC, ISO 8601, "Z", microseconds only when there are any.
UTC_TIME_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{6})?Z$"
UtcTime = Annotated[str, Field(pattern=UTC_TIME_PATTERN, json_schema_extra={"format": "date-time"})]
LocalTime = Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{6})?[+-]\d{2}:\d{2}$",
                                 json_schema_extra={"format": "date-time"})]

# A marketplace account's id (the API's accounts.schemas.ACCOUNT_ID_PATTERN): never a system account's "_…".
ACCOUNT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$"

Capability = Literal["submit_proposals", "withdraw_earnings", "accept_direct_hires", "appear_in_search",
                     "change_profile_photo"]
HoldKind = Literal["verification_pending", "verification_failed", "manual"]
VerificationStatus = Literal["not_required", "required", "verified", "failed"]
RequestReason = Literal["new_account", "risk_signal", "profile_change", "manual"]
RequestStatus = Literal["open", "passed", "failed", "canceled"]
SessionStatus = Literal["scheduled", "waiting", "in_progress", "awaiting_second_review", "completed", "expired",
                        "canceled"]
Outcome = Literal["passed", "failed", "inconclusive", "no_show"]
ReasonCode = Literal["id_mismatch", "profile_mismatch", "document_not_shown", "document_expired", "poor_video",
                     "refused_camera", "suspected_duplicate", "connection_failed", "other"]
DocumentType = Literal["passport", "national_id", "driving_licence", "residence_permit", "other"]


def _no_default(schema: JsonDict) -> None:
    schema.pop("default", None)  # "absent", not a null the consumer would see


def absent(description: str, **constraints: Any) -> Any:
    """A field some events of a type leave out: optional, never written as ``null``."""
    return Field(None, description=description, json_schema_extra=_no_default, **constraints)


class Part(BaseModel):
    """A model of (part of) an event: closed, strict, and dumped without its absent fields."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    @model_serializer(mode="wrap")
    def _leave_out_absent(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = handler(self)
        fields = type(self).model_fields
        return {name: value for name, value in data.items() if value is not None or fields[name].is_required()}


# ---------------------------------------------------------------- shared parts

class Hold(Part):
    """An active hold, as in the restrictions document."""

    id: str = Field(description="The hold's id")
    kind: HoldKind = Field(description="verification_pending, verification_failed (fixed capabilities) or manual")
    blocks: list[Capability] = Field(description="What it blocks, in canonical order")
    reason: str = Field(description="Why it was placed (free text for people)")
    placed_at: UtcTime = Field(description="When it was placed (UTC)")
    placed_by: str = Field(description="Who placed it: account-service, system, reviewer:<id>, …")


class LiftedHold(Hold):
    """A hold that was just lifted: the active hold's fields and the lift."""

    lifted_at: UtcTime = Field(description="When it was lifted (UTC)")
    lifted_by: str = Field(description="Who lifted it")
    lift_reason: str = Field(description="Why it was lifted")


class Restrictions(Part):
    """The restrictions snapshot: what GET /api/v1/accounts/{id}/restrictions returns at this version."""

    version: int = Field(ge=1, description="The restrictions_version this snapshot is of")
    blocked: list[Capability] = Field(description="The union of the active holds' capabilities, in canonical order")
    holds: list[Hold] = Field(description="The active holds")


class VerificationRequest(Part):
    """The account's open verification request."""

    id: str = Field(description="The request's id")
    reason: RequestReason = Field(description="Why verification was asked for")
    deadline: UtcTime | None = Field(description="When a verification_pending hold is placed if still open")
    place_hold: bool = Field(description="Whether a verification_pending hold was asked for at once")
    status: RequestStatus = Field(description="Always open here: a closed request is not the open one")
    requested_at: UtcTime = Field(description="When it was asked for (UTC)")


class Verification(Part):
    """The account's verification status and its open request, as in the restrictions document."""

    status: VerificationStatus = Field(description="The account's verification status")
    changed_at: UtcTime | None = Field(description="When the status last changed (null: never)")
    request: VerificationRequest | None = Field(description="The open request (null: none is open)")


class Session(Part):
    """A verification call (ids, status and times; no personal data)."""

    id: str = Field(description="The call session's id")
    status: SessionStatus = Field(description="The call's status after this event")
    attempt: int = Field(ge=1, description="Which call of its request this is (1, 2, …)")
    outcome: Outcome | None = Field(description="The reviewer's decision (null: none yet)")
    scheduled_for: UtcTime | None = Field(description="The booked time (null: the call was taken at once)")
    started_at: UtcTime | None = Field(description="When it went in progress (null: never)")
    ended_at: UtcTime | None = Field(description="When it ended (null: not over)")


class BookedSession(Part):
    """A booked call, as a reminder states it."""

    id: str = Field(description="The call session's id")
    scheduled_for: UtcTime = Field(description="The booked time (UTC)")
    meet_uri: str | None = Field(description="The Meet link (null: the meeting is not created yet)")
    time_zone: str | None = Field(description="The profile's time zone, canonical name (null: none known)")
    local_time: LocalTime | None = Field(description="scheduled_for in time_zone, with its offset (null: no zone)")


class Document(Part):
    """The kind of ID document shown on the call (never its number)."""

    type: DocumentType = Field(description="The kind of document")
    issuing_country: str = Field(pattern=r"^[A-Z]{2}$", description="Its issuing country (ISO 3166-1 alpha-2)")


class Checkpoint(Part):
    """The audit chain's head, signed."""

    seq: int = Field(ge=1, description="The audit entry the checkpoint signs")
    hash: str = Field(description="That entry's hash")
    at: UtcTime = Field(description="When it was signed (UTC)")
    signature: str = Field(pattern=r"^[0-9a-f]{64}$", description="HMAC-SHA256 (hex) under the checkpoint key")


# ---------------------------------------------------------------- events

class EventData(Part):
    """What every event's data carries."""

    type: ClassVar[str]
    internal: ClassVar[bool] = False  # True: not part of the published contract (left out of the AsyncAPI document)

    account_id: str = Field(pattern=ACCOUNT_ID_PATTERN, description="The account the event is about")
    seq: int = Field(ge=1, description="The event's number on its account: 1, 2, 3 … with no gaps")
    simulated: Literal[True] | SkipJsonSchema[None] = absent(
        "Present, and true, only on events a simulation made (POST /api/v1/simulations/…)")


RESTRICTIONS_VERSION = "The restrictions_version this change produced"
VERIFICATION = "The account's verification after this change"
REASON_CODES = "The reviewer's reasons, in the catalogue's order (left out when there are none)"


class VerificationRequired(EventData):
    """A verification request is created, or its deadline or hold changes."""

    type = "verification.required"
    restrictions_version: int = Field(ge=1, description=RESTRICTIONS_VERSION)
    verification: Verification = Field(description=VERIFICATION)


class SessionStarted(EventData):
    """A call goes in progress: the first of a reviewer's claim or the freelancer joining; once per call."""

    type = "verification.session.started"
    session: Session = Field(description="The call")


class SessionExpired(EventData):
    """Nobody joined in time (not_joined), or everybody left a call in progress without a decision (abandoned)."""

    type = "verification.session.expired"
    session: Session = Field(description="The call")
    reason: Literal["not_joined", "abandoned"] = Field(description="Why it expired")


class SessionCanceled(EventData):
    """The freelancer canceled or left the queue (freelancer), the account closed, or a lead canceled the call."""

    type = "verification.session.canceled"
    session: Session = Field(description="The call")
    by: Literal["freelancer", "account_closed", "lead"] = Field(description="Who or what canceled it")
    restrictions_version: int | SkipJsonSchema[None] = absent(
        RESTRICTIONS_VERSION + " (only on closure: the open request is canceled in that change)", ge=1)
    verification: Verification | SkipJsonSchema[None] = absent(VERIFICATION + " (only on closure)")


class Passed(EventData):
    """A pass, or a fail a lead overturned."""

    type = "verification.passed"
    session: Session = Field(description="The call")
    request_id: str | None = Field(description="The request the pass closed (null: none was open)")
    restrictions_version: int = Field(ge=1, description=RESTRICTIONS_VERSION)
    verification: Verification = Field(description=VERIFICATION)


class Failed(EventData):
    """A fail becomes final: confirmed by a lead (or at once without four eyes), or a sampled pass overturned."""

    type = "verification.failed"
    session: Session = Field(description="The call")
    reason_codes: list[ReasonCode] | SkipJsonSchema[None] = absent(REASON_CODES, min_length=1)
    request_id: str | None = Field(description="The request the fail closed (null: none was open)")
    restrictions_version: int = Field(ge=1, description=RESTRICTIONS_VERSION)
    verification: Verification = Field(description=VERIFICATION)


class _RequestStaysOpen(EventData):
    """The fields of a decision that leaves the request open (an inconclusive call, a no show)."""

    session: Session = Field(description="The call")
    reason_codes: list[ReasonCode] | SkipJsonSchema[None] = absent(REASON_CODES, min_length=1)
    restrictions_version: int = Field(ge=1, description=RESTRICTIONS_VERSION)
    verification: Verification = Field(description=VERIFICATION)


class Inconclusive(_RequestStaysOpen):
    """The call could not decide; the request stays open for another call."""

    type = "verification.inconclusive"


class NoShow(_RequestStaysOpen):
    """The reviewer waited and the freelancer never came; the request stays open."""

    type = "verification.no_show"


class HoldPlaced(EventData):
    """A hold is placed."""

    type = "account.hold.placed"
    hold: Hold = Field(description="The hold placed")
    restrictions_version: int = Field(ge=1, description=RESTRICTIONS_VERSION)
    restrictions: Restrictions = Field(description="The whole restrictions snapshot after this change")


class HoldLifted(EventData):
    """A hold is lifted."""

    type = "account.hold.lifted"
    hold: LiftedHold = Field(description="The hold lifted")
    restrictions_version: int = Field(ge=1, description=RESTRICTIONS_VERSION)
    restrictions: Restrictions = Field(description="The whole restrictions snapshot after this change")


class ProposalsCancelRequested(EventData):
    """A fail becomes final: cancel the freelancer's active proposals."""

    type = "account.proposals.cancel_requested"
    reason: Literal["verification_failed"] = Field(description="Why")
    restrictions_version: int = Field(ge=1, description=RESTRICTIONS_VERSION)


class DuplicateIdentitySuspected(EventData):
    """An ID document shown on a call is already on another account (once per pair of accounts)."""

    type = "verification.duplicate_identity_suspected"
    matching_account_id: str = Field(pattern=ACCOUNT_ID_PATTERN, description="The other account with the same document")
    call_session_id: str = Field(description="The call the document was shown on")
    document: Document = Field(description="The document's kind and country")


class AppointmentReminder(EventData):
    """Before a booked call (24 h and 15 min by default: VERIFY_REMINDER_MINUTES)."""

    type = "verification.appointment.reminder"
    session: BookedSession = Field(description="The booked call")
    minutes_before: int = Field(ge=1, description="Which reminder this is: minutes before the call")


class AuditCheckpoint(EventData):
    """The audit chain's head moved (hourly), or `verify-service audit checkpoint`; on the system account _audit."""

    type = "audit.checkpoint"
    internal = True
    account_id: Literal["_audit"] = Field(description="Always the reserved system account _audit")  # type: ignore[assignment]
    checkpoint: Checkpoint = Field(description="The signed head")


# The table of every outbound event type (outbox.EVENT_TYPES is its keys), in the README's order.
EVENT_MODELS: dict[str, type[EventData]] = {model.type: model for model in (
    VerificationRequired, HoldPlaced, HoldLifted, SessionStarted, SessionExpired, SessionCanceled, Passed, Failed,
    Inconclusive, NoShow, ProposalsCancelRequested, DuplicateIdentitySuspected, AppointmentReminder, AuditCheckpoint,
)}
PUBLIC_EVENT_MODELS: dict[str, type[EventData]] = {t: m for t, m in EVENT_MODELS.items() if not m.internal}
