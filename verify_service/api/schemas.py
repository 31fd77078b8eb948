"""Schemas shared by every API operation: problems and common headers."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from verify_service.errors import PROBLEM_MEDIA_TYPE


class FieldErrorOut(BaseModel):
    field: str = Field(description="Where the problem is, e.g. `deadline` or `header.Idempotency-Key`.")
    message: str


class Problem(BaseModel):
    """An RFC 9457 problem document; `code` is stable and meant for programs."""

    model_config = ConfigDict(
        openapi_extra={"content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}},
    )

    type: str
    title: str
    status: int
    detail: str
    code: str
    instance: str | None = None
    errors: list[FieldErrorOut] | None = None


class IdempotencyHeaders(BaseModel):
    idempotency_key: str | None = Field(
        None, alias="Idempotency-Key", min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$",
        description="Repeat a POST safely: the same key with the same body replays the first response; "
                    "with a different body it is refused with 409. Keys are kept for 24 hours.",
    )


class ConditionalHeaders(BaseModel):
    if_none_match: str | None = Field(
        None, alias="If-None-Match", max_length=1000,
        description="The ETag of a previous response: an unchanged document answers 304 Not Modified.",
    )


# Standard error responses, for the `responses=` of every authenticated operation.
PROBLEMS = {400: Problem, 401: Problem, 404: Problem, 415: Problem, 422: Problem}
