"""Who may do what on the reviewer dashboard: every role × action, allowed and denied (both backends).

The world of each case: Rita (reviewer) has claimed Ana's session, and her
fail on Bo's session waits for a second review; Cy waits unclaimed.
Refusals must change nothing.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import Api
from tests.support.fake_meet import FakeMeetGateway
from tests.support.review_desk import Staff, attend, page_text, staff, waiting
from tests.support.staff import csrf_token, signed_in
from verify_service.calls.models import CallSession, OutcomeRecord
from verify_service.registry import Registry
from verify_service.review.models import IdentityDocument
from verify_service.staff.models import Role


@dataclasses.dataclass
class World:
    rita: Staff
    ana: str      # claimed by Rita
    bo: str       # Rita's fail, waiting for a second review
    cy: str       # waiting, unclaimed
    outcome: str  # Rita's fail on Bo's session


@pytest.fixture
def world(app: Flask, api: Api, registry: Registry) -> World:
    gateway = registry.meet = FakeMeetGateway()
    ana, bo, cy = (waiting(api, registry, gateway, f"acc-{n}", name=n.title()) for n in ("ana", "bo", "cy"))
    rita = staff(app, registry, email="rita@example.com")
    assert rita.claim(bo).status_code == 303
    attend(registry, bo, reviewer=rita.reviewer)
    assert rita.decide(bo, "failed", reasons=("id_mismatch",)).status_code == 303
    assert rita.claim(ana).status_code == 303
    with registry.sessions() as session:
        outcome = session.scalars(sa.select(OutcomeRecord.id)).one()
    return World(rita, ana, bo, cy, outcome)


def anonymous(app: Flask, registry: Registry) -> Staff:
    """A browser with a valid CSRF token but no staff session (signed out)."""
    client = app.test_client()
    reviewer = signed_in(client, registry, email="gone@example.com")
    token = csrf_token(client, "/review/mine")
    client.delete_cookie("verify_staff")
    return Staff(client, reviewer, token)


def actor(name: str, app: Flask, registry: Registry, world: World) -> Staff:
    if name == "anonymous":
        return anonymous(app, registry)
    if name == "rita":
        return world.rita
    role = {"bo": Role.REVIEWER, "lead": Role.LEAD, "admin": Role.ADMIN}[name]
    return staff(app, registry, role, email=f"{name}@example.com")


def snapshot(registry: Registry) -> tuple[Any, ...]:
    with registry.sessions() as session:
        calls = session.execute(sa.select(CallSession.id, CallSession.status, CallSession.claimed_by_id)
                                .order_by(CallSession.id)).all()
        outcomes = session.execute(sa.select(OutcomeRecord.id, OutcomeRecord.final,
                                             OutcomeRecord.second_decision)).all()
        documents = session.scalar(sa.select(sa.func.count()).select_from(IdentityDocument))
        return tuple(calls), tuple(outcomes), documents


ACTORS = ["anonymous", "rita", "bo", "lead", "admin"]
JSON = {"Accept": "application/json"}
# action → (method, path template, form, headers, expected status per actor in ACTORS order)
ACTIONS: dict[str, tuple[str, str, dict[str, Any], dict[str, str], tuple[int, ...]]] = {
    "queue": ("GET", "/review", {}, {}, (303, 200, 200, 200, 200)),
    "queue_json": ("GET", "/review", {}, JSON, (401, 200, 200, 200, 200)),
    "mine": ("GET", "/review/mine", {}, {}, (303, 200, 200, 200, 200)),
    "session": ("GET", "/review/sessions/{ana}", {}, {}, (303, 200, 403, 200, 200)),
    "decided_session": ("GET", "/review/sessions/{bo}", {}, {}, (303, 200, 403, 200, 200)),
    "attendance": ("GET", "/review/sessions/{ana}/attendance", {}, JSON, (401, 200, 403, 200, 200)),
    "claim_free": ("POST", "/review/sessions/{cy}/claim", {}, {}, (401, 303, 303, 303, 303)),
    "claim_taken": ("POST", "/review/sessions/{ana}/claim", {}, {}, (401, 303, 409, 409, 409)),
    "release": ("POST", "/review/sessions/{ana}/release", {}, {}, (401, 303, 403, 303, 303)),
    "identity": ("POST", "/review/sessions/{ana}/identity-document",
                 {"doc_type": "passport", "issuing_country": "PT", "document_number": "P1234567"}, {},
                 (401, 303, 403, 303, 303)),
    "outcome": ("POST", "/review/sessions/{ana}/outcome", {"result": "inconclusive", "reason_codes": "poor_video"},
                {}, (401, 303, 403, 303, 303)),
    "second_reviews": ("GET", "/review/second-reviews", {}, {}, (303, 403, 403, 200, 200)),
    "second_review": ("POST", "/review/outcomes/{outcome}/second-review", {"decision": "confirm"}, {},
                      (401, 403, 403, 303, 303)),
}


@pytest.mark.parametrize("who", ACTORS)
@pytest.mark.parametrize("action", list(ACTIONS))
def test_every_role_and_action(app: Flask, registry: Registry, world: World, who: str, action: str) -> None:
    method, template, form, headers, expected = ACTIONS[action]
    client = actor(who, app, registry, world)
    path = template.format(ana=world.ana, bo=world.bo, cy=world.cy, outcome=world.outcome)
    before = snapshot(registry)
    if method == "GET":
        response = client.get(path, headers=headers)
    else:
        response = client.post(path, form, headers=headers)
    wanted = expected[ACTORS.index(who)]
    assert response.status_code == wanted, (action, who, page_text(response)[:400])
    if wanted == 303 and who == "anonymous":
        assert "/review/sign-in" in response.headers["Location"]
    if wanted >= 400:
        assert snapshot(registry) == before, "a refusal changed something"
    if wanted == 403 and who == "bo" and not action.startswith("second_review"):
        assert "claimed" in page_text(response)  # the page says why: someone else has the session


@pytest.mark.parametrize("role", [Role.REVIEWER, Role.LEAD])
@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/review/sessions/nope"), ("GET", "/review/sessions/nope/attendance"),
    ("POST", "/review/sessions/nope/claim"), ("POST", "/review/sessions/nope/release"),
    ("POST", "/review/sessions/nope/identity-document"), ("POST", "/review/sessions/nope/outcome"),
])
def test_unknown_sessions_are_not_found(app: Flask, registry: Registry, role: Role, method: str,
                                        path: str) -> None:
    desk = staff(app, registry, role)
    form = {"doc_type": "passport", "issuing_country": "PT", "document_number": "P1234567", "result": "passed"}
    response = desk.get(path) if method == "GET" else desk.post(path, form)
    assert response.status_code == 404, page_text(response)[:300]


def test_an_unknown_outcome_is_not_found(app: Flask, registry: Registry) -> None:
    lead = staff(app, registry, Role.LEAD)
    assert lead.second_review("nope", "confirm").status_code == 404


@pytest.mark.parametrize("token", [None, "forged"])
def test_posts_without_a_valid_csrf_token_are_refused_and_change_nothing(
        app: Flask, registry: Registry, world: World, token: str | None) -> None:
    client: FlaskClient = world.rita.client
    before = snapshot(registry)
    data: dict[str, str] = {} if token is None else {"csrf_token": token}
    for path, form in [(f"/review/sessions/{world.cy}/claim", {}),
                       (f"/review/sessions/{world.ana}/release", {}),
                       (f"/review/sessions/{world.ana}/outcome", {"result": "passed"}),
                       (f"/review/sessions/{world.ana}/identity-document", {"document_number": "P1234567"})]:
        response = client.post(path, data={**data, **form})
        assert response.status_code == 400 and "This page has expired" in page_text(response)
    assert snapshot(registry) == before
