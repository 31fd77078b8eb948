"""Abuse of the browser pages' input, on both backends: what the page fuzzer (test_page_fuzz.py) found, pinned.

- control characters (NUL first: PostgreSQL text cannot hold it, and it was a 500 there with the typed
  email in the logged statement) and invalid UTF-8 in form fields, query strings and URL parts: a 400
  naming the field (an HTML page, or problem+json for a page script), and nothing changed;
- a deeply nested JSON body posted to the freelancer's system check: no longer a 500;
- a failed statement never puts its parameters (an email) in the log.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import Api
from tests.functional.test_freelancer_journey import Freelancer
from tests.functional.test_staff_sign_in import form_token
from tests.support.staff import csrf_token, signed_in, staff_member
from verify_service.accounts.models import Account, Hold
from verify_service.audit.models import AuditEntry
from verify_service.registry import Registry, db_session
from verify_service.staff.models import Reviewer, Role, SignInThrottle, StaffSession

STATE = (Account, Hold, AuditEntry, Reviewer, SignInThrottle, StaffSession)
TYPED_EMAIL = "typed.by.someone@example.com"


def _state(registry: Registry) -> dict[str, int]:
    with registry.sessions() as session:
        return {model.__name__: session.scalar(sa.select(sa.func.count()).select_from(model)) or 0
                for model in STATE}


def _errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.levelno >= logging.ERROR]


def _staff(app: Flask, registry: Registry, role: Role) -> FlaskClient:
    client = app.test_client()
    signed_in(client, registry, role=role)
    client.token = csrf_token(client, "/review/mine")  # type: ignore[attr-defined]
    return client


def _assert_refused(response: Any, field: str) -> None:
    text = response.get_data(as_text=True)
    assert response.status_code == 400, text[:500]
    assert response.content_type.startswith("text/html")
    assert "invalid_characters" in text and f"“{field}”" in text, text[:2000]
    assert "\x00" not in text


@pytest.fixture
def world(api: Api, registry: Registry) -> Registry:
    api.put_account("acc-1")
    staff_member(registry, email="reviewer@example.com")
    return registry


# (what, who, method, path, form, the field the refusal names)
NUL_ATTACKS = [
    ("the staff sign-in email", None, "POST", "/review/sign-in",
     {"email": f"{TYPED_EMAIL}\x00", "password": "whatever-it-is"}, "email"),
    ("the lead account search", Role.LEAD, "GET", "/review/lead/accounts?q=acc%00", None, "q"),
    ("a lead account page", Role.LEAD, "GET", "/review/lead/accounts/acc-1%00", None, "account_id"),
    ("a call page", Role.REVIEWER, "GET", "/review/sessions/call%00", None, "call_id"),
    ("a manual hold's reason", Role.LEAD, "POST", "/review/lead/accounts/acc-1/holds",
     {"blocks": "withdraw_earnings", "reason": "Chargeback\x00"}, "reason"),
    ("a new staff member's email", Role.LEAD, "POST", "/review/lead/reviewers",
     {"email": f"{TYPED_EMAIL}\x00", "display_name": "Nia", "role": "reviewer"}, "email"),
    ("a new staff member's name", Role.LEAD, "POST", "/review/lead/reviewers",
     {"email": "nia@example.com", "display_name": "Ni\x00a", "role": "reviewer"}, "display_name"),
]


@pytest.mark.parametrize(("what", "role", "method", "path", "form", "field"), NUL_ATTACKS,
                         ids=[attack[0] for attack in NUL_ATTACKS])
def test_a_nul_in_page_input_is_refused_naming_the_field_and_changes_nothing(
        app: Flask, world: Registry, caplog: pytest.LogCaptureFixture, what: str, role: Role | None, method: str,
        path: str, form: dict[str, str] | None, field: str) -> None:
    if role is None:
        client = app.test_client()
        token = form_token(client)
    else:
        client = _staff(app, world, role)
        token = client.token  # type: ignore[attr-defined]
    before = _state(world)

    response = client.open(path, method=method, data={"csrf_token": token, **form} if form else None)

    _assert_refused(response, field)
    assert _state(world) == before, what
    assert not _errors(caplog), what
    assert TYPED_EMAIL not in caplog.text


CONTROL_CHARACTERS = ["\x01", "\x08", "\x0b", "\x1b", "\x1f", "\x7f"]


@pytest.mark.parametrize("char", CONTROL_CHARACTERS + ["\t", "\n", "\r"], ids=repr)
def test_other_control_characters_are_refused_in_single_line_fields(app: Flask, world: Registry,
                                                                    char: str) -> None:
    lead = _staff(app, world, Role.LEAD)
    before = _state(world)
    form = {"csrf_token": lead.token, "email": "nia@example.com", "role": "reviewer"}  # type: ignore[attr-defined]
    response = lead.post("/review/lead/reviewers", data={**form, "display_name": f"Nia{char}Lima"})
    _assert_refused(response, "display_name")
    assert _state(world) == before


@pytest.mark.parametrize("char", CONTROL_CHARACTERS, ids=repr)
def test_a_text_area_takes_line_breaks_and_tabs_but_no_other_control_character(app: Flask, world: Registry,
                                                                               char: str) -> None:
    lead = _staff(app, world, Role.LEAD)
    form = {"csrf_token": lead.token, "blocks": "withdraw_earnings"}  # type: ignore[attr-defined]
    before = _state(world)
    refused = lead.post("/review/lead/accounts/acc-1/holds", data={**form, "reason": f"Charge{char}back"})
    _assert_refused(refused, "reason")
    assert _state(world) == before

    placed = lead.post("/review/lead/accounts/acc-1/holds", data={**form, "reason": "Chargeback:\r\n\tcard 1"})
    assert placed.status_code == 303, placed.get_data(as_text=True)[:500]
    with world.sessions() as session:
        assert session.scalar(sa.select(Hold.reason)) == "Chargeback:\r\n\tcard 1"


def test_a_page_script_asking_for_json_gets_a_problem(app: Flask, world: Registry) -> None:
    reviewer = _staff(app, world, Role.REVIEWER)
    response = reviewer.get("/review/sessions/call%01/attendance", headers={"Accept": "application/json"})
    assert response.status_code == 400 and response.content_type == "application/problem+json"
    body = response.get_json()
    assert body["code"] == "invalid_characters"
    assert body["errors"] == [{"field": "call_id", "message": "contains a control character (U+0001), "
                                                                "which is not allowed"}]


@pytest.mark.parametrize(("path", "where"), [
    ("/review/lead/accounts?q=%FF", "query"),
    ("/review/lead/accounts/acc%C3", "path"),
    ("/review/lead/accounts?q%00=x", "q\\u0000"),
])
def test_invalid_utf8_and_control_characters_in_names_are_refused(app: Flask, world: Registry, path: str,
                                                                  where: str) -> None:
    _assert_refused(_staff(app, world, Role.LEAD).get(path), where)


def test_invalid_utf8_in_a_form_is_refused_rather_than_stored_as_replacement_characters(app: Flask,
                                                                                        world: Registry) -> None:
    lead = _staff(app, world, Role.LEAD)
    before = _state(world)
    body = f"csrf_token={lead.token}&blocks=withdraw_earnings&reason=Charge%FFback"  # type: ignore[attr-defined]
    response = lead.post("/review/lead/accounts/acc-1/holds", data=body,
                         content_type="application/x-www-form-urlencoded")
    _assert_refused(response, "form")
    assert _state(world) == before


def test_a_freelancer_page_refuses_control_characters_too(api: Api, app: Flask) -> None:
    api.put_account("acc-1")
    api.request_verification("acc-1", {"reason": "new_account", "place_hold": True})
    ana = Freelancer(api, "acc-1")
    _assert_refused(ana.client.get("/verify/book?tz=Europe/Lisbon%00"), "tz")
    _assert_refused(ana.client.get("/verify/calls/x%00y"), "call_id")
    check = ana.client.post("/verify/check", json={"client_hints": {"platform": "Win\x00dows"}},
                            headers={"X-CSRFToken": ana.token, "Accept": "application/json"})
    assert check.status_code == 400 and check.get_json()["errors"][0]["field"] == "client_hints.platform"
    lone = ana.client.post("/verify/check", data=b'{"client_hints": {"platform": "\\ud800"}}',
                           content_type="application/json",
                           headers={"X-CSRFToken": ana.token, "Accept": "application/json"})
    assert lone.status_code == 400
    assert "unpaired surrogate (U+D800)" in lone.get_json()["errors"][0]["message"]


def test_the_api_keeps_its_own_refusal(api: Api) -> None:
    # The API answers a NUL in its own way (the schema's 422), not with the pages' 400.
    response = api.put_account("acc-1", name="Ana\x00")
    assert response.status_code == 422 and response.get_json()["code"] == "validation_failed"


@pytest.mark.parametrize("number", ["2147483648", "10000000000000000000000000"])
def test_an_id_in_the_address_bigger_than_an_id_column_holds_is_not_found(app: Flask, world: Registry,
                                                                          caplog: pytest.LogCaptureFixture,
                                                                          number: str) -> None:
    # PostgreSQL refused to compare it with an integer column: a 500 (found by the page fuzzer).
    lead = _staff(app, world, Role.LEAD)
    form = {"csrf_token": lead.token}  # type: ignore[attr-defined]
    before = _state(world)
    assert lead.get(f"/review/lead/shifts/{number}").status_code == 404
    assert lead.post(f"/review/lead/shifts/{number}/remove", data=form).status_code == 404
    assert lead.post(f"/review/lead/reviewers/{number}/disable", data=form).status_code == 404
    assert lead.get("/review/lead/shifts/2147483647").status_code == 404  # the largest id is looked up
    assert _state(world) == before
    assert not _errors(caplog)


# ================================================================ the system check's JSON body

NESTED = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize("body", [NESTED, b'{"client_hints": ' + NESTED + b"}",
                                  b'{"client_hints": {"brands": ' + b"[" * 5000 + b"]" * 5000 + b"}}"],
                         ids=["array", "in-hints", "in-brands"])
def test_a_deeply_nested_check_body_is_no_500(api: Api, app: Flask, caplog: pytest.LogCaptureFixture,
                                              body: bytes) -> None:
    api.put_account("acc-1")
    api.request_verification("acc-1", {"reason": "new_account", "place_hold": True})
    ana = Freelancer(api, "acc-1")
    response = ana.client.post("/verify/check", data=body, content_type="application/json",
                               headers={"X-CSRFToken": ana.token, "Accept": "application/json"})
    # Unreadable hints are ignored, as before: the verdict from the request's headers stands.
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert response.get_json()["verdict"]
    assert not _errors(caplog)


# ================================================================ no parameters in the log

SECRET_EMAIL = "never.logged@example.com"


@pytest.fixture
def failing_app(app: Flask) -> Flask:
    """The app plus a page whose statement fails with a known email among its parameters."""

    def fail_with_duplicate() -> str:
        session = db_session(write=True)
        insert = sa.insert(Reviewer.__table__).values(  # the same email twice: a unique violation
            email=SECRET_EMAIL, display_name="Secret", role=Role.REVIEWER, password_hash="x", active=True,
            created_at=dt.datetime.now(dt.timezone.utc))
        session.execute(insert)
        session.execute(insert)
        return "unreachable"

    def fail_unavailable() -> str:
        # An operational error (what "the database cannot serve right now" is): a statement timeout on
        # PostgreSQL, a missing table on SQLite.
        session = db_session()
        if session.get_bind().dialect.name == "postgresql":
            session.execute(sa.text("SET LOCAL statement_timeout = 1"))
            session.execute(sa.text("SELECT pg_sleep(1) WHERE CAST(:email AS text) <> ''"), {"email": SECRET_EMAIL})
        else:
            session.execute(sa.text("SELECT * FROM no_such_table WHERE email = :email"), {"email": SECRET_EMAIL})
        return "unreachable"

    app.add_url_rule("/test-only/duplicate", "test_only_duplicate", fail_with_duplicate)
    app.add_url_rule("/test-only/unavailable", "test_only_unavailable", fail_unavailable)
    return app


def test_a_failed_statement_leaves_its_parameters_out_of_the_log(failing_app: Flask, capsys: pytest.CaptureFixture[str],
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    client = failing_app.test_client()
    capsys.readouterr()
    assert client.get("/test-only/duplicate").status_code == 500
    assert client.get("/test-only/unavailable").status_code == 503

    logged = capsys.readouterr().err  # what the service's log handler wrote
    assert "unhandled error on GET /test-only/duplicate" in logged and "Traceback" in logged
    assert "database unavailable on GET /test-only/unavailable" in logged
    assert SECRET_EMAIL not in logged, logged[-3000:]
    for record in caplog.records:
        assert SECRET_EMAIL not in record.getMessage() + (record.exc_text or ""), record.name


# ================================================================ found in the sandbox by the fuzzer

@pytest.mark.parametrize("path", ["/sandbox/google/meet/v2/spaces",
                                  "/sandbox/google/calendar/v3/calendars/primary/events"])
def test_the_sandbox_apis_refuse_json_nested_too_deep_in_their_own_format(client: FlaskClient,
                                                                          caplog: pytest.LogCaptureFixture,
                                                                          path: str) -> None:
    response = client.post(path, data=NESTED, content_type="application/json")
    assert response.status_code == 400, response.status_code
    assert not _errors(caplog)
