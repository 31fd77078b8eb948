"""Staff sign-in: password, mandatory TOTP (enrolment, recovery codes), throttling, revocable sessions, CSRF.

Every test runs on SQLite and PostgreSQL. Codes come from pyotp at the FakeClock's time.
"""

from __future__ import annotations

import re
from typing import Any

import pyotp
import pytest
import sqlalchemy as sa
from flask import Flask, g
from flask.testing import FlaskClient

from tests.support.staff import PASSWORD, signed_in, staff_member
from verify_service.audit.models import AuditEntry
from verify_service.db import unit_of_work
from verify_service.registry import Registry
from verify_service.staff.errors import ReviewerNotFound
from verify_service.staff.models import RecoveryCode, Reviewer, Role, SignInThrottle, StaffSession, ThrottleKind
from verify_service.staff import services, throttle
from verify_service.staff.auth import staff_page

PAGE = "/review/test-only/page"
COOKIE = "verify_staff"
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def app(app: Flask) -> Flask:
    """The app plus two dashboard pages of its own, so these tests depend on no other feature's views."""

    @staff_page(Role.REVIEWER)
    def test_page() -> str:
        return f"page of reviewer {g.staff.reviewer.id}"

    @staff_page(Role.LEAD)
    def test_lead_page() -> str:
        return "lead page"

    app.add_url_rule(PAGE, "test_staff_page", test_page)
    app.add_url_rule("/review/test-only/lead", "test_staff_lead_page", test_lead_page)
    return app


# ---------------------------------------------------------------- helpers

def form_token(client: FlaskClient, path: str = "/review/sign-in") -> str:
    page = client.get(path)
    match = TOKEN.search(page.get_data(as_text=True))
    assert match, f"no CSRF token on {path} ({page.status_code})"
    return match.group(1)


def password_step(client: FlaskClient, email: str, password: str = PASSWORD, next: str | None = None) -> Any:
    data = {"csrf_token": form_token(client), "email": email, "password": password}
    if next is not None:
        data["next"] = next
    return client.post("/review/sign-in", data=data)


def code_step(client: FlaskClient, code: str, next: str | None = None) -> Any:
    data = {"csrf_token": form_token(client), "code": code}
    if next is not None:
        data["next"] = next
    return client.post("/review/sign-in/two-step", data=data)


def cookie(client: FlaskClient) -> str | None:
    found = client.get_cookie(COOKIE)
    return found.value if found is not None and found.value else None


def enrol(client: FlaskClient, registry: Registry, clock: Any, email: str = "reviewer@example.com",
          role: Role = Role.REVIEWER) -> tuple[Reviewer, str, list[str]]:
    """A new staff member signs in for the first time and sets up TOTP; returns (reviewer, secret, codes)."""
    reviewer = staff_member(registry, email=email, role=role)
    first = password_step(client, email)
    assert first.status_code == 303 and first.headers["Location"].startswith("/review/sign-in/enrol")
    page = client.get("/review/sign-in/enrol")
    text = page.get_data(as_text=True)
    secret = re.sub(r"\s", "", re.search(r'id="totp-secret">([^<]+)<', text).group(1))
    done = client.post("/review/sign-in/enrol", data={"csrf_token": TOKEN.search(text).group(1), "secret": secret,
                                                      "code": pyotp.TOTP(secret).at(clock())})
    assert done.status_code == 200, done.get_data(as_text=True)
    codes = re.findall(r"<li><code>([a-z0-9-]+)</code></li>", done.get_data(as_text=True))
    return reviewer, secret, codes


def audit(registry: Registry, action: str | None = None) -> list[AuditEntry]:
    with registry.sessions() as session:
        stmt = sa.select(AuditEntry).order_by(AuditEntry.seq)
        if action:
            stmt = stmt.where(AuditEntry.action == action)
        return list(session.scalars(stmt))


def sign_out(client: FlaskClient) -> Any:
    return client.post("/review/sign-out", data={"csrf_token": form_token(client)})


def other_code(secret: str, clock: Any) -> str:
    """A 6-digit code that is not valid at this time (none of the window's three)."""
    totp = pyotp.TOTP(secret)
    valid = {totp.at(clock(), counter_offset=offset) for offset in (-1, 0, 1)}
    return next(code for code in (f"{n:06d}" for n in range(123456, 999999, 7919)) if code not in valid)


# ---------------------------------------------------------------- the whole journey

def test_first_sign_in_enrols_then_later_sign_ins_ask_for_the_totp_code(client, registry, clock) -> None:
    email = "ana.reviewer@example.com"
    reviewer = staff_member(registry, email=email)
    sign_in_page = client.get("/review/sign-in").get_data(as_text=True)
    assert TOKEN.search(sign_in_page) and 'autocomplete="current-password"' in sign_in_page
    assert "Sign in with Google" not in sign_in_page  # single sign-on is not configured
    assert client.get(PAGE).headers["Location"] == f"/review/sign-in?next={PAGE}"
    first = password_step(client, email, next=PAGE)
    assert first.status_code == 303
    assert first.headers["Location"] == f"/review/sign-in/enrol?next={PAGE}"
    assert client.get(PAGE).status_code == 303  # half signed in is not signed in

    page = client.get(f"/review/sign-in/enrol?next={PAGE}")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    assert "<svg" in text and 'autocomplete="one-time-code"' in text and "style=" not in text
    assert "<script" not in text
    secret = re.sub(r"\s", "", re.search(r'id="totp-secret">([^<]+)<', text).group(1))
    assert len(secret) == 32
    assert client.get("/review/sign-in/enrol").get_data(as_text=True).count(" ".join(
        secret[i:i + 4] for i in range(0, 32, 4))) == 1  # reloading shows the same secret

    done = client.post("/review/sign-in/enrol", data={"csrf_token": TOKEN.search(text).group(1), "secret": secret,
                                                      "code": pyotp.TOTP(secret).at(clock()), "next": PAGE})
    body = done.get_data(as_text=True)
    codes = re.findall(r"<li><code>([a-z0-9-]+)</code></li>", body)
    assert done.status_code == 200 and len(set(codes)) == 10 and f'href="{PAGE}"' in body
    assert client.get(PAGE).get_data(as_text=True) == f"page of reviewer {reviewer.id}"
    already = client.get(f"/review/sign-in?next={PAGE}").get_data(as_text=True)
    assert "already signed in as Ana.Reviewer" in already and f'href="{PAGE}"' in already
    with registry.sessions() as session:
        stored = session.scalars(sa.select(RecoveryCode.code_hash)).all()
        assert session.get(Reviewer, reviewer.id).totp_confirmed_at == clock()
    assert len(stored) == 10 and not {c.replace("-", "") for c in codes} & set(stored)

    signed_out = sign_out(client)
    assert signed_out.status_code == 303 and signed_out.headers["Location"] == "/review/sign-in"
    assert cookie(client) is None and client.get(PAGE).status_code == 303

    clock.advance(minutes=1)
    again = password_step(client, email, next=PAGE)
    assert again.headers["Location"] == f"/review/sign-in/two-step?next={PAGE}"
    code_page = client.get("/review/sign-in/two-step").get_data(as_text=True)
    assert 'autocomplete="one-time-code"' in code_page and TOKEN.search(code_page)
    finished = code_step(client, pyotp.TOTP(secret).at(clock()), next=PAGE)
    assert finished.status_code == 303 and finished.headers["Location"] == PAGE
    assert client.get(PAGE).status_code == 200

    actions = [entry.action for entry in audit(registry) if entry.action.startswith("staff.")]
    assert actions == ["staff.two_step_enrolled", "staff.sign_in", "staff.signed_out", "staff.sign_in"]
    assert [e.details["method"] for e in audit(registry, "staff.sign_in")] == ["totp_enrolment", "totp"]
    for entry in audit(registry):  # ids only: no email, no secret, no code
        flat = f"{entry.actor} {entry.subject_id} {entry.details}"
        assert "@" not in flat and secret not in flat and not any(code in flat for code in codes)


def test_a_wrong_code_is_refused_and_each_code_works_only_once(client, registry, clock) -> None:
    reviewer, secret, _ = enrol(client, registry, clock)
    totp = pyotp.TOTP(secret)
    sign_out(client)
    password_step(client, reviewer.email)
    enrolment_code = totp.at(clock())

    wrong = code_step(client, other_code(secret, clock))
    assert wrong.status_code == 401 and 'role="alert"' in wrong.get_data(as_text=True)
    replayed = code_step(client, enrolment_code)  # accepted at enrolment a moment ago
    assert replayed.status_code == 401
    older = code_step(client, totp.at(clock(), counter_offset=-1))  # older than the last accepted step
    assert older.status_code == 401
    assert code_step(client, "12ab56").status_code == 401  # malformed input: refused, never a 500

    ahead = code_step(client, totp.at(clock(), counter_offset=1))  # the next step: clocks drift
    assert ahead.status_code == 303 and client.get(PAGE).status_code == 200
    sign_out(client)
    password_step(client, reviewer.email)
    assert code_step(client, totp.at(clock(), counter_offset=1)).status_code == 401  # used just now
    clock.advance(seconds=60)
    assert code_step(client, totp.at(clock())).status_code == 303
    reasons = [e.details["reason"] for e in audit(registry, "staff.sign_in_failed")]
    assert reasons == ["wrong_code"] * 5


def test_a_recovery_code_signs_in_once(client, registry, clock) -> None:
    reviewer, _, codes = enrol(client, registry, clock)
    sign_out(client)
    password_step(client, reviewer.email)
    used = code_step(client, codes[3].upper().replace("-", " "), next=PAGE)  # typed loosely from paper
    assert used.status_code == 303 and used.headers["Location"] == PAGE
    assert "9 unused codes left" in client.get("/").get_data(as_text=True)  # the flashed notice
    assert [e.details for e in audit(registry, "staff.recovery_code_used")] == [{"remaining": 9}]
    assert audit(registry, "staff.sign_in")[-1].details == {"method": "recovery_code"}

    sign_out(client)
    password_step(client, reviewer.email)
    assert code_step(client, codes[3]).status_code == 401
    assert code_step(client, codes[4]).status_code == 303


# ---------------------------------------------------------------- throttling

def test_lockouts_grow_and_refuse_even_the_right_password(client, registry, clock) -> None:
    reviewer = staff_member(registry)
    for _ in range(4):
        assert password_step(client, reviewer.email, "wrong password!").status_code == 401
    fifth = password_step(client, reviewer.email, "wrong password!")
    assert fifth.status_code == 429 and fifth.headers["Retry-After"] == "60"
    assert 'role="alert"' in fifth.get_data(as_text=True)
    locked = password_step(client, reviewer.email)  # the right password, while locked
    assert locked.status_code == 429 and cookie(client) is None

    clock.advance(minutes=1)
    sixth = password_step(client, reviewer.email, "wrong password!")  # lock over, but the count remembers
    assert sixth.status_code == 429 and sixth.headers["Retry-After"] == "120"
    clock.advance(minutes=1)
    assert password_step(client, reviewer.email).status_code == 429
    clock.advance(minutes=1)
    assert password_step(client, reviewer.email, "wrong password!").headers["Retry-After"] == "240"
    clock.advance(minutes=4)
    assert password_step(client, reviewer.email).status_code == 303  # right password after the lock
    assert password_step(client, reviewer.email, "wrong password!").status_code == 401  # count cleared

    assert [e.details["minutes"] for e in audit(registry, "staff.locked_out")] == [1, 2, 4]
    assert {e.subject_id for e in audit(registry, "staff.locked_out")} == {str(reviewer.id)}
    reasons = [e.details["reason"] for e in audit(registry, "staff.sign_in_failed")]
    assert reasons.count("locked") == 2 and reasons.count("wrong_password") == 8


def test_unknown_emails_are_refused_and_locked_exactly_like_known_ones(client, registry, clock,
                                                                      monkeypatch) -> None:
    staff_member(registry)
    burnt: list[str] = []  # an unknown email still costs an argon2 verification (timing tells nothing)
    real_burn = services.burn_password_check
    monkeypatch.setattr(services, "burn_password_check", lambda password: (burnt.append(password),
                                                                             real_burn(password)))

    def alert(response: Any) -> str:
        return re.search(r'role="alert"[^>]*>([^<]+)<', response.get_data(as_text=True)).group(1)

    known = password_step(client, "reviewer@example.com", "wrong password!")
    unknown = password_step(client, "nobody@example.com", "wrong password!")
    assert (known.status_code, alert(known)) == (unknown.status_code, alert(unknown)) == (401, alert(known))
    assert burnt == ["wrong password!"]
    for _ in range(4):
        unknown = password_step(client, "nobody@example.com", "wrong password!")
    assert unknown.status_code == 429
    assert password_step(client, "reviewer@example.com").status_code == 303  # other accounts unaffected
    failed = audit(registry, "staff.sign_in_failed")
    assert {e.details["reason"] for e in failed} == {"wrong_password", "unknown_account"}
    assert all(e.subject_id is None for e in failed if e.details["reason"] == "unknown_account")


def test_many_failures_from_one_ip_lock_that_ip(client, registry, clock, monkeypatch) -> None:
    monkeypatch.setitem(throttle.LIMITS, ThrottleKind.IP, 8)  # 50 in production; fewer argon2 runs here
    staff_member(registry)
    attacker = client.application.test_client()
    attacker.environ_base["REMOTE_ADDR"] = "203.0.113.9"
    for n in range(8):  # different emails: no account lock, only the IP's count grows
        response = password_step(attacker, f"guess{n}@example.com", "wrong password!")
    assert response.status_code == 429
    assert password_step(attacker, "reviewer@example.com").status_code == 429  # even a good account
    assert password_step(client, "reviewer@example.com").status_code == 303  # from another address: fine
    locks = audit(registry, "staff.locked_out")
    assert [(e.details["key"], e.subject_id) for e in locks] == [("ip", None)]
    with registry.sessions() as session:
        keys = session.scalars(sa.select(SignInThrottle.key_hash)).all()
    assert all("203.0.113.9" not in key and "@" not in key for key in keys)


# ---------------------------------------------------------------- CSRF, rotation, timeouts, revocation

def test_posts_without_the_csrf_token_are_refused_and_change_nothing(client, registry, clock) -> None:
    reviewer, secret, _ = enrol(client, registry, clock)
    entries = len(audit(registry))
    session_cookie = cookie(client)
    assert client.post("/review/sign-out").status_code == 400
    assert client.get(PAGE).status_code == 200 and cookie(client) == session_cookie

    fresh = client.application.test_client()
    no_token = fresh.post("/review/sign-in", data={"email": reviewer.email, "password": PASSWORD})
    assert no_token.status_code == 400 and cookie(fresh) is None
    forged = fresh.post("/review/sign-in", data={"email": reviewer.email, "password": PASSWORD,
                                                 "csrf_token": "forged"})
    assert forged.status_code == 400 and cookie(fresh) is None
    password_step(fresh, reviewer.email)
    clock.advance(minutes=1)
    assert fresh.post("/review/sign-in/two-step",
                      data={"code": pyotp.TOTP(secret).at(clock())}).status_code == 400
    assert fresh.get(PAGE).status_code == 303
    assert len(audit(registry)) == entries  # no sign-in, no failure, no sign-out recorded


def test_every_step_rotates_the_session_and_revokes_the_previous_one(client, registry, clock) -> None:
    reviewer, secret, _ = enrol(client, registry, clock)
    before = cookie(client)  # an ACTIVE session from the enrolment
    clock.advance(minutes=1)
    password_step(client, reviewer.email)
    step_one = cookie(client)
    code_step(client, pyotp.TOTP(secret).at(clock()))
    step_two = cookie(client)
    assert len({before, step_one, step_two}) == 3 and None not in {before, step_one, step_two}
    assert client.get(PAGE).status_code == 200

    for old in (before, step_one):
        client.set_cookie(COOKIE, old)
        assert client.get(PAGE).status_code == 303
        assert client.get("/review/sign-in/two-step").headers["Location"].startswith("/review/sign-in")
    with registry.sessions() as session:
        live = session.scalars(sa.select(StaffSession).where(StaffSession.revoked_at.is_(None))).all()
    assert [row.stage.value for row in live] == ["active"]


def test_a_half_done_sign_in_expires_after_ten_minutes(client, registry, clock) -> None:
    reviewer, secret, _ = enrol(client, registry, clock)
    sign_out(client)
    password_step(client, reviewer.email)
    clock.advance(minutes=10)
    late = code_step(client, pyotp.TOTP(secret).at(clock()))
    assert late.status_code == 303 and late.headers["Location"] == "/review/sign-in"
    assert client.get(PAGE).status_code == 303


def test_sessions_end_after_15_idle_minutes_and_after_10_hours(client, registry, clock) -> None:
    signed_in(client, registry)
    clock.advance(minutes=14)
    assert client.get(PAGE).status_code == 200
    clock.advance(minutes=14, seconds=59)
    assert client.get(PAGE).status_code == 200
    clock.advance(minutes=15)
    assert client.get(PAGE).status_code == 303

    signed_in(client, registry)
    for _ in range(59):  # busy for 9 h 50 min, never idle
        clock.advance(minutes=10)
        assert client.get(PAGE).status_code == 200
    clock.advance(minutes=10)
    assert client.get(PAGE).status_code == 303


def test_reset_and_disabling_end_live_sessions_at_once(client, registry, clock) -> None:
    reviewer, _, codes = enrol(client, registry, clock)
    assert client.get(PAGE).status_code == 200
    with unit_of_work(registry.sessions) as session:
        services.reset_two_step(session, reviewer.id, actor="reviewer:99", now=clock())
    assert client.get(PAGE).status_code == 303
    assert audit(registry, "staff.two_step_reset")[0].details == {"sessions_revoked": 1}
    with pytest.raises(ReviewerNotFound), unit_of_work(registry.sessions) as session:
        services.reset_two_step(session, 12345, actor="reviewer:99", now=clock())

    clock.advance(minutes=1)
    again = password_step(client, reviewer.email)  # after a reset: set up again; old codes are gone
    assert again.headers["Location"].startswith("/review/sign-in/enrol")
    with registry.sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(RecoveryCode)) == 0

    other = client.application.test_client()
    signed_in(other, registry, role=Role.LEAD)
    assert other.get("/review/test-only/lead").status_code == 200
    with registry.sessions.begin() as session:
        session.execute(sa.update(Reviewer).where(Reviewer.role == Role.LEAD).values(active=False))
    assert other.get("/review/test-only/lead").status_code == 303
    assert password_step(other, "lead@example.com").status_code == 401  # disabled: cannot sign in


def test_a_role_too_low_is_refused_and_recorded(client, registry) -> None:
    reviewer = signed_in(client, registry)
    denied = client.get("/review/test-only/lead")
    assert denied.status_code == 403
    assert [(e.action, e.actor) for e in audit(registry, "access.denied")] == [("access.denied",
                                                                                 f"reviewer:{reviewer.id}")]


@pytest.mark.parametrize("target", ["https://evil.example/x", "//evil.example/x", "/\\evil.example",
                                    "javascript:alert(1)", "http:/evil.example", "/\r\nSet-Cookie: x=1",
                                    "/\t/evil.example"])
def test_sign_in_never_redirects_off_site(client, registry, clock, target: str) -> None:
    reviewer, secret, _ = enrol(client, registry, clock)
    sign_out(client)
    clock.advance(minutes=1)
    first = password_step(client, reviewer.email, next=target)
    if any(c < " " for c in target):  # control characters are refused at the page boundary, before the view
        assert first.status_code == 400 and "Location" not in first.headers
        return
    assert "evil" not in first.headers["Location"] and "next=" not in first.headers["Location"]
    done = code_step(client, pyotp.TOTP(secret).at(clock()), next=target)
    location = done.headers["Location"]
    assert location.startswith("/") and not location.startswith("//") and "evil" not in location
    assert "\n" not in location and "\r" not in location


def test_wrong_enrolment_codes_and_stale_secrets_are_explained(client, registry, clock) -> None:
    reviewer = staff_member(registry)
    password_step(client, reviewer.email)
    text = client.get("/review/sign-in/enrol").get_data(as_text=True)
    secret = re.sub(r"\s", "", re.search(r'id="totp-secret">([^<]+)<', text).group(1))
    token = TOKEN.search(text).group(1)
    wrong = client.post("/review/sign-in/enrol", data={"csrf_token": token, "secret": secret,
                                                       "code": other_code(secret, clock)})
    assert wrong.status_code == 422 and 'role="alert"' in wrong.get_data(as_text=True)
    stale = client.post("/review/sign-in/enrol", data={"csrf_token": token, "secret": "A" * 32,
                                                       "code": pyotp.TOTP("A" * 32).at(clock())})
    assert stale.status_code == 422 and "started again" in stale.get_data(as_text=True)
    empty = client.post("/review/sign-in/enrol", data={"csrf_token": token})
    assert empty.status_code == 422
    assert client.get(PAGE).status_code == 303
    with registry.sessions() as session:
        assert session.get(Reviewer, reviewer.id).totp_confirmed_at is None
    # A sign-in that must set up two-step verification cannot skip to the code page.
    assert client.get("/review/sign-in/two-step").headers["Location"].startswith("/review/sign-in")


def test_odd_input_gets_a_page_not_an_error(client, registry) -> None:
    staff_member(registry)
    token = form_token(client)
    for data in ({}, {"email": "x"}, {"email": "reviewer@example.com", "password": "p" * 5000},
                 {"email": "\u00e9@\u00e9", "password": "\u2603"}, {"email": "a" * 5000, "password": "x"}):
        response = client.post("/review/sign-in", data={"csrf_token": token, **data})
        assert response.status_code == 401, data
        assert 'role="alert"' in response.get_data(as_text=True)
    assert client.get("/review/sign-in/enrol").status_code == 303
    assert client.post("/review/sign-out", data={"csrf_token": token}).status_code == 303  # not signed in: fine
