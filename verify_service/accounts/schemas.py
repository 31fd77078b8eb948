"""Request and response schemas of the accounts API; the OpenAPI document is generated from these."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from email_validator import SPECIAL_USE_DOMAIN_NAMES
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    HttpUrl,
    StrictBool,
    UrlConstraints,
    field_validator,
)

from verify_service.accounts import zones
from verify_service.accounts.bulk import DEFAULT_LIMIT, MAX_LIMIT
from verify_service.accounts.domain import Capability, HoldKind, RequestReason, RequestStatus, VerificationStatus
from verify_service.api.schemas import HeaderModel

ACCOUNT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$"
# IANA zone names this machine knows, listed in the OpenAPI document so that it says exactly what
# is accepted. "localtime" (the server's own zone) and "Factory" (a placeholder) mean nothing for a person.
TIME_ZONES = zones.NAMES

# Domains no one can receive mail at (.test, .local, .invalid ...): EmailStr refuses them, and the
# document says so, as a pattern of what is *not* accepted (any letter case, as the domain is compared).
_ANY_CASE = "|".join("".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in name)
                     for name in SPECIAL_USE_DOMAIN_NAMES)
EMAIL_SCHEMA = {"not": {"pattern": f"[@.]({_ANY_CASE})$"},
                "description": "An address people can receive mail at: special-use domains such as `.test`, "
                               "`.local` or `.invalid` are refused."}

# Not only spaces, and no NUL (U+0000): PostgreSQL text cannot hold it (it was a 500 there).
NAME_PATTERN = r"^[^\x00]*[^\x00 \t\n\r\f\v][^\x00]*$"
# What HttpUrl takes beyond "format: uri": the http or https scheme, and a host.
HTTP_URL_PATTERN = r"^[hH][tT][tT][pP][sS]?://([^/?#@]*@)?[^/?#@:]"
# The column's size. Input is held to less: normalising may lengthen a URL ("http://a" -> "http://a/").
PHOTO_URL_MAX = 2048


def _stored_url_fits(value: HttpUrl) -> HttpUrl:
    if len(str(value)) > PHOTO_URL_MAX:
        raise ValueError(f"must be at most {PHOTO_URL_MAX} characters once normalised")
    return value


def _text_only(value: Any) -> Any:
    # Pydantic would also read a number as seconds since the epoch; the document says "a date-time string".
    if isinstance(value, (str, dt.datetime)):
        return value
    raise ValueError("must be a date-time string with a time zone, e.g. 2026-11-29T12:00:00Z")


def _fits_in_utc(value: dt.datetime) -> dt.datetime:
    # "9999-12-31T23:59:59-12:00" is a valid date-time, but past the last one Python holds once in UTC.
    try:
        value.astimezone(dt.timezone.utc)
    except OverflowError as exc:
        raise ValueError("is out of range (years 1 to 9999 in UTC)") from exc
    return value


# A date-time with a time zone, given as text (RFC 3339), that can be stored (in UTC).
DateTimeText = Annotated[AwareDatetime, BeforeValidator(_text_only), AfterValidator(_fits_in_utc)]


class AccountPath(BaseModel):
    account_id: str = Field(pattern=ACCOUNT_ID_PATTERN, description="The account service's id of the account.")


class ProfileIn(BaseModel):
    """The profile snapshot a reviewer confirms during the call."""

    # No whitespace stripping: the document's lengths and patterns then hold for the text as sent.
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, pattern=NAME_PATTERN,
                      description="Name as shown on the profile (not only spaces; no NUL characters).")
    email: EmailStr = Field(json_schema_extra=EMAIL_SCHEMA)
    country: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2 country code, e.g. `DE`.")
    photo_url: Annotated[HttpUrl, UrlConstraints(max_length=2000), AfterValidator(_stored_url_fits),
                         Field(json_schema_extra={"pattern": HTTP_URL_PATTERN})] | None = Field(
        None, description="The profile photo the reviewer compares with: an http(s) URL with a host.")
    timezone: Annotated[str, Field(max_length=64, json_schema_extra={"enum": sorted(TIME_ZONES)})] | None = Field(
        None, description="IANA time zone, e.g. `Europe/Berlin`.")
    locale: str | None = Field(None, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$", max_length=35,
                               description="BCP 47 language tag, e.g. `en-GB`.")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value not in TIME_ZONES:
            raise ValueError(f"unknown time zone {value!r}")
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
    deadline: DateTimeText | None = Field(
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


class BlockedQuery(HeaderModel):
    """The query of the bulk restrictions list.

    A HeaderModel for its schema built once: flask-openapi3 asks a query model for it on every
    request as it does a header model, and building it anew cost a tenth of a page's time.
    """

    blocked: Capability | None = Field(None, description="Only the accounts that block this capability.")
    after: str | None = Field(None, pattern=ACCOUNT_ID_PATTERN,
                              description="A `next_cursor`: the page starts after this account id.")
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Accounts per page.")


class BlockedEntryOut(BaseModel):
    account_id: str
    version: int = Field(description="The account's restrictions version; `blocked` is the document's at it.")
    blocked: list[Capability] = Field(min_length=1, description="The union of what the active holds block, "
                                                                "in the same order as the account's document.")


class BlockedPageOut(BaseModel):
    """Blocked accounts by account id; follow `next_cursor` while `has_more`."""

    data: list[BlockedEntryOut]
    next_cursor: str | None = Field(description="The last account id of this page (the `after` sent when the page "
                                                "is empty; null then if none was sent).")
    has_more: bool = Field(description="Whether more blocked accounts follow this page.")
