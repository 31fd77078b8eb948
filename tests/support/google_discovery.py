"""Google's discovery documents as strict JSON Schema, and a checker for emulator responses.

The documents are the ones ``google-api-python-client`` ships; objects that
define ``properties`` are closed (``additionalProperties: false``), so a
response with a field Google does not define fails. Used by
tests/integration/test_sandbox_fidelity.py to hold the sandbox to Google's contract.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import googleapiclient
from jsonschema import Draft7Validator, FormatChecker

DOCUMENTS = Path(googleapiclient.__file__).resolve().parent / "discovery_cache" / "documents"


FORMAT_CHECKER = FormatChecker()
GOOGLE_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$")


@FORMAT_CHECKER.checks("google-datetime")
def _google_datetime(value: object) -> bool:
    """Meet's timestamps: RFC 3339 in UTC with ``Z`` (proto3 JSON)."""
    return not isinstance(value, str) or bool(GOOGLE_DATETIME.match(value))


def to_json_schema(node: dict[str, Any]) -> dict[str, Any]:
    """One discovery schema node as JSON Schema; objects with ``properties`` are closed."""
    if "$ref" in node:
        return {"$ref": f"#/definitions/{node['$ref']}"}
    schema: dict[str, Any] = {}
    if node.get("type") not in (None, "any"):
        schema["type"] = node["type"]
    if "enum" in node:
        schema["enum"] = list(node["enum"])
    if node.get("format") in ("google-datetime", "date-time", "date"):
        schema["format"] = node["format"]
    if "properties" in node:
        schema["properties"] = {name: to_json_schema(child) for name, child in node["properties"].items()}
        schema["additionalProperties"] = False  # the emulator must not invent fields
    elif "additionalProperties" in node:
        schema["additionalProperties"] = to_json_schema(node["additionalProperties"])
    if "items" in node:
        schema["items"] = to_json_schema(node["items"])
    return schema


def load(api: str) -> dict[str, Any]:
    return json.loads((DOCUMENTS / f"{api}.json").read_text(encoding="utf-8"))


def validator_for(document: dict[str, Any], ref: str) -> Draft7Validator:
    definitions = {name: to_json_schema(schema) for name, schema in document["schemas"].items()}
    return Draft7Validator({"$ref": f"#/definitions/{ref}", "definitions": definitions},
                           format_checker=FORMAT_CHECKER)


@dataclasses.dataclass(frozen=True)
class Method:
    id: str
    http_method: str
    pattern: re.Pattern[str]
    response: str | None


def _methods(document: dict[str, Any], prefix: str) -> Iterator[Method]:
    def walk(resources: dict[str, Any]) -> Iterator[Method]:
        for resource in resources.values():
            for method in resource.get("methods", {}).values():
                path = method.get("flatPath", method["path"])
                regex = re.sub(r"\\\{[^}]+\\\}", "[^/:]+", re.escape(prefix + path))
                yield Method(method["id"], method["httpMethod"], re.compile(regex),
                             method.get("response", {}).get("$ref"))
            yield from walk(resource.get("resources", {}))

    yield from walk(document["resources"])


DISCOVERY = {"meet": load("meet.v2"), "calendar": load("calendar.v3")}
METHODS = [*_methods(DISCOVERY["meet"], "/sandbox/google/meet/"),
           *_methods(DISCOVERY["calendar"], "/sandbox/google/calendar/v3/")]
VALIDATORS = {(api, ref): validator_for(doc, ref) for api, doc in DISCOVERY.items() for ref in doc["schemas"]}

MEET_ERROR = {"type": "object", "additionalProperties": False, "required": ["error"], "properties": {
    "error": {"type": "object", "additionalProperties": False, "required": ["code", "message", "status"],
              "properties": {"code": {"type": "integer"}, "message": {"type": "string"},
                             "status": {"enum": ["INVALID_ARGUMENT", "FAILED_PRECONDITION", "NOT_FOUND",
                                                 "ALREADY_EXISTS", "PERMISSION_DENIED"]}}}}}
CALENDAR_ERROR = {"type": "object", "additionalProperties": False, "required": ["error"], "properties": {
    "error": {"type": "object", "additionalProperties": False, "required": ["errors", "code", "message"],
              "properties": {"code": {"type": "integer"}, "message": {"type": "string"},
                             "errors": {"type": "array", "minItems": 1, "items": {
                                 "type": "object", "additionalProperties": False,
                                 "required": ["domain", "reason", "message"],
                                 "properties": {"domain": {"type": "string"}, "reason": {"type": "string"},
                                                "message": {"type": "string"}}}}}}}}


@dataclasses.dataclass(frozen=True)
class Exchange:
    method: str
    path: str
    status: int
    body: bytes


def method_for(exchange: Exchange) -> Method | None:
    matches = [m for m in METHODS if m.http_method == exchange.method and m.pattern.fullmatch(exchange.path)]
    assert len(matches) <= 1, matches
    return matches[0] if matches else None


def check(exchange: Exchange) -> str | None:
    """Validate one response; returns the discovery method id it answered (``None`` for errors)."""
    calendar = exchange.path.startswith("/sandbox/google/calendar/")
    if exchange.status >= 400:
        body = json.loads(exchange.body)
        Draft7Validator(CALENDAR_ERROR if calendar else MEET_ERROR).validate(body)
        assert body["error"]["code"] == exchange.status
        return None
    method = method_for(exchange)
    assert method is not None, f"{exchange.method} {exchange.path} is not a discovery method"
    if method.response is None:
        assert exchange.status == 204 and exchange.body == b"", exchange
    else:
        assert exchange.status == 200, exchange
        VALIDATORS[("calendar" if calendar else "meet", method.response)].validate(json.loads(exchange.body))
    return method.id


@dataclasses.dataclass
class Checked:
    """Responses seen, and the discovery methods they were validated as."""

    exchanges: list[Exchange] = dataclasses.field(default_factory=list)
    methods: set[str] = dataclasses.field(default_factory=set)

    def verify(self) -> None:
        for exchange in self.exchanges:
            method = check(exchange)
            if method:
                self.methods.add(method)
