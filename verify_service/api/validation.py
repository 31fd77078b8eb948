"""Request validation errors (pydantic) as problem+json naming each field."""

from __future__ import annotations

from flask import Response
from pydantic import ValidationError

from verify_service.errors import FieldError, InvalidInput, Problem, problem_response


def _field(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "body"


def problem_from_validation_error(error: ValidationError) -> Response:
    errors = [FieldError(_field(e["loc"]), e["msg"]) for e in error.errors(include_url=False)]
    detail = "; ".join(f"{e.field}: {e.message}" for e in errors[:5])
    return problem_response(Problem(InvalidInput.status, InvalidInput.code, InvalidInput.title, detail, errors))
