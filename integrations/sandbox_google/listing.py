"""List helpers shared by the emulated APIs: Google's filter subset, page tokens, timestamps."""

from __future__ import annotations

import base64
import datetime as dt
import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from integrations.sandbox_google.errors import invalid

T = TypeVar("T")

# One comparison per clause, clauses joined by AND: `space.name = "spaces/x"`, `end_time IS NULL`.
_CLAUSE = re.compile(r'^\s*([a-z_.]+)\s*(?:(=|!=|>=|<=|>|<)\s*"([^"]*)"|IS\s+(NOT\s+)?NULL)\s*$')
_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b, "!=": lambda a, b: a != b, ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, "<": lambda a, b: a < b,
}

# A filter field: how to read it from an item, and whether it is a timestamp.
Field = tuple[Callable[[Any], Any], bool]


def timestamp(value: dt.datetime) -> str:
    """RFC 3339 in UTC with ``Z``, with 0, 3 or 6 fractional digits as proto3 JSON writes them."""
    value = value.astimezone(dt.timezone.utc)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond % 1000 == 0 and value.microsecond:
        text += f".{value.microsecond // 1000:03d}"
    elif value.microsecond:
        text += f".{value.microsecond:06d}"
    return text + "Z"


def parse_time(text: str) -> dt.datetime:
    """An RFC 3339 timestamp with an offset.

    Raises:
        ValueError: not one.
    """
    value = dt.datetime.fromisoformat(text.replace("z", "Z"))
    if value.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone offset")
    return value


def apply_filter(items: Sequence[T], text: str | None, fields: dict[str, Field]) -> list[T]:
    """Keep the items ``text`` selects (the subset of Google's list filter the emulator knows).

    Raises:
        MeetApiError: INVALID_ARGUMENT for a filter it cannot parse or a field it does not know.
    """
    if not text or not text.strip():
        return list(items)
    tests = [_clause(part, fields) for part in re.split(r"\s+AND\s+", text.strip())]
    return [item for item in items if all(test(item) for test in tests)]


def _clause(text: str, fields: dict[str, Field]) -> Callable[[Any], bool]:
    match = _CLAUSE.match(text)
    if not match or match.group(1) not in fields:
        raise invalid(f"Invalid filter: {text.strip()!r} (the sandbox knows "
                      f"{', '.join(sorted(fields))} with =, !=, <, <=, >, >=, IS NULL and AND)")
    name, operator, literal, negated = match.groups()
    read, is_time = fields[name]
    if operator is None:
        return (lambda item: read(item) is not None) if negated else (lambda item: read(item) is None)
    wanted: Any = literal
    if is_time:
        try:
            wanted = parse_time(literal)
        except ValueError:
            raise invalid(f"Invalid filter: {literal!r} is not an RFC 3339 timestamp") from None
    compare = _OPERATORS[operator]
    return lambda item: (value := read(item)) is not None and compare(value, wanted)


def page(items: Sequence[T], page_size: str | None, page_token: str | None, *,
         default: int, maximum: int) -> tuple[list[T], str | None]:
    """One page of ``items`` and the token for the next (``None`` on the last page).

    Raises:
        MeetApiError: INVALID_ARGUMENT for a negative size or a token this list did not issue.
    """
    try:
        size = int(page_size) if page_size else 0
    except ValueError:
        raise invalid(f"Invalid value for page_size: {page_size!r}") from None
    if size < 0:
        raise invalid("page_size must not be negative")
    size = min(size or default, maximum)
    start = _offset(page_token) if page_token else 0
    end = start + size
    return list(items[start:end]), (_token(end) if end < len(items) else None)


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"sandbox:{offset}".encode()).decode().rstrip("=")


def _offset(token: str) -> int:
    try:
        prefix, _, number = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode().partition(":")
        if prefix != "sandbox":
            raise ValueError(token)
        return int(number)
    except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
        raise invalid("Invalid page token") from None
