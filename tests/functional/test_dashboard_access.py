"""Every dashboard view checks the signed-in staff member's role on the server (both backends).

The test walks the app's URL map, so a view added later without ``@staff_page``
(or with the wrong role) fails here without anyone writing a test for it.
"""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from flask import Flask

from tests.support.staff import csrf_token, signed_in
from verify_service.audit.models import AuditEntry
from verify_service.registry import Registry
from verify_service.staff.models import Role

# Pages anyone may open: the sign-in steps (they have their own tests).
PUBLIC = re.compile(r"^staff\.")
BLUEPRINTS = ("staff", "review", "leads", "account")


def dashboard_rules(app: Flask) -> list[tuple[str, str, str]]:
    """(endpoint, method, path with dummy arguments) of every dashboard route."""
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.split(".")[0] not in BLUEPRINTS or PUBLIC.match(rule.endpoint):
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", "1", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((rule.endpoint, method, path))
    return found


def test_every_dashboard_view_declares_its_role(app: Flask) -> None:
    rules = dashboard_rules(app)
    assert len(rules) >= 10, "the dashboard views are not registered"
    missing = [endpoint for endpoint, _, _ in rules
               if getattr(app.view_functions[endpoint], "required_role", None) is None]
    assert missing == [], f"views without @staff_page: {missing}"


def test_signed_out_visitors_are_sent_to_sign_in(app: Flask) -> None:
    client = app.test_client()
    for endpoint, method, path in dashboard_rules(app):
        if method == "GET":
            response = client.get(path)
            assert response.status_code == 303, (endpoint, response.status_code)
            assert "/review/sign-in" in response.headers["Location"]


def denials(registry: Registry, reviewer_id: int) -> int:
    with registry.sessions() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "access.denied", AuditEntry.actor == f"reviewer:{reviewer_id}")) or 0


@pytest.mark.parametrize("role", [Role.REVIEWER, Role.LEAD])
def test_a_role_below_the_view_gets_403_and_the_denial_is_audited(app: Flask, registry: Registry,
                                                                  role: Role) -> None:
    client = app.test_client()
    reviewer = signed_in(client, registry, role=role)
    token = csrf_token(client, "/review/sign-in")
    refused = 0
    for endpoint, method, path in dashboard_rules(app):
        needed: Role = app.view_functions[endpoint].required_role
        before = denials(registry, reviewer.id)
        response = client.open(path, method=method, data={"csrf_token": token},
                               headers={"X-CSRFToken": token})
        assert response.status_code != 500, (endpoint, method)
        if role.includes(needed):
            # Allowed in: the view may still refuse this (dummy) request, but never for the role.
            assert denials(registry, reviewer.id) == before, (endpoint, method, "allowed role refused")
        else:
            assert response.status_code == 403, (endpoint, method, response.status_code)
            assert denials(registry, reviewer.id) == before + 1, (endpoint, method, "denial not audited")
            refused += 1
    if role is Role.REVIEWER:
        assert refused > 0  # the lead pages exist and refuse a plain reviewer


def test_background_polling_does_not_keep_a_staff_session_alive(app: Flask, registry: Registry, clock) -> None:
    client = app.test_client()
    signed_in(client, registry, role=Role.REVIEWER)
    poll = {"Accept": "application/json"}
    assert client.get("/review").status_code == 200  # a page view: the idle clock starts now
    clock.advance(minutes=7)
    assert client.get("/review", headers=poll).status_code == 200
    clock.advance(minutes=7)
    assert client.get("/review", headers=poll).status_code == 200
    clock.advance(minutes=2)  # 16 minutes after the last page view, polled all along
    assert client.get("/review", headers=poll).status_code == 401
    assert client.get("/review").status_code == 303
