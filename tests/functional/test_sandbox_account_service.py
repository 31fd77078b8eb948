"""/sandbox/account-service: development's receiver of the outbox's webhooks; absent in production."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from integrations.account_service import OutboundMessage, WebhookSender
from integrations.sandbox_account_service import PATH, SandboxWebhook, received
from tests.conftest import ACCOUNT_SERVICE_SECRET
from tests.support.sandbox import development_and_production
from verify_service.registry import Registry

OTHER_SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def _post(client: FlaskClient, secret: str, *, event_id: str = "evt_1", kind: str = "hold.placed",
          data: dict[str, object] | None = None, signed_at: dt.datetime | None = None):  # type: ignore[no-untyped-def]
    """POST one event signed with ``secret`` by the outbox's own sender, as the relay would."""
    now = dt.datetime.now(dt.timezone.utc)
    message = OutboundMessage(event_id, kind, now, data or {"account_id": "acc-1", "version": 2}, attempt=1)
    body = message.body()
    headers = WebhookSender("http://unused.invalid", secret).headers(message, body, signed_at or now)
    return client.post(PATH, data=body.encode(), headers=headers)


def _stored(registry: Registry) -> list[SandboxWebhook]:
    with registry.sessions() as db:
        return list(reversed(received(db)))


def test_a_signed_delivery_is_verified_kept_and_listed(app: Flask, registry: Registry) -> None:
    client = app.test_client()
    assert "No webhooks yet" in client.get(PATH).get_data(as_text=True)
    answer = _post(client, ACCOUNT_SERVICE_SECRET, data={"account_id": "acc-1", "note": "<b>bold</b>"})
    assert answer.status_code == 204
    [stored] = _stored(registry)
    assert (stored.webhook_id, stored.event_type, stored.attempt, stored.signature_valid) == (
        "evt_1", "hold.placed", "1", True)
    page = client.get(PATH)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    assert "hold.placed" in html and "Valid — answered 204" in html and "evt_1" in html
    assert "&#34;account_id&#34;: &#34;acc-1&#34;" in html  # the payload, indented
    assert "&lt;b&gt;bold&lt;/b&gt;" in html and "<b>bold</b>" not in html  # the payload is text, never markup


def test_a_bad_signature_is_refused_and_shown_as_invalid(app: Flask, registry: Registry) -> None:
    client = app.test_client()
    assert _post(client, OTHER_SECRET, event_id="evt_forged").status_code == 401
    old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=30)
    assert _post(client, ACCOUNT_SERVICE_SECRET, event_id="evt_stale", signed_at=old).status_code == 401
    unsigned = client.post(PATH, data=b"not json", headers={"Content-Type": "text/plain"})
    assert unsigned.status_code == 401
    nested = client.post(PATH, data=b"[" * 100_000 + b"]" * 100_000, headers={"Content-Type": "application/json"})
    assert nested.status_code == 401  # deeper than the JSON parser goes: still a plain refusal, never a 500
    forged, stale, bare, deep = _stored(registry)
    assert not any(row.signature_valid for row in (forged, stale, bare, deep))
    assert bare.event_type == deep.event_type == "(not JSON)" and bare.webhook_id == ""
    html = client.get(PATH).get_data(as_text=True)
    assert html.count("Invalid — answered 401") == 4 and "Valid — answered 204" not in html
    assert "evt_forged" in html and "evt_stale" in html


def test_newest_delivery_first(app: Flask) -> None:
    client = app.test_client()
    _post(client, ACCOUNT_SERVICE_SECRET, event_id="evt_a", kind="hold.placed")
    _post(client, ACCOUNT_SERVICE_SECRET, event_id="evt_b", kind="verification.completed")
    html = client.get(PATH).get_data(as_text=True)
    assert html.index("evt_b") < html.index("evt_a")


def test_development_serves_it_and_production_does_not(database_url: str, tmp_path: Path) -> None:
    with development_and_production(database_url, tmp_path) as (development, production):
        assert development.test_client().get(PATH).status_code == 200
        assert production.test_client().get(PATH).status_code == 404
        assert _post(production.test_client(), ACCOUNT_SERVICE_SECRET).status_code == 404
        assert PATH not in {rule.rule for rule in production.url_map.iter_rules()}
