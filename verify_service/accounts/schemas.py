"""Request and response schemas of the accounts API; the OpenAPI document is generated from these."""

from __future__ import annotations

import zoneinfo

from pydantic import AwareDatetime, BaseModel, ConfigDict, EmailStr, Field, HttpUrl, StrictBool, field_validator

from verify_service.accounts.domain import Capability, HoldKind, RequestReason, RequestStatus, VerificationStatus

ACCOUNT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$"


class AccountPath(BaseModel):
    account_id: str = Field(pattern=ACCOUNT_ID_PATTERN, description="The account service's id of the account.")


class ProfileIn(BaseModel):
    """The profile snapshot a reviewer confirms during the call."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=200, description="Name as shown on the profile.")
    email: EmailStr
    country: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2 country code, e.g. `DE`.")
    photo_url: HttpUrl | None = Field(None, description="The profile photo the reviewer compares with.")
    timezone: str | None = Field(None, max_length=64, description="IANA time zone, e.g. `Europe/Berlin`.")
    locale: str | None = Field(None, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$", max_length=35,
                               description="BCP 47 language tag, e.g. `en-GB`.")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


class AccountOut(BaseModel):
    account_id: str
    name: str | None
    email: str | None
    country: str | None
    photo_url: str | None
    timezone: str | None
    locale: str | None
    verification_status: VerificationStatus
    restrictions_version: int
    created_at: AwareDatetime
    updated_at: AwareDatetime


class VerificationRequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: RequestReason
    deadline: AwareDatetime | None = Field(
        None, description="When verification must be done by (with a time zone). Must be in the future; "
                          "once it passes without a pass, the pending hold is placed.")
    place_hold: StrictBool = Field(False, description="Place the `verification_pending` hold now.")


class HoldOut(BaseModel):
    id: str
    kind: HoldKind
    blocks: list[Capability]
    reason: str
    placed_at: AwareDatetime
    placed_by: str


class VerificationRequestOut(BaseModel):
    id: str
    reason: RequestReason
    deadline: AwareDatetime | None
    place_hold: bool
    status: RequestStatus
    requested_at: AwareDatetime


class VerificationOut(BaseModel):
    status: VerificationStatus
    changed_at: AwareDatetime | None
    request: VerificationRequestOut | None = Field(description="The open verification request, if any.")


class RestrictionsOut(BaseModel):
    """What the account may not do right now. Work on existing contracts is never blocked."""

    model_config = ConfigDict(openapi_extra={"headers": {
        "ETag": {"description": "The restrictions version, quoted; send it back in If-None-Match.",
                 "schema": {"type": "string"}},
    }})

    account_id: str
    version: int = Field(description="Grows by one with every change to this document.")
    blocked: list[Capability] = Field(description="The union of what the active holds block.")
    holds: list[HoldOut]
    verification: VerificationOut


class VerificationRequestResult(BaseModel):
    request: VerificationRequestOut
    created: bool = Field(description="False when an open request already existed and was kept.")
    restrictions: RestrictionsOut
