"""Webhooks from the account service through the Flask test client, on both backends.

The contract: docs/architecture.md, 'Webhooks from the account service'; README, "Webhooks from the account service".
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from standardwebhooks import Webhook

from tests.conftest import FakeClock, assert_problem, make_settings
from verify_service import create_app
from verify_service.accounts import services as account_services
from verify_service.accounts.models import Account, Hold, VerificationRequest
from verify_service.audit.models import AuditEntry
from verify_service.registry import KEY
from verify_service.settings import ConfigurationError
from verify_service.inbound import events as inbound
from verify_service.webhooks.models import OutboxEvent
from verify_service.inbound.models import InboundWebhookReceipt

URL = "/webhooks/account-service"
OTHER_SECRET = "whsec_" + base64.b64encode(b"another secret of 24 byte").decode()
PROFILE = {"name": "Ana Lima", "email": "ana@example.com", "country": "PT"}


def signed_headers(secret: str, body: str, *, msg_id: str | None = None,
                   at: dt.datetime | None = None) -> dict[str, str]:
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    at = at or dt.datetime.now(dt.timezone.utc)
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": Webhook(secret).sign(msg_id, at, body)}


def event_body(event_type: str, data: dict[str, Any], **extra: Any) -> str:
    return json.dumps({"type": event_type, "timestamp": "2026-11-22T08:59:00Z", "data": data, **extra})


def send(client, registry, event_type: str, data: dict[str, Any], *, msg_id: str | None = None,
         secret: str | None = None, **extra: Any) -> Any:
    body = event_body(event_type, data, **extra)
    headers = signed_headers(secret or registry.settings.inbound_webhook_secrets[0], body, msg_id=msg_id)
    return client.post(URL, data=body, headers=headers, content_type="application/json")


def send_raw(client, registry, body: str | bytes, headers: dict[str, str] | None = None) -> Any:
    if headers is None:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
        headers = signed_headers(registry.settings.inbound_webhook_secrets[0], text)
    return client.post(URL, data=body, headers=headers, content_type="application/json")


def count(registry, model) -> int:
    with registry.sessions() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(model))


def ok(response, status: str = "processed") -> None:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json() == {"status": status}


def nothing_stored(registry) -> None:
    assert count(registry, InboundWebhookReceipt) == 0
    assert count(registry, Account) == 0
    assert count(registry, AuditEntry) == 0


# ---------------------------------------------------------------- effects

def test_account_upserted_creates_the_account(client, registry) -> None:
    ok(send(client, registry, "account.upserted", {"account_id": "acc-1", **PROFILE, "timezone": "Europe/Lisbon"},
            msg_id="msg_1"))
    with registry.sessions() as session:
        account = session.get(Account, "acc-1")
        assert (account.display_name, account.email, account.country, account.timezone) == (
            "Ana Lima", "ana@example.com", "PT", "Europe/Lisbon")
        receipt = session.get(InboundWebhookReceipt, "msg_1")
        assert receipt.type == "account.upserted" and receipt.received_at == registry.now()
        assert session.scalars(sa.select(AuditEntry.actor)).all() == ["account-service:webhook"]


def test_unknown_fields_are_ignored(client, registry) -> None:
    data = {"account_id": "acc-1", **PROFILE, "marketing_opt_in": True, "tier": {"level": 3}}
    ok(send(client, registry, "account.upserted", data, trace_id="abc"))
    ok(send(client, registry, "verification.requested", {"account_id": "acc-1", "reason": "manual", "priority": 1}))
    ok(send(client, registry, "account.closed", {"account_id": "acc-1", "closed_by": "user"}))
    with registry.sessions() as session:
        assert session.get(Account, "acc-1").closed_at == registry.now()
    assert count(registry, VerificationRequest) == 1


def test_verification_requested_calls_the_same_service_as_the_api(client, registry) -> None:
    ok(send(client, registry, "account.upserted", {"account_id": "acc-1", **PROFILE}))
    deadline = (registry.now() + dt.timedelta(days=3)).isoformat()
    ok(send(client, registry, "verification.requested",
            {"account_id": "acc-1", "reason": "risk_signal", "deadline": deadline, "place_hold": True}))
    with registry.sessions() as session:
        request = session.scalars(sa.select(VerificationRequest)).one()
        assert request.requested_by == "account-service:webhook"
        assert request.deadline == registry.now() + dt.timedelta(days=3)
        assert session.scalars(sa.select(Hold.kind)).one().value == "verification_pending"
        assert session.get(Account, "acc-1").restrictions_version == 1
    assert count(registry, OutboxEvent) == 2


def test_replayed_webhook_id_is_a_duplicate_with_no_second_effect(client, registry) -> None:
    ok(send(client, registry, "account.upserted", {"account_id": "acc-1", **PROFILE}))
    data = {"account_id": "acc-1", "reason": "new_account", "place_hold": True}
    ok(send(client, registry, "verification.requested", data, msg_id="msg_vr"))
    audit = count(registry, AuditEntry)
    ok(send(client, registry, "verification.requested", data, msg_id="msg_vr"), "duplicate")
    # Even a body that would change something is not applied twice under one id.
    later = {**data, "deadline": (registry.now() + dt.timedelta(days=1)).isoformat()}
    ok(send(client, registry, "verification.requested", later, msg_id="msg_vr"), "duplicate")
    assert count(registry, Hold) == 1
    assert count(registry, OutboxEvent) == 2  # verification.required + account.hold.placed, once
    assert count(registry, AuditEntry) == audit
    with registry.sessions() as session:
        assert session.scalars(sa.select(VerificationRequest.deadline)).one() is None
        assert session.get(Account, "acc-1").restrictions_version == 1


def test_a_concurrent_duplicate_loses_at_the_unique_key_and_answers_duplicate(client, registry,
                                                                              monkeypatch) -> None:
    ok(send(client, registry, "account.upserted", {"account_id": "acc-1", **PROFILE}, msg_id="msg_race"))
    audit = count(registry, AuditEntry)
    calls: list[str] = []

    def not_yet_seen(session, webhook_id: str) -> bool:
        # The first check runs before the other delivery committed; the one after the rollback sees it.
        calls.append(webhook_id)
        return len(calls) > 1 and session.get(InboundWebhookReceipt, webhook_id) is not None

    monkeypatch.setattr(inbound, "was_received", not_yet_seen)
    ok(send(client, registry, "account.upserted", {"account_id": "acc-1", **PROFILE, "name": "Changed"},
            msg_id="msg_race"), "duplicate")
    assert calls == ["msg_race", "msg_race"]
    assert count(registry, AuditEntry) == audit
    with registry.sessions() as session:
        assert session.get(Account, "acc-1").display_name == "Ana Lima"


def test_unknown_event_type_is_ignored_but_remembered(client, registry) -> None:
    ok(send(client, registry, "account.renamed_in_the_future", {"whatever": 1}, msg_id="msg_new"), "ignored")
    with registry.sessions() as session:
        assert session.get(InboundWebhookReceipt, "msg_new").type == "account.renamed_in_the_future"
    ok(send(client, registry, "account.renamed_in_the_future", {"whatever": 1}, msg_id="msg_new"), "duplicate")
    assert count(registry, Account) == 0


# ---------------------------------------------------------------- domain errors keep nothing

def test_verification_for_an_unknown_account_is_404_and_a_retry_succeeds_later(client, registry) -> None:
    data = {"account_id": "acc-1", "reason": "new_account", "place_hold": True}
    assert_problem(send(client, registry, "verification.requested", data, msg_id="msg_early"), 404, "account_not_found")
    assert count(registry, InboundWebhookReceipt) == 0
    ok(send(client, registry, "account.upserted", {"account_id": "acc-1", **PROFILE}))
    # The sender retries with the same webhook-id; it was not remembered, so it now takes effect.
    ok(send(client, registry, "verification.requested", data, msg_id="msg_early"))
    assert count(registry, Hold) == 1


def test_a_past_deadline_is_a_problem_without_a_receipt(client, registry) -> None:
    ok(send(client, registry, "account.upserted", {"account_id": "acc-1", **PROFILE}))
    receipts = count(registry, InboundWebhookReceipt)
    past = (registry.now() - dt.timedelta(minutes=1)).isoformat()
    body = assert_problem(send(client, registry, "verification.requested",
                        {"account_id": "acc-1", "reason": "manual", "deadline": past}), 422, "validation_failed")
    assert body["errors"][0]["field"] == "deadline"
    assert count(registry, InboundWebhookReceipt) == receipts
    assert count(registry, VerificationRequest) == 0


# ---------------------------------------------------------------- a closed account: acknowledged, ignored

CLOSED_ACCOUNT_EVENTS = {
    "account.upserted": {"account_id": "acc-1", **PROFILE, "name": "Ana M. Lima", "timezone": "Europe/Lisbon"},
    "verification.requested": {"account_id": "acc-1", "reason": "risk_signal", "place_hold": True},
}


def ignored_as_closed(response) -> None:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json() == {"status": "ignored", "reason": "account_closed"}


def closed_account(client, registry) -> None:
    ok(send(client, registry, "account.upserted", {"account_id": "acc-1", **PROFILE}))
    ok(send(client, registry, "account.closed", {"account_id": "acc-1"}))


def snapshot(registry) -> dict[str, Any]:
    """Everything an event about acc-1 could change, but its receipts."""
    with registry.sessions() as session:
        account = session.get_one(Account, "acc-1")
        profile = {name: getattr(account, name) for name in (
            "display_name", "email", "country", "photo_url", "timezone", "locale", "profile_source_at",
            "updated_at", "restrictions_version", "verification_status", "last_event_seq")}
    return {"account": profile, "requests": count(registry, VerificationRequest), "holds": count(registry, Hold),
            "events": count(registry, OutboxEvent), "audit": count(registry, AuditEntry)}


@pytest.mark.parametrize("event_type", sorted(CLOSED_ACCOUNT_EVENTS))
def test_an_event_for_a_closed_account_is_ignored_its_receipt_kept(client, registry, clock, caplog,
                                                                   event_type: str) -> None:
    closed_account(client, registry)
    clock.advance(minutes=5)
    before = snapshot(registry)
    with caplog.at_level(logging.INFO, logger="verify_service.inbound.events"):
        ignored_as_closed(send(client, registry, event_type, CLOSED_ACCOUNT_EVENTS[event_type], msg_id="msg_late"))
    assert any(r.levelno == logging.INFO and "msg_late" in r.getMessage() and "closed" in r.getMessage()
               for r in caplog.records)
    with registry.sessions() as session:
        receipt = session.get_one(InboundWebhookReceipt, "msg_late")
        assert (receipt.type, receipt.received_at) == (event_type, clock())
    assert snapshot(registry) == before  # no profile written back, no request, hold, event or audit entry
    # The sender missed our 200 and sends it again: the receipt answers.
    ok(send(client, registry, event_type, CLOSED_ACCOUNT_EVENTS[event_type], msg_id="msg_late"), "duplicate")
    assert snapshot(registry) == before


def test_a_closed_account_ignores_a_verification_request_whose_deadline_has_passed(client, registry, clock) -> None:
    # Closing is final: no redelivery could ever apply the request, whatever it holds.
    closed_account(client, registry)
    before = snapshot(registry)
    past = (registry.now() - dt.timedelta(minutes=1)).isoformat()
    ignored_as_closed(send(client, registry, "verification.requested",
                           {"account_id": "acc-1", "reason": "manual", "deadline": past}, msg_id="msg_past"))
    assert count(registry, InboundWebhookReceipt) == 3 and snapshot(registry) == before


@pytest.mark.parametrize("event_type", sorted(CLOSED_ACCOUNT_EVENTS))
def test_an_account_closed_while_the_event_is_applied_is_ignored_too(client, registry, monkeypatch,
                                                                    event_type: str) -> None:
    # The closure commits between the first check and the service's lock: the service refuses, under the
    # lock, and the event is ignored as well; whatever the service did before refusing is undone.
    closed_account(client, registry)
    before = snapshot(registry)
    monkeypatch.setattr(inbound, "is_closed", lambda session, account_id: False)
    name = {"account.upserted": "upsert_account", "verification.requested": "request_verification"}[event_type]
    service = getattr(account_services, name)

    def writes_then_refuses(session, account_id: str, *args: Any, **kwargs: Any) -> Any:
        session.get_one(Account, account_id).restrictions_version += 1  # a write before the refusal
        session.flush()
        return service(session, account_id, *args, **kwargs)

    monkeypatch.setattr(account_services, name, writes_then_refuses)
    ignored_as_closed(send(client, registry, event_type, CLOSED_ACCOUNT_EVENTS[event_type], msg_id="msg_race"))
    assert count(registry, InboundWebhookReceipt) == 3 and snapshot(registry) == before
    ok(send(client, registry, event_type, CLOSED_ACCOUNT_EVENTS[event_type], msg_id="msg_race"), "duplicate")


# ---------------------------------------------------------------- bodies

def test_oversized_body_is_413_and_nothing_is_stored(client, registry) -> None:
    body = event_body("account.upserted", {"account_id": "acc-1", **PROFILE, "padding": "x" * (256 * 1024)})
    assert len(body) < 1024 * 1024  # under the app-wide limit: the webhook's own limit applies
    assert_problem(send_raw(client, registry, body), 413, "payload_too_large")
    nothing_stored(registry)


def test_a_body_just_under_the_limit_is_accepted(client, registry) -> None:
    data = {"account_id": "acc-1", **PROFILE, "padding": ""}
    data["padding"] = "x" * (256 * 1024 - len(event_body("account.upserted", data)))
    body = event_body("account.upserted", data)
    assert len(body) == 256 * 1024
    ok(send_raw(client, registry, body))


def test_signed_non_json_is_400(client, registry) -> None:
    assert_problem(send_raw(client, registry, "{not json"), 400, "malformed_request")
    nothing_stored(registry)


@pytest.mark.parametrize(("body", "field"), [
    (event_body("account.upserted", {"account_id": "acc-1", **PROFILE, "email": "nope"}), "data.email"),
    (event_body("account.upserted", {"name": "Ana", "email": "a@example.com", "country": "PT"}), "data.account_id"),
    (event_body("verification.requested", {"account_id": "acc-1", "reason": "whim"}), "data.reason"),
    (event_body("account.closed", {"account_id": "has space"}), "data.account_id"),
    (json.dumps({"type": "account.closed", "data": {"account_id": "acc-1"}}), "timestamp"),
    (json.dumps({"type": "account.closed", "timestamp": "2026-11-22T08:59:00", "data": {}}), "timestamp"),
    (json.dumps({"type": "x" * 101, "timestamp": "2026-11-22T08:59:00Z", "data": {}}), "type"),
    (json.dumps({"type": "account.closed", "timestamp": "2026-11-22T08:59:00Z", "data": [1]}), "data"),
    (json.dumps([1, 2]), "body"),
])
def test_wrong_schema_is_422_naming_the_field(client, registry, body: str, field: str) -> None:
    response = assert_problem(send_raw(client, registry, body), 422, "validation_failed")
    assert field in [error["field"] for error in response["errors"]]
    nothing_stored(registry)


# ---------------------------------------------------------------- signatures

@pytest.mark.parametrize("minutes", [-6, 6])
def test_timestamps_more_than_five_minutes_away_are_401(client, registry, minutes: int) -> None:
    body = event_body("account.upserted", {"account_id": "acc-1", **PROFILE})
    at = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=minutes)
    headers = signed_headers(registry.settings.inbound_webhook_secrets[0], body, at=at)
    assert_problem(send_raw(client, registry, body, headers), 401, "unauthorized")
    nothing_stored(registry)


def test_timestamps_within_the_tolerance_are_accepted(client, registry) -> None:
    body = event_body("account.upserted", {"account_id": "acc-1", **PROFILE})
    at = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=4)
    ok(send_raw(client, registry, body, signed_headers(registry.settings.inbound_webhook_secrets[0], body, at=at)))


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_each_missing_header_is_401(client, registry, missing: str) -> None:
    body = event_body("account.upserted", {"account_id": "acc-1", **PROFILE})
    headers = signed_headers(registry.settings.inbound_webhook_secrets[0], body)
    del headers[missing]
    assert_problem(send_raw(client, registry, body, headers), 401, "unauthorized")
    nothing_stored(registry)


def test_wrong_signatures_are_401(client, registry) -> None:
    body = event_body("account.upserted", {"account_id": "acc-1", **PROFILE})
    assert_problem(send_raw(client, registry, body, signed_headers(OTHER_SECRET, body)), 401, "unauthorized")
    headers = signed_headers(registry.settings.inbound_webhook_secrets[0], body)
    tampered = body.replace("Ana Lima", "Eve Lima")
    assert_problem(send_raw(client, registry, tampered, headers), 401, "unauthorized")
    other_id = {**headers, "webhook-id": "msg_other"}  # the id is signed too
    assert_problem(send_raw(client, registry, body, other_id), 401, "unauthorized")
    nothing_stored(registry)


def test_a_header_with_several_signatures_is_accepted_when_one_matches(client, registry) -> None:
    body = event_body("account.upserted", {"account_id": "acc-1", **PROFILE})
    headers = signed_headers(registry.settings.inbound_webhook_secrets[0], body)
    wrong = signed_headers(OTHER_SECRET, body, msg_id=headers["webhook-id"])["webhook-signature"]
    headers["webhook-signature"] = f"v1,bad v2,xyz {wrong}  {headers['webhook-signature']}"
    ok(send_raw(client, registry, body, headers))


def test_a_rotated_secret_is_accepted(database_url: str, tmp_path: Path, clock: FakeClock) -> None:
    old = "whsec_" + base64.b64encode(b"the secret being retired").decode()
    app = create_app(make_settings(database_url, tmp_path, inbound_webhook_secrets=(old, OTHER_SECRET)))
    registry = app.extensions[KEY]
    registry.clock = clock
    try:
        client = app.test_client()
        ok(send(client, registry, "account.upserted", {"account_id": "acc-1", **PROFILE}, secret=OTHER_SECRET))
        ok(send(client, registry, "account.upserted", {"account_id": "acc-2", **PROFILE}, secret=old))
        assert count(registry, Account) == 2
    finally:
        registry.engine.dispose()


def test_a_malformed_secret_stops_the_app_at_start(database_url: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="secret #2") as raised:
        create_app(make_settings(database_url, tmp_path, inbound_webhook_secrets=(OTHER_SECRET, "whsec_n0t b64!")))
    assert "n0t" not in str(raised.value)


@pytest.mark.parametrize("header", [
    {"webhook-signature": "v1"},
    {"webhook-signature": "garbage"},
    {"webhook-signature": "v1,!!!notbase64"},
    {"webhook-signature": "v2,xxx"},
    {"webhook-signature": "v1,abc"},
    {"webhook-signature": "v1,a,b"},
    {"webhook-signature": ","},
    {"webhook-signature": "   "},
    {"webhook-timestamp": "not-a-number"},
    {"webhook-timestamp": "1e9"},
    {"webhook-timestamp": "nan"},
    {"webhook-timestamp": "99999999999999999999"},
    {"webhook-timestamp": "-1"},
    {"webhook-id": "has space"},
    {"webhook-id": "x" * 256},
])
def test_malformed_signature_headers_are_401_not_500(client, registry, header: dict[str, str]) -> None:
    body = event_body("account.upserted", {"account_id": "acc-1", **PROFILE})
    headers = {**signed_headers(registry.settings.inbound_webhook_secrets[0], body), **header}
    assert_problem(send_raw(client, registry, body, headers), 401, "unauthorized")
    nothing_stored(registry)


def test_the_timestamp_must_be_the_signed_whole_seconds(client, registry) -> None:
    # The library would read "1700000000.0" as a number and check the signature
    # of "1700000000": a header other than the one that was signed.
    body = event_body("account.upserted", {"account_id": "acc-1", **PROFILE})
    headers = signed_headers(registry.settings.inbound_webhook_secrets[0], body)
    headers["webhook-timestamp"] += ".0"
    assert_problem(send_raw(client, registry, body, headers), 401, "unauthorized")
    nothing_stored(registry)


def test_a_non_utf8_body_is_401_not_500(client, registry) -> None:
    body = b'{"type": "account.closed", "data": {"account_id": "\xff\xfe"}}'
    headers = signed_headers(registry.settings.inbound_webhook_secrets[0], body.decode("latin-1"))
    assert_problem(send_raw(client, registry, body, headers), 401, "unauthorized")
    nothing_stored(registry)


def test_only_post_is_allowed(client) -> None:
    assert_problem(client.get(URL), 405, "method_not_allowed")


def test_an_older_snapshot_arriving_late_does_not_roll_the_profile_back(client, registry) -> None:
    newer = {"account_id": "acc-1", **PROFILE, "name": "Ana M. Lima"}
    ok(send(client, registry, "account.upserted", newer, timestamp="2026-11-22T08:59:30Z"))
    # A retry of an earlier snapshot, delivered after the newer one.
    ok(send(client, registry, "account.upserted", {"account_id": "acc-1", **PROFILE},
            timestamp="2026-11-22T08:59:00Z"))
    with registry.sessions() as session:
        assert session.get(Account, "acc-1").display_name == "Ana M. Lima"
    ok(send(client, registry, "account.upserted", {"account_id": "acc-1", **PROFILE, "name": "Ana Lima-Souza"},
            timestamp="2026-11-22T09:00:00Z"))
    with registry.sessions() as session:
        assert session.get(Account, "acc-1").display_name == "Ana Lima-Souza"


def test_old_receipts_are_purged_after_the_retention_window(app, client, registry, clock) -> None:
    from jobs.maintenance import purge_webhook_receipts

    ok(send(client, registry, "account.upserted", {"account_id": "acc-1", **PROFILE}, msg_id="msg_old"))
    clock.advance(days=29)
    assert purge_webhook_receipts(app) == 0
    clock.advance(days=2)
    assert purge_webhook_receipts(app) == 1
    assert count(registry, InboundWebhookReceipt) == 0
