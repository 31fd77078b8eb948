"""Schemas shared by every API operation: problems and common headers."""

from __future__ import annotations

import functools
import json
from typing import Any

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


class HeaderModel(BaseModel):
    """The headers an operation reads.

    flask-openapi3 asks a header model for its JSON schema on every request it
    validates, and pydantic builds the schema anew each time: more work than the
    rest of a fast request (the restrictions lookup). A class's schema never
    changes, so it is built once per class and arguments; callers get a fresh
    copy (parsed from the kept JSON text: far cheaper than a deep copy).
    """

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        schema: dict[str, Any] = json.loads(_header_schema(cls, args, tuple(sorted(kwargs.items()))))
        return schema


@functools.cache
def _header_schema(model: type[HeaderModel], args: tuple[Any, ...], kwargs: tuple[tuple[str, Any], ...]) -> str:
    return json.dumps(super(HeaderModel, model).model_json_schema(*args, **dict(kwargs)))


class IdempotencyHeaders(HeaderModel):
    idempotency_key: str | None = Field(
        None, alias="Idempotency-Key", min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$",
        description="Repeat a POST safely: the same key with the same body replays the first response; "
                    "with a different body it is refused with 409. Keys are kept for 24 hours.",
    )


class ConditionalHeaders(HeaderModel):
    if_none_match: str | None = Field(
        None, alias="If-None-Match", max_length=1000,
        description="The ETag of a previous response: an unchanged document answers 304 Not Modified.",
    )


# Standard error responses, for the `responses=` of every authenticated operation.
PROBLEMS = {400: Problem, 401: Problem, 404: Problem, 415: Problem, 422: Problem}
