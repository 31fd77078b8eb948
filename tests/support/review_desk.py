"""The reviewer dashboard from the outside: staff browsers and freelancers waiting in the queue."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import Api
from tests.support.fake_meet import FakeMeetGateway
from tests.support.staff import csrf_token, signed_in
from verify_service.calls.models import CallSession
from verify_service.freelancer import journey
from verify_service.registry import Registry
from verify_service.review.models import Reviewer, Role
from verify_service.webhooks.models import OutboxEvent

LOCATION_ID = re.compile(r"/review/sessions/([^/?#]+)")


@dataclasses.dataclass
class Staff:
    """A signed-in staff browser that posts forms with the page's CSRF token."""

    client: FlaskClient
    reviewer: Reviewer
    token: str

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.client.get(path, **kwargs)

    def get_json(self, path: str) -> Any:
        return self.client.get(path, headers={"Accept": "application/json"})

    def post(self, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        return self.client.post(path, data={"csrf_token": self.token, **(data or {})}, **kwargs)

    def claim(self, call_id: str, **kwargs: Any) -> Any:
        return self.post(f"/review/sessions/{call_id}/claim", **kwargs)

    def record_id(self, call_id: str, number: str, **fields: str) -> Any:
        form = {"doc_type": "passport", "issuing_country": "PT", "expires_on": "2030-01-31",
                "document_number": number, **fields}
        return self.post(f"/review/sessions/{call_id}/identity-document", form)

    def decide(self, call_id: str, result: str, reasons: tuple[str, ...] = (), notes: str = "",
               checklist: tuple[int, ...] = ()) -> Any:
        form: dict[str, Any] = {"result": result, "notes": notes, "reason_codes": list(reasons),
                                "checklist": [str(i) for i in checklist]}
        return self.post(f"/review/sessions/{call_id}/outcome", form)

    def second_review(self, outcome_id: str, decision: str, notes: str = "") -> Any:
        return self.post(f"/review/outcomes/{outcome_id}/second-review", {"decision": decision, "notes": notes})


def staff(app: Flask, registry: Registry, role: Role = Role.REVIEWER, email: str | None = None) -> Staff:
    client = app.test_client()
    reviewer = signed_in(client, registry, role=role, email=email)
    return Staff(client, reviewer, csrf_token(client, "/review/mine"))


def waiting(api: Api, registry: Registry, gateway: FakeMeetGateway, account_id: str, *, name: str = "Ana Lima",
            country: str = "PT", **profile: Any) -> str:
    """``account_id`` asked to verify (with a pending hold) and waiting in a call; returns the session id."""
    assert api.put_account(account_id, name=name, country=country, email=f"{account_id}@example.com",
                           **profile).status_code in (200, 201)
    assert api.request_verification(account_id, {"reason": "new_account", "place_hold": True}).status_code == 201
    call_id, _ = journey.start_call(registry.sessions, gateway, account_id, settings=registry.settings,
                                    now=registry.now())
    return call_id


def load_call(registry: Registry, call_id: str) -> CallSession:
    with registry.sessions() as session:
        return session.get_one(CallSession, call_id)


def events(registry: Registry, event_type: str | None = None) -> list[OutboxEvent]:
    with registry.sessions() as session:
        stmt = sa.select(OutboxEvent).order_by(OutboxEvent.account_id, OutboxEvent.seq)
        if event_type:
            stmt = stmt.where(OutboxEvent.type == event_type)
        return list(session.scalars(stmt))


def page_text(response: Any) -> str:
    return response.get_data(as_text=True)
