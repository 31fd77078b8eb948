"""Staff credentials are their owner's alone: invitations, resets and notices (both backends).

A lead never sees a password. A new account and every reset send a
single-use link to the account's own address (the sandbox mailbox here);
the old password stops working at once, sessions end, and each change is
mailed to the owner naming who made it.
"""

from __future__ import annotations

import re
from typing import Any

import pyotp
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import FakeClock
from tests.functional.test_staff_sign_in import TOKEN, code_step, enrol, password_step
from tests.support.concurrency import run_together
from tests.support.mail import FailingMailer, latest_setup_path, mailbox, setup_path
from tests.support.staff import PASSWORD, csrf_token, signed_in, staff_member
from verify_service.audit.models import AuditEntry
from verify_service.db import unit_of_work
from verify_service.registry import Registry
from verify_service.staff.models import Reviewer, Role, StaffInvitation, StaffSession, Stage
from verify_service.staff.passwords import check_password
from verify_service.staff import invitations
from verify_service.staff.invitations import LinkState, SetupLinkUnusable

NEW_PASSWORD = "rita's very own passphrase"


# ---------------------------------------------------------------- helpers

def lead_browser(app: Flask, registry: Registry, *, email: str = "lena@example.com", name: str = "Lena",
                 role: Role = Role.LEAD) -> FlaskClient:
    staff_member(registry, role=role, email=email, name=name)
    client = app.test_client()
    signed_in(client, registry, role=role, email=email)
    client.token = csrf_token(client, "/review/lead/reviewers")  # type: ignore[attr-defined]
    return client


def post(client: FlaskClient, path: str, data: dict[str, str] | None = None) -> Any:
    return client.post(path, data={"csrf_token": client.token, **(data or {})})  # type: ignore[attr-defined]


def invite(lead: FlaskClient, email: str = "nia@example.com", role: str = "reviewer") -> Any:
    return post(lead, "/review/lead/reviewers", {"email": email, "display_name": email.split("@")[0].title(),
                                                 "role": role})


def use_link(client: FlaskClient, path: str, password: str = NEW_PASSWORD, *, confirm: str | None = None,
             code: str | None = None) -> Any:
    form = client.get(path)
    assert form.status_code == 200, form.get_data(as_text=True)
    data = {"csrf_token": TOKEN.search(form.get_data(as_text=True)).group(1), "password": password,
            "confirm": password if confirm is None else confirm}
    if code is not None:
        data["code"] = code
    return client.post(path, data=data)


def finish_enrolment(client: FlaskClient, clock: FakeClock) -> tuple[str, list[str]]:
    page = client.get("/review/sign-in/enrol")
    assert page.status_code == 200, page.headers.get("Location")
    text = page.get_data(as_text=True)
    secret = re.sub(r"\s", "", re.search(r'id="totp-secret">([^<]+)<', text).group(1))
    done = client.post("/review/sign-in/enrol", data={"csrf_token": TOKEN.search(text).group(1), "secret": secret,
                                                      "code": pyotp.TOTP(secret).at(clock())})
    assert done.status_code == 200, done.get_data(as_text=True)
    return secret, re.findall(r"<li><code>([a-z0-9-]+)</code></li>", done.get_data(as_text=True))


def signed_in_as(client: FlaskClient) -> str | None:
    page = client.get("/review/account")
    if page.status_code != 200:
        return None
    return re.search(r"<dt>Email</dt><dd>([^<]+)</dd>", page.get_data(as_text=True)).group(1)


def audit(registry: Registry, prefix: str = "") -> list[AuditEntry]:
    with registry.sessions() as session:
        return list(session.scalars(sa.select(AuditEntry).where(AuditEntry.action.like(f"{prefix}%"))
                                    .order_by(AuditEntry.seq)))


def assert_ids_only(registry: Registry, *secrets: str) -> None:
    for entry in audit(registry):
        flat = f"{entry.actor} {entry.subject_id} {entry.details}"
        assert "@" not in flat and not any(secret in flat for secret in secrets), flat


def live_sessions(registry: Registry, reviewer_id: int) -> list[StaffSession]:
    with registry.sessions() as session:
        return list(session.scalars(sa.select(StaffSession).where(StaffSession.reviewer_id == reviewer_id,
                                                                  StaffSession.revoked_at.is_(None))))


# ---------------------------------------------------------------- the finding

def test_a_lead_who_resets_a_reviewer_cannot_sign_in_as_them(app: Flask, registry: Registry,
                                                              clock: FakeClock) -> None:
    """The attack: reset Rita's two-step, sign in with the password a lead once saw, enrol your own phone."""
    rita_browser = app.test_client()
    rita, _, _ = enrol(rita_browser, registry, clock, email="rita@example.com")
    lead = lead_browser(app, registry)
    reset = post(lead, f"/review/lead/reviewers/{rita.id}/two-step/reset")
    assert reset.status_code == 303
    after = lead.get("/review/lead/reviewers").get_data(as_text=True)
    assert "A link to set up both again was emailed to them" in after
    assert rita_browser.get("/review/account").status_code == 303  # her live session ended at once
    assert live_sessions(registry, rita.id) == []

    # The lead tries the password Rita had (every lead once saw the temporary ones): it no longer works,
    # so no half-signed-in session exists in which to enrol an authenticator.
    attacker = app.test_client()
    refused = password_step(attacker, "rita@example.com", PASSWORD)
    assert refused.status_code == 401 and "do not match" in refused.get_data(as_text=True)
    assert live_sessions(registry, rita.id) == []
    # The new link went to Rita's address only; no page the lead sees carries it.
    enrolled, messages = mailbox(registry)[0], mailbox(registry)[1:]
    assert enrolled.subject == "Two-step verification was set up"  # her own enrolment, before the attack
    assert [m.recipient for m in messages] == ["rita@example.com"]
    path = setup_path(messages[0].body)
    assert "Lena reset the two-step verification" in messages[0].body
    assert path.rsplit("/", 1)[1] not in after + reset.get_data(as_text=True)

    # Rita uses it: a password of her own, then two-step again before any sign-in completes.
    chosen = use_link(app.test_client(), path)
    assert chosen.status_code == 303 and chosen.headers["Location"].startswith("/review/sign-in/enrol")
    elsewhere = app.test_client()
    half = password_step(elsewhere, "rita@example.com", NEW_PASSWORD)
    assert half.headers["Location"].startswith("/review/sign-in/enrol")  # enrol first: not signed in
    assert elsewhere.get("/review/account").status_code == 303
    assert password_step(app.test_client(), "rita@example.com", PASSWORD).status_code == 401  # still the old one
    assert_ids_only(registry, path.rsplit("/", 1)[1])


def test_a_lead_never_sees_a_password_and_the_invitation_works_once(app: Flask, registry: Registry,
                                                                     clock: FakeClock) -> None:
    lead = lead_browser(app, registry)
    added = invite(lead)
    assert added.status_code == 303
    page = lead.get("/review/lead/reviewers").get_data(as_text=True)
    assert '<bdi class="person">Nia</bdi> (nia@example.com) was added as reviewer' in page and "works once, within 48 hours" in page
    assert "temporary" not in page and "Send setup link again" in page
    [invitation] = mailbox(registry)
    assert invitation.recipient == "nia@example.com" and invitation.subject == "Set up your staff account"
    assert "Lena added you" in invitation.body and invitation.purpose == "staff_invitation"
    path = setup_path(invitation.body)
    token = path.rsplit("/", 1)[1]
    assert token not in page and len(token) >= 40
    with registry.sessions() as session:
        stored = session.scalars(sa.select(StaffInvitation.token_hash)).one()
    assert token not in stored  # only its hash is kept
    # No password works before Nia chooses one (the empty one neither).
    for guess in ("", PASSWORD, token):
        assert password_step(app.test_client(), "nia@example.com", guess).status_code == 401

    nia = app.test_client()
    form = nia.get(path)
    assert form.status_code == 200 and form.headers["Cache-Control"] == "no-store"
    assert form.headers["Referrer-Policy"] == "no-referrer" and "nia@example.com" in form.get_data(as_text=True)
    short = use_link(nia, path, "too short")
    assert short.status_code == 422 and "at least 12 characters" in short.get_data(as_text=True)
    differ = use_link(nia, path, NEW_PASSWORD, confirm=NEW_PASSWORD + "!")
    assert differ.status_code == 422 and "not the same" in differ.get_data(as_text=True)
    chosen = use_link(nia, path)  # the link still works after refused attempts
    assert chosen.status_code == 303 and chosen.headers["Location"].startswith("/review/sign-in/enrol")
    assert nia.get("/review/account").status_code == 303  # not signed in before two-step is set up
    secret, codes = finish_enrolment(nia, clock)
    assert len(codes) == 10 and signed_in_as(nia) == "nia@example.com"

    again = app.test_client().get(path)
    assert again.status_code == 410 and "already used" in again.get_data(as_text=True)
    assert app.test_client().post(path, data={"csrf_token": csrf_token(app.test_client(), "/review/sign-in"),
                                              "password": "x" * 20, "confirm": "x" * 20}).status_code in (400, 410)
    clock.advance(minutes=1)
    later = app.test_client()
    assert password_step(later, "nia@example.com", NEW_PASSWORD).headers["Location"].startswith(
        "/review/sign-in/two-step")
    assert code_step(later, pyotp.TOTP(secret).at(clock())).status_code == 303
    assert signed_in_as(later) == "nia@example.com"
    notices = [(m.recipient, m.subject) for m in mailbox(registry)[1:]]
    assert notices == [("nia@example.com", "Your password was set"),
                       ("nia@example.com", "Two-step verification was set up")]
    assert all(", by you, on " in m.body for m in mailbox(registry)[1:])
    actions = [e.action for e in audit(registry, "staff.") if e.action != "staff.sign_in_failed"]
    assert actions[:4] == ["staff.setup_link_issued", "staff.password_set", "staff.two_step_enrolled",
                           "staff.sign_in"]
    assert {e.details["reason"] for e in audit(registry, "staff.sign_in_failed")} == {"wrong_password"}
    assert_ids_only(registry, token, secret, *codes)


def test_a_used_link_refuses_a_second_password(app: Flask, registry: Registry, clock: FakeClock) -> None:
    lead = lead_browser(app, registry)
    invite(lead)
    path = latest_setup_path(registry, "nia@example.com")
    first, second = app.test_client(), app.test_client()
    forms = [TOKEN.search(c.get(path).get_data(as_text=True)).group(1) for c in (first, second)]
    assert first.post(path, data={"csrf_token": forms[0], "password": NEW_PASSWORD,
                                  "confirm": NEW_PASSWORD}).status_code == 303
    late = second.post(path, data={"csrf_token": forms[1], "password": "someone else's pass",
                                   "confirm": "someone else's pass"})
    assert late.status_code == 410 and "already used" in late.get_data(as_text=True)
    nia = staff_member(registry, email="nia@example.com")
    assert check_password(nia, NEW_PASSWORD) and not check_password(nia, "someone else's pass")


def test_a_link_expires_after_48_hours(app: Flask, registry: Registry, clock: FakeClock) -> None:
    lead = lead_browser(app, registry)
    invite(lead)
    path = latest_setup_path(registry, "nia@example.com")
    clock.advance(hours=47, minutes=59)
    assert app.test_client().get(path).status_code == 200
    clock.advance(minutes=1)  # 48 hours after it was sent
    expired = app.test_client().get(path)
    assert expired.status_code == 410 and "has expired" in expired.get_data(as_text=True)
    assert "ask a lead" in expired.get_data(as_text=True).lower()
    lead = lead_browser(app, registry)  # a new day, a new sign-in
    listing = lead.get("/review/lead/reviewers").get_data(as_text=True)
    assert "expired 2026-11-24 09:00 UTC, unused" in listing
    # The lead sends a new one; it works, the old one is still refused.
    nia = staff_member(registry, email="nia@example.com")
    assert post(lead, f"/review/lead/reviewers/{nia.id}/setup-link").status_code == 303
    fresh = latest_setup_path(registry, "nia@example.com")
    assert fresh != path and use_link(app.test_client(), fresh).status_code == 303
    assert app.test_client().get(path).status_code == 410


def test_a_newer_link_supersedes_the_older_and_unknown_links_are_404(app: Flask, registry: Registry) -> None:
    lead = lead_browser(app, registry)
    invite(lead)
    nia = staff_member(registry, email="nia@example.com")
    first = latest_setup_path(registry, "nia@example.com")
    post(lead, f"/review/lead/reviewers/{nia.id}/setup-link")
    second = latest_setup_path(registry, "nia@example.com")
    superseded = app.test_client().get(first)
    assert superseded.status_code == 410 and "A newer link was sent" in superseded.get_data(as_text=True)
    assert app.test_client().get(second).status_code == 200
    unknown = app.test_client().get("/review/setup/" + "x" * 43)
    assert unknown.status_code == 404 and "not valid" in unknown.get_data(as_text=True)
    # Disabled since: the link says so and sets nothing.
    post(lead, f"/review/lead/reviewers/{nia.id}/disable")
    disabled = app.test_client().get(second)
    assert disabled.status_code == 403 and "disabled" in disabled.get_data(as_text=True)


def test_an_invitation_mail_that_fails_keeps_the_account_and_can_be_sent_again(app: Flask, registry: Registry,
                                                                              clock: FakeClock) -> None:
    lead = lead_browser(app, registry)
    failing = FailingMailer()
    registry.mail = failing
    added = invite(lead)
    assert added.status_code == 303 and failing.attempts == ["nia@example.com"]
    page = lead.get("/review/lead/reviewers").get_data(as_text=True)
    assert 'role="alert"' in page and "could not be sent to nia@example.com" in page
    assert "Send setup link again" in page
    nia = staff_member(registry, email="nia@example.com")  # the account exists (fails closed for the link only)
    registry.mail = None  # mail works again: the sandbox mailbox
    again = post(lead, f"/review/lead/reviewers/{nia.id}/setup-link")
    assert again.status_code == 303
    assert [m.recipient for m in mailbox(registry)] == ["nia@example.com"]
    assert use_link(app.test_client(), latest_setup_path(registry, "nia@example.com")).status_code == 303
    # Set up: nothing to send again any more (a reset is what sends a link now).
    done = post(lead, f"/review/lead/reviewers/{nia.id}/setup-link")
    assert done.status_code == 409 and "reset their password" in done.get_data(as_text=True)


# ---------------------------------------------------------------- resets

def test_a_password_reset_ends_the_old_password_and_the_link_asks_for_a_code(app: Flask, registry: Registry,
                                                                              clock: FakeClock) -> None:
    rita_browser = app.test_client()
    rita, secret, _ = enrol(rita_browser, registry, clock, email="rita@example.com")
    lead = lead_browser(app, registry)
    assert post(lead, f"/review/lead/reviewers/{rita.id}/password/reset").status_code == 303
    assert rita_browser.get("/review/account").status_code == 303 and live_sessions(registry, rita.id) == []
    assert password_step(app.test_client(), "rita@example.com", PASSWORD).status_code == 401
    message = mailbox(registry)[-1]
    assert [m.recipient for m in mailbox(registry)] == ["rita@example.com"] * 2  # her enrolment, then this
    assert message.subject == "Your password was reset"
    assert "Lena reset your password" in message.body
    path = setup_path(message.body)
    with registry.sessions() as session:
        assert session.get_one(Reviewer, rita.id).totp_confirmed_at is not None  # two-step stays

    clock.advance(seconds=30)
    owner = app.test_client()
    assert 'name="code"' in owner.get(path).get_data(as_text=True)
    wrong = use_link(owner, path, code="000000" if pyotp.TOTP(secret).at(clock()) != "000000" else "111111")
    assert wrong.status_code == 401 and "code is not right" in wrong.get_data(as_text=True)
    assert use_link(owner, path, code="").status_code == 401  # the mailbox alone does not open the account
    done = use_link(owner, path, code=pyotp.TOTP(secret).at(clock()))
    assert done.status_code == 303 and not done.headers["Location"].startswith("/review/sign-in")
    assert signed_in_as(owner) == "rita@example.com"
    clock.advance(seconds=30)
    later = app.test_client()
    password_step(later, "rita@example.com", NEW_PASSWORD)
    assert code_step(later, pyotp.TOTP(secret).at(clock())).status_code == 303
    assert [e.action for e in audit(registry, "staff.password_")] == ["staff.password_reset", "staff.password_set"]


def test_reset_rules_nobody_resets_themselves_and_only_admins_reset_admins(app: Flask, registry: Registry) -> None:
    lead = lead_browser(app, registry)
    me = staff_member(registry, email="lena@example.com")
    boss = staff_member(registry, role=Role.ADMIN, email="boss@example.com")
    for what in ("password/reset", "two-step/reset"):
        for target in (me.id, boss.id):
            refused = post(lead, f"/review/lead/reviewers/{target}/{what}")
            assert refused.status_code == 403 and 'role="alert"' in refused.get_data(as_text=True)
        assert post(lead, f"/review/lead/reviewers/999/{what}").status_code == 404
    assert mailbox(registry) == [] and audit(registry, "staff.password_reset") == []
    admin = lead_browser(app, registry, email="root@example.com", name="Root", role=Role.ADMIN)
    assert post(admin, f"/review/lead/reviewers/{boss.id}/password/reset").status_code == 303
    assert [m.recipient for m in mailbox(registry)] == ["boss@example.com"]
    refused = post(lead, "/review/lead/reviewers", {"email": "root2@example.com", "role": "admin"})
    assert refused.status_code == 403


# ---------------------------------------------------------------- notices

@pytest.mark.parametrize("action, form, subject, phrase", [
    ("role", {"role": "lead"}, "Your role changed", "Your role on the identity verification dashboard is now lead"),
    ("disable", {}, "Your staff account was disabled", "was disabled"),
    ("password/reset", {}, "Your password was reset", "Lena reset your password"),
    ("two-step/reset", {}, "Your two-step verification was reset", "Lena reset the two-step verification"),
])
def test_every_change_a_lead_makes_is_mailed_to_the_owner_naming_the_lead(app: Flask, registry: Registry,
                                                                          action: str, form: dict[str, str],
                                                                          subject: str, phrase: str) -> None:
    tess = staff_member(registry, email="tess@example.com", name="Tess")
    lead = lead_browser(app, registry)
    assert post(lead, f"/review/lead/reviewers/{tess.id}/{action}", form).status_code == 303
    [message] = mailbox(registry)
    assert (message.recipient, message.subject) == ("tess@example.com", subject)
    assert phrase in message.body and "Hello Tess" in message.body
    if action in ("role", "disable"):
        assert ", by Lena, on 2026-11-22 09:00 UTC." in message.body
    assert_ids_only(registry)


def test_enabling_is_mailed_too_and_nothing_changed_sends_nothing(app: Flask, registry: Registry) -> None:
    tess = staff_member(registry, email="tess@example.com", name="Tess")
    lead = lead_browser(app, registry)
    post(lead, f"/review/lead/reviewers/{tess.id}/disable")
    post(lead, f"/review/lead/reviewers/{tess.id}/enable")
    post(lead, f"/review/lead/reviewers/{tess.id}/enable")  # already enabled: no change, no mail
    post(lead, f"/review/lead/reviewers/{tess.id}/role", {"role": "reviewer"})  # the same role
    assert [m.subject for m in mailbox(registry)] == ["Your staff account was disabled",
                                                      "Your staff account was enabled"]
    assert all(", by Lena, on " in m.body for m in mailbox(registry))


def test_recovery_code_sign_in_and_live_sessions_after_a_reset(app: Flask, registry: Registry,
                                                               clock: FakeClock) -> None:
    """A reset ends every session, also one opened with a recovery code, and the codes go with two-step."""
    rita_browser = app.test_client()
    rita, _, codes = enrol(rita_browser, registry, clock, email="rita@example.com")
    lead = lead_browser(app, registry)
    post(lead, f"/review/lead/reviewers/{rita.id}/two-step/reset")
    path = latest_setup_path(registry, "rita@example.com")
    owner = app.test_client()
    assert 'name="code"' not in owner.get(path).get_data(as_text=True)  # two-step is set up again instead
    assert use_link(owner, path).status_code == 303
    secret, new_codes = finish_enrolment(owner, clock)
    clock.advance(minutes=1)
    later = app.test_client()
    password_step(later, "rita@example.com", NEW_PASSWORD)
    assert code_step(later, codes[0]).status_code == 401  # the old recovery codes went with the reset
    assert code_step(later, new_codes[0]).status_code == 303
    with registry.sessions() as session:
        stages = session.scalars(sa.select(StaffSession.stage).where(StaffSession.reviewer_id == rita.id,
                                                                     StaffSession.revoked_at.is_(None))).all()
    assert Stage.ACTIVE in stages


def test_two_uses_of_one_link_at_once_set_one_password(app: Flask, registry: Registry, clock: FakeClock) -> None:
    """The link is consumed by one conditional UPDATE: of two concurrent uses, one wins, the other is told."""
    invite(lead_browser(app, registry))
    token = latest_setup_path(registry, "nia@example.com").rsplit("/", 1)[1]

    def use(password: str) -> Any:
        def task() -> Any:
            with unit_of_work(registry.sessions) as session:
                return invitations.complete_setup(session, token, password=password, confirm=password, code="",
                                                  ip="198.51.100.7", now=clock()).step.stage
        return task

    results = run_together([use("the first passphrase"), use("the second passphrase")])
    losers = [r for r in results if isinstance(r, SetupLinkUnusable)]
    assert results.count(Stage.ENROLLING) == 1 and len(losers) == 1 and losers[0].state is LinkState.USED
    nia = staff_member(registry, email="nia@example.com")
    assert [check_password(nia, p) for p in ("the first passphrase", "the second passphrase")].count(True) == 1


def test_a_half_done_enrolment_from_before_the_reset_is_not_reused(app: Flask, registry: Registry,
                                                                    clock: FakeClock) -> None:
    """Whoever saw the QR code of a set-up never finished (the old password's holder) gets nothing from it."""
    tess = staff_member(registry, email="tess@example.com", name="Tess")  # never enrolled
    intruder = app.test_client()
    assert password_step(intruder, "tess@example.com", PASSWORD).headers["Location"].startswith(
        "/review/sign-in/enrol")
    seen = re.search(r'id="totp-secret">([^<]+)<', intruder.get("/review/sign-in/enrol").get_data(True)).group(1)
    lead = lead_browser(app, registry)
    assert post(lead, f"/review/lead/reviewers/{tess.id}/password/reset").status_code == 303
    owner = app.test_client()
    assert use_link(owner, latest_setup_path(registry, "tess@example.com")).status_code == 303
    secret, _ = finish_enrolment(owner, clock)
    assert secret != re.sub(r"\s", "", seen)
