"""Request bodies checked against the discovery documents ``google-api-python-client`` ships.

Google's JSON parser rejects unknown field names and enum values it does not
know, and values of the wrong type; the emulator does the same from the same
documents, so a request the sandbox accepts is one Google would parse.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from pathlib import Path
from typing import Any

import googleapiclient

DOCUMENTS = Path(googleapiclient.__file__).resolve().parent / "discovery_cache" / "documents"

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "boolean": (bool,), "object": (dict,), "array": (list,),
    "integer": (int,), "number": (int, float),
}


@functools.cache
def document(api: str) -> dict[str, Any]:
    """The discovery document ``api`` (``"meet.v2"`` or ``"calendar.v3"``)."""
    return json.loads((DOCUMENTS / f"{api}.json").read_text(encoding="utf-8"))


@dataclasses.dataclass(frozen=True)
class BodyProblem:
    kind: str   # "unknown" (no such field), "type" (wrong JSON type) or "enum" (unknown value)
    path: str   # where, snake_case and dotted from the body's root ("space.config.access_type")
    value: Any  # the offending name or value
    type_name: str = ""  # the schema or JSON type expected, for the message


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def find_problem(api: str, schema: str, body: Any, root: str, *,
                 allow_unknown: bool = False) -> BodyProblem | None:
    """The first problem Google's parser would report in ``body`` (a ``schema``), or ``None``."""
    return _check(document(api)["schemas"], {"$ref": schema}, body, root, allow_unknown)


def _check(schemas: dict[str, Any], node: dict[str, Any], value: Any, path: str,
           allow_unknown: bool) -> BodyProblem | None:
    if value is None:
        return None  # proto3 JSON: null means "not set"
    type_name = node.get("$ref", "")
    if type_name:
        node = schemas[type_name]
    kind = node.get("type", "any")
    expected = _JSON_TYPES.get(kind)
    if expected and (not isinstance(value, expected) or (kind in ("integer", "number") and isinstance(value, bool))):
        if not (kind == "integer" and isinstance(value, str) and value.lstrip("-").isdigit()):
            return BodyProblem("type", path, value, type_name or f"TYPE_{kind.upper()}")
    if "enum" in node and value not in node["enum"]:
        return BodyProblem("enum", path, value, "TYPE_ENUM")
    if kind == "array":
        for index, item in enumerate(value):
            problem = _check(schemas, node.get("items", {}), item, f"{path}[{index}]", allow_unknown)
            if problem:
                return problem
    if kind == "object":
        return _check_object(schemas, node, value, path, allow_unknown)
    return None


def _check_object(schemas: dict[str, Any], node: dict[str, Any], value: dict[str, Any], path: str,
                  allow_unknown: bool) -> BodyProblem | None:
    properties = node.get("properties")
    extra = node.get("additionalProperties")
    for key, item in value.items():
        if properties is not None and key in properties:
            child = properties[key]
        elif extra is not None:
            child = extra
        elif allow_unknown or properties is None:
            continue
        else:
            return BodyProblem("unknown", path, key)
        problem = _check(schemas, child, item, f"{path}.{snake(key)}", allow_unknown)
        if problem:
            return problem
    return None
