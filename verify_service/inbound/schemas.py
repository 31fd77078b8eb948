"""Bodies of the account service's webhooks: ``{type, timestamp, data}``.

Unlike the REST API, these models ignore fields they do not know: the
account service may add fields to its events, and a webhook that is refused
for that would be retried for days. Fields we do know are checked as
strictly as the API checks them (the profile fields are the API's own).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from verify_service.accounts.schemas import ACCOUNT_ID_PATTERN, DateTimeText, ProfileIn, VerificationRequestIn
from verify_service.errors import MalformedRequest

IGNORE_UNKNOWN = ConfigDict(extra="ignore")


class Envelope(BaseModel):
    """Any event, known type or not."""

    model_config = IGNORE_UNKNOWN

    # The length fits the receipts table, which keeps the type of every event (and PostgreSQL text holds no NUL).
    type: str = Field(min_length=1, max_length=100, pattern=r"^[^\x00]+$")
    timestamp: DateTimeText = Field(description="When the account service emitted the event.")
    data: dict[str, Any]


class AccountUpsertedData(ProfileIn):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    account_id: str = Field(pattern=ACCOUNT_ID_PATTERN)


class VerificationRequestedData(VerificationRequestIn):
    model_config = IGNORE_UNKNOWN

    account_id: str = Field(pattern=ACCOUNT_ID_PATTERN)


class AccountClosedData(BaseModel):
    model_config = IGNORE_UNKNOWN

    account_id: str = Field(pattern=ACCOUNT_ID_PATTERN)


class AccountUpserted(Envelope):
    type: Literal["account.upserted"]
    data: AccountUpsertedData  # type: ignore[assignment]


class VerificationRequested(Envelope):
    type: Literal["verification.requested"]
    data: VerificationRequestedData  # type: ignore[assignment]


class AccountClosed(Envelope):
    type: Literal["account.closed"]
    data: AccountClosedData  # type: ignore[assignment]


KNOWN_EVENTS: dict[str, type[Envelope]] = {
    "account.upserted": AccountUpserted,
    "verification.requested": VerificationRequested,
    "account.closed": AccountClosed,
}


def parse_event(raw: bytes) -> Envelope:
    """The event in ``raw``: an instance of a ``KNOWN_EVENTS`` model, or a plain :class:`Envelope`.

    Raises:
        MalformedRequest: ``raw`` is not JSON.
        pydantic.ValidationError: the JSON is not an event of the expected shape
            (error locations name the field, e.g. ``data.email``).
    """
    try:
        payload = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
        raise MalformedRequest(f"the body is not valid JSON: {exc}") from exc
    envelope = Envelope.model_validate(payload)
    model = KNOWN_EVENTS.get(envelope.type)
    return envelope if model is None else model.model_validate(payload)
