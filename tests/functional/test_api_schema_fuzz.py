"""Schemathesis against ``/api/v1/openapi.json``: every operation, positive and negative data.

The checks (all of Schemathesis' built-in ones): no server error; status,
content type, headers and body as documented; schema-violating input
rejected and schema-valid input accepted; the API key required.
Deterministic (a fixed seed), with a bounded number of examples per operation.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings

from tests.conftest import API_KEY, FakeClock, make_settings
from tests.functional.test_inbound_webhooks import count
from verify_service import create_app
from verify_service.accounts.models import Account, VerificationRequest
from verify_service.accounts.schemas import NAME_PATTERN, TIME_ZONES
from verify_service.registry import KEY, Registry

pytestmark = pytest.mark.slow  # a fuzzer: many examples for each page or operation

VERIFICATION_REQUESTS = "/api/v1/accounts/{account_id}/verification-requests"
CONFIG = schemathesis.Config.from_dict({
    "seed": 20261122,
    "generation": {"mode": "all", "max-examples": 30, "deterministic": True},
    "auth": {"openapi": {"bearer": {"bearer": API_KEY}}},
    "operations": [{
        # A deadline in the past is refused (422), a rule the JSON schema cannot state.
        "include-path": VERIFICATION_REQUESTS,
        "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", 401, 404, 409, 422]}},
    }, {
        # A return_url whose origin is not in VERIFY_RETURN_URL_ORIGINS is refused (422): a setting, not the schema.
        "include-path": "/api/v1/accounts/{account_id}/launch-links",
        "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", 401, 404, 409, 422, 429]}},
    }, {
        # A cursor must be one the service issued, for the same filters (else 400 invalid_cursor; 410 once it
        # is older than the retention): the schema can only say what its characters are.
        "include-path": "/api/v1/events",
        "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", 400, 401, 410]}},
    }, {
        # A pass takes no reason codes (422): the schema lists the codes but not which outcome takes them.
        "include-path": "/api/v1/simulations/accounts/{account_id}/outcome",
        "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", 401, 404, 409, 422, 429]}},
    }],
})


class CurrentApp:
    """A WSGI app that hands each request to the app of the running test.

    Schemathesis parametrizes the test from a schema loaded when the module is
    imported, before any test's database exists. (Its lazy loader,
    ``schemathesis.pytest.from_fixture``, does not run on pytest 9.2: it sets
    ``Node._nodeid``, which pytest no longer has.)
    """

    def __init__(self, app: Flask) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        return self.app(environ, start_response)


def _app(database_url: str, tmp_path: Path) -> Flask:
    # Rate limits have their own tests; here they would only hide the handlers behind 429s.
    return create_app(make_settings(database_url, tmp_path, client_check_rate_limit="100000/second",
                                    launch_link_rate_limit="100000/second"))


def _load_schema() -> tuple[CurrentApp, schemathesis.BaseSchema]:
    with tempfile.TemporaryDirectory() as tmp:
        app = _app("sqlite://", Path(tmp))  # the document depends on the code, not on the data
        current = CurrentApp(app)
        try:
            return current, schemathesis.openapi.from_wsgi("/api/v1/openapi.json", current, config=CONFIG)
        finally:
            app.extensions[KEY].engine.dispose()


CURRENT, schema = _load_schema()


@pytest.fixture
def fuzzed_app(database_url: str, tmp_path: Path, clock: FakeClock) -> Iterator[Flask]:
    app = _app(database_url, tmp_path)
    app.extensions[KEY].clock = clock
    CURRENT.app = app
    yield app
    app.extensions[KEY].engine.dispose()


@schema.parametrize()
# One app (and database) per operation, shared by its examples on purpose: state builds up as in real use.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_every_operation_keeps_its_contract(case: schemathesis.Case, fuzzed_app: Flask) -> None:
    case.call_and_validate()


# ---------------------------------------------------------------- what the fuzzing found, pinned down

NESTED = "[" * 100_000 + "]" * 100_000
PROFILE = '"name": "A", "email": "a@example.com", "country": "PT"'
# (what it was, method, path, body, status, field named in the problem)
FOUND = [
    ("a JSON string holding the object was parsed a second time and accepted (201)",
     "POST", "/api/v1/accounts/acc-1/verification-requests", '"{\\"reason\\": \\"manual\\"}"', 422, "body"),
    ("the same, on PUT", "PUT", "/api/v1/accounts/acc-2", '"{\\"name\\": \\"Eve\\"}"', 422, "body"),
    ("the same, on the public check", "POST", "/api/v1/client-checks", '"{\\"user_agent\\": \\"x\\"}"', 422, "body"),
    ("nesting deeper than the parser's recursion limit was a 500", "PUT", "/api/v1/accounts/acc-2", NESTED, 400, None),
    ("a number was read as a date-time (seconds since the epoch)",
     "POST", "/api/v1/accounts/acc-1/verification-requests", '{"reason": "manual", "deadline": 1893456000}',
     422, "deadline"),
    ("a date-time past year 9999 once in UTC was a 500 (OverflowError storing it)",
     "POST", "/api/v1/accounts/acc-1/verification-requests",
     '{"reason": "manual", "deadline": "9999-12-31T23:59:59-12:00"}', 422, "deadline"),
    ("0 was read as false", "POST", "/api/v1/client-checks",
     '{"user_agent": "x", "client_hints": {"touchMac": 0}}', 422, "client_hints.touchMac"),
    ('"true" was read as true', "POST", "/api/v1/client-checks",
     '{"user_agent": "x", "client_hints": {"mobile": "true"}}', 422, "client_hints.mobile"),
    ("a photo URL longer than its column was a 500 on PostgreSQL (value too long)",
     "PUT", "/api/v1/accounts/acc-2", '{%s, "photo_url": "https://example.com/%s"}' % (PROFILE, "p" * 2040),
     422, "photo_url"),
    ("the server's own zone was accepted as a person's time zone",
     "PUT", "/api/v1/accounts/acc-2", '{%s, "timezone": "localtime"}' % PROFILE, 422, "timezone"),
    ("a NUL character in a name was a 500 on PostgreSQL (text cannot hold it)",
     "PUT", "/api/v1/accounts/acc-2", '{"name": "Ana\\u0000", "email": "a@example.com", "country": "PT"}', 422, "name"),
    ("a name of spaces only (refused, as before: now the document says so)",
     "PUT", "/api/v1/accounts/acc-2", '{"name": "   ", "email": "a@example.com", "country": "PT"}', 422, "name"),
]


def test_what_the_fuzzing_found_is_refused_with_a_problem_and_writes_nothing(api, registry) -> None:
    api.put_account("acc-1")
    before = _rows(registry)
    for what, method, path, body, status, field in FOUND:
        response = api.client.open(path, method=method, data=body, content_type="application/json",
                                   headers=api.auth)
        assert response.status_code == status, (what, response.get_data(as_text=True)[:300])
        assert response.content_type == "application/problem+json", what
        if field is not None:
            assert field in [error["field"] for error in response.get_json()["errors"]], what
    assert _rows(registry) == before


def _rows(registry: Registry) -> dict[str, int]:
    return {model.__name__: count(registry, model) for model in (Account, VerificationRequest)}


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # the document does not depend on the database
def test_the_document_states_what_the_profile_validator_accepts(client) -> None:
    profile = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]["ProfileIn"]["properties"]
    zones = profile["timezone"]["anyOf"][0]["enum"]
    assert set(zones) == TIME_ZONES and "Europe/Berlin" in zones and "localtime" not in zones
    url = profile["photo_url"]["anyOf"][0]
    assert url["maxLength"] == 2000 and url["pattern"].startswith("^[hH][tT][tT][pP]")
    assert "[tT][eE][sS][tT]" in profile["email"]["not"]["pattern"]
    assert profile["name"]["pattern"] == NAME_PATTERN
