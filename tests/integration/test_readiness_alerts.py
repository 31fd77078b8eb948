"""/readyz alerts on webhook events waiting longer than OUTBOX_LAG_ALERT (the outbox lag bound)."""

from __future__ import annotations

import sqlalchemy as sa

from tests.conftest import FakeClock
from tests.integration.test_outbox_relay import make_events
from verify_service.db import unit_of_work
from verify_service.health import OUTBOX_LAG_ALERT
from verify_service.registry import Registry
from verify_service.webhooks.models import DeliveryStatus, OutboxEvent


def test_readyz_alerts_once_the_oldest_undelivered_event_is_past_the_bound(client, registry: Registry,
                                                                           clock: FakeClock) -> None:
    def alerts() -> dict[str, str]:
        return {a["code"]: a["detail"] for a in client.get("/readyz").get_json()["alerts"]}

    status = client.get("/readyz").status_code
    make_events(registry.sessions, clock, accounts=1, per_account=1)  # no webhook URL here: they wait
    clock.advance(seconds=OUTBOX_LAG_ALERT.total_seconds())
    assert set(alerts()) == {"webhook_url_missing"}  # the reason they wait; not lagging yet
    clock.advance(minutes=2)
    detail = alerts()["outbox_lagging"]
    assert "12 min old" in detail and "verify-service outbox status" in detail
    assert client.get("/readyz").status_code == status  # an alert, never a readiness failure
    with unit_of_work(registry.sessions) as session:
        session.execute(sa.update(OutboxEvent).values(status=DeliveryStatus.DELIVERED))
    assert alerts() == {}


def test_readyz_names_a_missing_webhook_url_as_the_reason_events_wait(client, registry: Registry,
                                                                      clock: FakeClock) -> None:
    def alerts() -> dict[str, str]:
        return {a["code"]: a["detail"] for a in client.get("/readyz").get_json()["alerts"]}

    assert registry.settings.account_service_webhook_url == ""
    assert "webhook_url_missing" not in alerts()  # nothing pending: nothing to say
    make_events(registry.sessions, clock, accounts=2, per_account=1)
    detail = alerts()["webhook_url_missing"]
    assert detail.startswith("2 webhook event(s) are pending because VERIFY_ACCOUNT_SERVICE_WEBHOOK_URL is not set")
    assert "/sandbox/account-service" in detail
    registry.settings = registry.settings.replace(account_service_webhook_url="https://accounts.example/hooks")
    assert "webhook_url_missing" not in alerts()  # configured: events wait for the relay, not for a setting
