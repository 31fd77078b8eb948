"""The "Your account" page: change your own password, make new recovery codes (both backends).

Both need a fresh TOTP code (the password also the current password); a code already used — the one
that signed you in included — is refused, and each change mails its owner a notice.
"""

from __future__ import annotations

import re
from typing import Any

import pyotp
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import FakeClock
from tests.functional.test_staff_sign_in import code_step, enrol, other_code, password_step, sign_out
from tests.support.mail import mailbox
from tests.support.staff import PASSWORD, csrf_token
from verify_service.audit.models import AuditEntry
from verify_service.registry import Registry
from verify_service.staff.models import StaffSession

NEW_PASSWORD = "a brand new passphrase"


def change(client: FlaskClient, *, current: str = PASSWORD, new: str = NEW_PASSWORD, confirm: str | None = None,
           code: str) -> Any:
    return client.post("/review/account/password", data={
        "csrf_token": csrf_token(client, "/review/account"), "current_password": current, "new_password": new,
        "confirm": new if confirm is None else confirm, "code": code})


def new_codes(client: FlaskClient, code: str) -> Any:
    return client.post("/review/account/recovery-codes",
                       data={"csrf_token": csrf_token(client, "/review/account"), "code": code})


def signed_in_again(app: Flask, email: str, password: str, code: str) -> bool:
    browser = app.test_client()
    if password_step(browser, email, password).status_code != 303:
        return False
    return code_step(browser, code).status_code == 303


def actions(registry: Registry, action: str) -> list[AuditEntry]:
    with registry.sessions() as session:
        return list(session.scalars(sa.select(AuditEntry).where(AuditEntry.action == action)))


def test_changing_your_password_needs_the_current_one_and_a_fresh_code(app: Flask, registry: Registry,
                                                                       clock: FakeClock) -> None:
    client = app.test_client()
    rita, secret, _ = enrol(client, registry, clock, email="rita@example.com")
    totp = pyotp.TOTP(secret)
    other_desk = app.test_client()
    clock.advance(seconds=30)
    password_step(other_desk, "rita@example.com")
    assert code_step(other_desk, totp.at(clock())).status_code == 303  # a second session, with this step's code
    page = client.get("/review/account")
    assert page.status_code == 200 and "Your account" in page.get_data(as_text=True)
    assert 'autocomplete="current-password"' in page.get_data(as_text=True)

    replayed = change(client, code=totp.at(clock()))  # the code that just signed in: its step is spent
    assert replayed.status_code == 401 and "already used" in replayed.get_data(as_text=True)
    clock.advance(seconds=30)
    fresh = totp.at(clock())
    wrong_password = change(client, current="not my password", code=fresh)
    assert wrong_password.status_code == 401 and "not your current password" in wrong_password.get_data(True)
    assert change(client, code=other_code(secret, clock)).status_code == 401
    assert change(client, code="").status_code == 401
    short = change(client, new="too short", code=fresh)
    assert short.status_code == 422 and "at least 12 characters" in short.get_data(as_text=True)
    differ = change(client, confirm=NEW_PASSWORD + "?", code=fresh)
    assert differ.status_code == 422 and "not the same" in differ.get_data(as_text=True)
    assert mailbox(registry, "rita@example.com")[-1].subject == "Two-step verification was set up"  # nothing yet

    changed = change(client, code=fresh)  # the failures above did not spend the fresh code
    assert changed.status_code == 303 and changed.headers["Location"] == "/review/account"
    assert "Your password was changed" in client.get("/review/account").get_data(as_text=True)  # new cookie
    assert other_desk.get("/review/account").status_code == 303  # every other session ended
    replay_again = change(client, current=NEW_PASSWORD, new="yet another passphrase", code=fresh)
    assert replay_again.status_code == 401  # the code that changed it cannot be used twice either
    clock.advance(minutes=1)
    assert not signed_in_again(app, "rita@example.com", PASSWORD, totp.at(clock()))
    assert signed_in_again(app, "rita@example.com", NEW_PASSWORD, totp.at(clock()))
    notice = mailbox(registry, "rita@example.com")[-1]
    assert notice.subject == "Your password was changed" and ", by you, on " in notice.body
    [entry] = actions(registry, "staff.password_changed")
    assert entry.actor == f"reviewer:{rita.id}" and entry.details == {"sessions_revoked": 2}
    failed = actions(registry, "staff.confirmation_failed")
    assert [e.details["reason"] for e in failed] == ["wrong_code", "wrong_password", "wrong_code", "wrong_code",
                                                      "wrong_code"]


def test_new_recovery_codes_replace_the_old_ones_and_are_shown_once(app: Flask, registry: Registry,
                                                                    clock: FakeClock) -> None:
    client = app.test_client()
    rita, secret, old = enrol(client, registry, clock, email="rita@example.com")
    totp = pyotp.TOTP(secret)
    assert "10 unused recovery codes" in client.get("/review/account").get_data(as_text=True)
    replayed = new_codes(client, totp.at(clock()))  # the enrolment's code
    assert replayed.status_code == 401
    assert new_codes(client, old[0]).status_code == 401  # a recovery code does not make recovery codes
    clock.advance(seconds=30)
    made = new_codes(client, totp.at(clock()))
    body = made.get_data(as_text=True)
    codes = re.findall(r"<li><code>([a-z0-9-]+)</code></li>", body)
    assert made.status_code == 200 and len(set(codes)) == 10 and not set(codes) & set(old)
    assert made.headers["Cache-Control"] == "no-store"
    again = client.get("/review/account").get_data(as_text=True)
    assert "<li><code>" not in again and not any(code in again for code in codes)
    sign_out(client)
    clock.advance(minutes=1)
    assert not signed_in_again(app, "rita@example.com", PASSWORD, old[1])  # the old ones stopped working
    assert signed_in_again(app, "rita@example.com", PASSWORD, codes[0])
    notice = mailbox(registry, "rita@example.com")[-1]
    assert notice.subject == "New recovery codes were made" and "the old ones no longer work" in notice.body
    assert ", by you, on " in notice.body
    [entry] = actions(registry, "staff.recovery_codes_regenerated")
    assert entry.subject_id == str(rita.id) and entry.details == {"recovery_codes": 10}
    flat = str([e.details for e in actions(registry, "staff.recovery_codes_regenerated")])
    assert not any(code in flat for code in codes)


def test_guessing_codes_on_the_account_page_locks_out(app: Flask, registry: Registry, clock: FakeClock) -> None:
    client = app.test_client()
    _, secret, _ = enrol(client, registry, clock, email="rita@example.com")
    statuses = [new_codes(client, other_code(secret, clock)).status_code for _ in range(5)]
    assert statuses == [401, 401, 401, 401, 429]
    clock.advance(seconds=30)
    locked = new_codes(client, pyotp.TOTP(secret).at(clock()))  # even the right code, while locked
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0
    with registry.sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(StaffSession)
                              .where(StaffSession.revoked_at.is_(None))) == 1  # still signed in
