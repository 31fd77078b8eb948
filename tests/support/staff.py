"""Signing staff in for functional tests without going through the sign-in pages (those have their own tests)."""

from __future__ import annotations

import re

from flask.testing import FlaskClient

from verify_service.db import unit_of_work
from verify_service.registry import Registry
from verify_service.staff.models import Reviewer, Role, Stage
from verify_service.staff.passwords import create_reviewer, find_reviewer
from verify_service.staff import sessions

PASSWORD = "correct-horse-battery"
CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


def staff_member(registry: Registry, *, role: Role = Role.REVIEWER, email: str | None = None,
                 name: str | None = None) -> Reviewer:
    """A staff account (created once per email)."""
    email = email or f"{role.value}@example.com"
    with unit_of_work(registry.sessions) as session:
        found = find_reviewer(session, email)
        if found is None:
            found = create_reviewer(session, email=email, display_name=name or email.split("@")[0].title(),
                                    role=role, password=PASSWORD, actor="test", now=registry.now())
        session.expunge(found)
        return found


def signed_in(client: FlaskClient, registry: Registry, *, role: Role = Role.REVIEWER,
              email: str | None = None) -> Reviewer:
    """``client`` now carries a fully signed-in staff session of a (new) staff member with ``role``."""
    reviewer = staff_member(registry, role=role, email=email)
    with unit_of_work(registry.sessions) as session:
        token = sessions.open_session(session, reviewer.id, stage=Stage.ACTIVE, ip="127.0.0.1", now=registry.now())
    secure = registry.settings.base_url.startswith("https://")
    client.set_cookie("__Host-verify_staff" if secure else "verify_staff", token)
    return reviewer


def csrf_token(client: FlaskClient, path: str) -> str:
    """The CSRF token from a dashboard page (every page carries it in a meta tag)."""
    page = client.get(path)
    match = CSRF.search(page.get_data(as_text=True))
    assert match, f"no CSRF token on {path} ({page.status_code})"
    return match.group(1)
