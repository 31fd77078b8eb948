"""The accounts API through the Flask test client, on both database backends."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from tests.conftest import OTHER_API_KEY, Api, assert_problem
from verify_service.accounts.models import Account, Hold, VerificationRequest
from verify_service.api.models import IdempotencyKey
from verify_service.audit.models import AuditEntry
from verify_service.webhooks.models import OutboxEvent


def _count(registry, model) -> int:
    with registry.sessions() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(model))




# ---------------------------------------------------------------- the quickstart flow

def test_request_with_hold_blocks_proposals_at_version_1_and_etag_gives_304(api: Api) -> None:
    assert api.put_account("acc-1").status_code == 201
    created = api.request_verification("acc-1", {"reason": "new_account", "place_hold": True})
    assert created.status_code == 201
    assert created.get_json()["created"] is True

    response = api.restrictions("acc-1")
    assert response.status_code == 200
    body = response.get_json()
    assert body["version"] == 1
    assert body["blocked"] == ["submit_proposals", "change_profile_photo"]
    assert [h["kind"] for h in body["holds"]] == ["verification_pending"]
    assert body["verification"]["status"] == "required"
    assert body["verification"]["request"]["reason"] == "new_account"
    assert response.headers["ETag"] == '"1"'
    assert "no-cache" in response.headers["Cache-Control"]

    again = api.restrictions("acc-1", etag=response.headers["ETag"])
    assert again.status_code == 304
    assert again.get_data() == b""
    assert again.headers["ETag"] == '"1"'


def test_a_stale_etag_gets_the_new_document(api: Api) -> None:
    api.put_account("acc-1")
    first = api.restrictions("acc-1")
    assert first.get_json()["version"] == 0
    api.request_verification("acc-1", {"reason": "risk_signal", "place_hold": True})
    fresh = api.restrictions("acc-1", etag=first.headers["ETag"])
    assert fresh.status_code == 200
    assert fresh.get_json()["version"] == 1
    # Weak comparison and lists of tags, as RFC 9110 allows.
    assert api.restrictions("acc-1", etag='"0", W/"1"').status_code == 304
    assert api.restrictions("acc-1", etag="*").status_code == 304


def test_request_without_hold_changes_status_but_blocks_nothing(api: Api) -> None:
    api.put_account("acc-1")
    api.request_verification("acc-1", {"reason": "profile_change"})
    body = api.restrictions("acc-1").get_json()
    assert body["blocked"] == []
    assert body["verification"]["status"] == "required"
    # The document changed, so its version did too (the ETag must not hide the change).
    assert body["version"] == 1


def test_a_second_request_keeps_the_open_one_and_adds_the_hold(api: Api, registry) -> None:
    api.put_account("acc-1")
    deadline = (registry.now() + dt.timedelta(days=7)).isoformat()
    first = api.request_verification("acc-1", {"reason": "new_account", "deadline": deadline}).get_json()
    earlier = (registry.now() + dt.timedelta(days=2)).isoformat()
    second = api.request_verification("acc-1", {"reason": "manual", "place_hold": True, "deadline": earlier})
    assert second.status_code == 200
    body = second.get_json()
    assert body["created"] is False
    assert body["request"]["id"] == first["request"]["id"]
    assert body["request"]["reason"] == "new_account"
    assert body["request"]["deadline"].startswith((registry.now() + dt.timedelta(days=2)).date().isoformat())
    assert body["restrictions"]["blocked"] == ["submit_proposals", "change_profile_photo"]
    assert _count(registry, VerificationRequest) == 1

    # Asking once more with nothing new changes nothing.
    version = body["restrictions"]["version"]
    third = api.request_verification("acc-1", {"reason": "manual", "place_hold": True}).get_json()
    assert third["restrictions"]["version"] == version
    assert _count(registry, Hold) == 1


def test_put_account_creates_then_updates(api: Api, registry) -> None:
    created = api.put_account("acc-9", timezone="Europe/Lisbon", locale="pt-PT",
                              photo_url="https://cdn.example.com/p/9.jpg")
    assert created.status_code == 201
    assert created.headers["Location"].endswith("/api/v1/accounts/acc-9/restrictions")
    body = created.get_json()
    assert body["name"] == "Ana Lima" and body["timezone"] == "Europe/Lisbon"
    updated = api.put_account("acc-9", name="Ana M. Lima", timezone="Europe/Lisbon", locale="pt-PT",
                              photo_url="https://cdn.example.com/p/9.jpg")
    assert updated.status_code == 200
    assert updated.get_json()["name"] == "Ana M. Lima"
    # PUT replaces the snapshot: a field left out is cleared.
    assert api.put_account("acc-9").get_json()["timezone"] is None
    with registry.sessions() as session:
        actions = session.scalars(sa.select(AuditEntry.action).order_by(AuditEntry.seq)).all()
        details = session.scalars(sa.select(AuditEntry.details).order_by(AuditEntry.seq)).all()
    assert actions == ["account.created", "account.updated", "account.updated"]
    # The audit names the changed fields, never their (personal) values.
    assert details[1]["fields"] == ["display_name"]
    assert details[2]["fields"] == ["display_name", "locale", "photo_url", "timezone"]
    assert "Ana M. Lima" not in str(details)


def test_second_api_key_works_for_rotation(api: Api) -> None:
    api.auth = {"Authorization": f"Bearer {OTHER_API_KEY}"}
    assert api.put_account("acc-1").status_code == 201


# ---------------------------------------------------------------- idempotency

def test_same_key_same_body_replays_the_first_response(api: Api, registry) -> None:
    api.put_account("acc-1")
    body = {"reason": "new_account", "place_hold": True}
    first = api.request_verification("acc-1", body, key="k-1")
    # Key order and spacing do not make it a different request.
    second = api.client.post("/api/v1/accounts/acc-1/verification-requests",
                             data='{"place_hold": true,   "reason": "new_account"}',
                             content_type="application/json", headers={**api.auth, "Idempotency-Key": "k-1"})
    assert first.status_code == second.status_code == 201
    assert second.get_json() == first.get_json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert _count(registry, VerificationRequest) == 1
    assert _count(registry, OutboxEvent) == 2  # verification.required + account.hold.placed, once


def test_same_key_different_body_is_409_and_changes_nothing(api: Api, registry) -> None:
    api.put_account("acc-1")
    api.request_verification("acc-1", {"reason": "new_account"}, key="k-1")
    events = _count(registry, OutboxEvent)
    conflict = api.request_verification("acc-1", {"reason": "new_account", "place_hold": True}, key="k-1")
    assert_problem(conflict, 409, "idempotency_key_reused")
    assert _count(registry, Hold) == 0
    assert _count(registry, OutboxEvent) == events


def test_keys_are_scoped_to_the_operation_and_expire(api: Api, registry, clock) -> None:
    api.put_account("acc-1")
    api.put_account("acc-2")
    assert api.request_verification("acc-1", key="shared").status_code == 201
    # The same key on another account's operation is a different request.
    assert api.request_verification("acc-2", key="shared").status_code == 201
    assert _count(registry, IdempotencyKey) == 2
    clock.advance(hours=25)
    # Past its lifetime the key is free again (the open request is kept: 200).
    response = api.request_verification("acc-1", {"reason": "manual"}, key="shared")
    assert response.status_code == 200
    assert "Idempotent-Replayed" not in response.headers


def test_failed_requests_are_not_remembered(api: Api) -> None:
    assert_problem(api.request_verification("later", key="k-2"), 404, "account_not_found")
    api.put_account("later")
    assert api.request_verification("later", key="k-2").status_code == 201


@pytest.mark.parametrize("key", ["", "x" * 256, "has space", "tab\there"])
def test_malformed_idempotency_keys_are_422(api: Api, key: str) -> None:
    api.put_account("acc-1")
    body = assert_problem(api.request_verification("acc-1", key=key), 422, "validation_failed")
    assert body["errors"][0]["field"] == "Idempotency-Key"


# ---------------------------------------------------------------- bad input

def test_missing_or_wrong_key_is_401_with_a_challenge(client, api: Api) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}):
        response = client.get("/api/v1/accounts/acc-1/restrictions", headers=headers)
        assert_problem(response, 401, "unauthorized")
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    # Authentication comes before everything else: no hint whether the account exists.
    assert_problem(client.put("/api/v1/accounts/acc-1", json={}), 401, "unauthorized")


def test_unknown_account_is_404(api: Api, registry) -> None:
    assert_problem(api.restrictions("ghost"), 404, "account_not_found")
    assert_problem(api.restrictions("ghost", etag='"0"'), 404, "account_not_found")
    assert_problem(api.request_verification("ghost", {"reason": "manual", "place_hold": True}), 404, "account_not_found")
    assert _count(registry, Account) == 0


@pytest.mark.parametrize(("body", "field"), [
    ({"reason": "because"}, "reason"),
    ({}, "reason"),
    ({"reason": "manual", "place_hold": "yes"}, "place_hold"),
    ({"reason": "manual", "deadline": "next week"}, "deadline"),
    ({"reason": "manual", "deadline": "2030-01-01T00:00:00"}, "deadline"),  # no time zone
    ({"reason": "manual", "surprise": 1}, "surprise"),
])
def test_invalid_verification_requests_are_422_naming_the_field(api: Api, registry, body, field) -> None:
    api.put_account("acc-1")
    problem = assert_problem(api.request_verification("acc-1", body), 422, "validation_failed")
    assert field in [e["field"] for e in problem["errors"]]
    assert _count(registry, VerificationRequest) == 0


def test_deadline_in_the_past_is_422_and_writes_nothing(api: Api, registry) -> None:
    api.put_account("acc-1")
    past = (registry.now() - dt.timedelta(minutes=1)).isoformat()
    problem = assert_problem(api.request_verification("acc-1", {"reason": "manual", "deadline": past,
                                                          "place_hold": True}), 422, "validation_failed")
    assert problem["errors"] == [{"field": "deadline", "message": "must be in the future"}]
    assert _count(registry, VerificationRequest) == 0
    assert _count(registry, Hold) == 0
    assert api.restrictions("acc-1").get_json()["version"] == 0


@pytest.mark.parametrize(("profile", "field"), [
    ({"email": "not-an-email"}, "email"),
    ({"country": "Portugal"}, "country"),
    ({"name": ""}, "name"),
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"photo_url": "javascript:alert(1)"}, "photo_url"),
    ({"nickname": "x"}, "nickname"),
])
def test_invalid_profiles_are_422_naming_the_field(api: Api, registry, profile, field) -> None:
    problem = assert_problem(api.put_account("acc-1", **profile), 422, "validation_failed")
    assert field in [e["field"] for e in problem["errors"]]
    assert _count(registry, Account) == 0


@pytest.mark.parametrize("account_id", ["-leading-dash", "x" * 65, "with space", "ümlaut"])
def test_malformed_account_ids_are_rejected(api: Api, account_id: str) -> None:
    response = api.put_account(account_id)
    assert response.status_code in (404, 422)
    assert response.content_type == "application/problem+json"


def test_malformed_json_is_400_and_wrong_content_type_415(api: Api) -> None:
    api.put_account("acc-1")
    assert_problem(api.client.post("/api/v1/accounts/acc-1/verification-requests", data="{nope",
                             content_type="application/json", headers=api.auth), 400, "malformed_request")
    assert_problem(api.client.post("/api/v1/accounts/acc-1/verification-requests", data="reason=manual",
                             content_type="application/x-www-form-urlencoded", headers=api.auth),
             415, "unsupported_media_type")
    assert_problem(api.client.put("/api/v1/accounts/acc-1", data="[1, 2]", content_type="application/json",
                            headers=api.auth), 422, "validation_failed")


def test_wrong_method_and_unknown_route_are_problems(api: Api) -> None:
    response = api.client.delete("/api/v1/accounts/acc-1/restrictions", headers=api.auth)
    assert_problem(response, 405, "method_not_allowed")
    assert "GET" in response.headers["Allow"]
    assert_problem(api.client.get("/api/v1/nothing-here", headers=api.auth), 404, "not_found")


def test_closed_accounts_refuse_changes(api: Api, registry, clock) -> None:
    api.put_account("acc-1")
    with registry.sessions.begin() as session:
        session.get(Account, "acc-1").closed_at = clock()
    assert_problem(api.put_account("acc-1"), 409, "account_closed")
    assert_problem(api.request_verification("acc-1"), 409, "account_closed")


def test_browser_pages_get_html_errors(client) -> None:
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert "Reference: not_found" in response.get_data(as_text=True)  # small, after the sentences
    assert response.headers["Content-Security-Policy"].startswith("default-src 'self'")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    landing = client.get("/")
    assert landing.status_code == 200 and "/api/v1/openapi.json" in landing.get_data(as_text=True)
