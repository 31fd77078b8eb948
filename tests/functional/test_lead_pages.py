"""The lead pages over the Flask test client (both backends): who may do what, CSRF, and each page's effects."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import Api, FakeClock
from tests.support.staff import csrf_token, signed_in, staff_member
from verify_service.accounts.models import Hold
from verify_service.audit.models import AuditEntry
from verify_service.calls.models import CallSession, OutcomeRecord
from verify_service.calls.state import Outcome, SessionStatus
from verify_service.db import unit_of_work
from verify_service.leads import shifts
from verify_service.leads.metrics import lead_metrics
from verify_service.registry import Registry
from verify_service.staff.models import Reviewer, ReviewerShift, Role, StaffSession
from verify_service.staff.passwords import check_password, has_usable_password
from verify_service.staff.invitations import LinkPolicy, invite_staff
from tests.support.mail import mailbox, setup_path
from verify_service.webhooks.models import DeliveryStatus, OutboxEvent, WebhookEndpoint

HOOK_URL = "http://127.0.0.1:9/account-service/webhooks"
PAGES = {
    "leads.accounts": "/review/lead/accounts",
    "leads.account": "/review/lead/accounts/acc-1",
    "leads.deliveries": "/review/lead/deliveries",
    "leads.shifts": "/review/lead/shifts",
    "leads.shift_edit": "/review/lead/shifts/{shift}",
    "leads.reviewers": "/review/lead/reviewers",
    "leads.metrics": "/review/lead/metrics",
}
SHIFT_FORM = {"weekday": "1", "start": "10:00", "end": "18:00", "time_zone": "Europe/Berlin"}
ACTIONS = {
    "leads.place_hold": ("/review/lead/accounts/acc-1/holds", {"blocks": "withdraw_earnings", "reason": "Chargeback"}),
    "leads.lift_hold": ("/review/lead/accounts/acc-1/holds/{hold}/lift", {"reason": "Cleared by support"}),
    "leads.redeliver": ("/review/lead/deliveries/redeliver", {"event_id": "{event}"}),
    "leads.enable_delivery": ("/review/lead/deliveries/enable", {}),
    "leads.add_shift": ("/review/lead/shifts", {**SHIFT_FORM, "reviewer_id": "{target}", "weekday": "0"}),
    "leads.change_shift": ("/review/lead/shifts/{shift}", SHIFT_FORM),
    "leads.remove_shift": ("/review/lead/shifts/{shift}/remove", {}),
    "leads.create_reviewer": ("/review/lead/reviewers", {"email": "new@example.com", "display_name": "Nia",
                                                         "role": "reviewer"}),
    "leads.disable_reviewer": ("/review/lead/reviewers/{target}/disable", {}),
    "leads.enable_reviewer": ("/review/lead/reviewers/{disabled}/enable", {}),
    "leads.change_role": ("/review/lead/reviewers/{target}/role", {"role": "lead"}),
    "leads.reset_two_step": ("/review/lead/reviewers/{target}/two-step/reset", {}),
    "leads.reset_password": ("/review/lead/reviewers/{target}/password/reset", {}),
    "leads.resend_setup_link": ("/review/lead/reviewers/{invited}/setup-link", {}),
}
ROLES = [None, Role.REVIEWER, Role.LEAD, Role.ADMIN]


@dataclasses.dataclass(frozen=True)
class World:
    hold: str
    event: str
    target: int
    disabled: int
    shift: int
    invited: int

    def fill(self, text: str) -> str:
        return text.format(**dataclasses.asdict(self))


@pytest.fixture
def world(api: Api, registry: Registry) -> World:
    """Two accounts (one held), a dead event, a 410-disabled endpoint, staff to act on, and a weekly shift."""
    api.put_account("acc-1")
    api.request_verification("acc-1", {"reason": "new_account", "place_hold": True})
    api.put_account("acc-2")
    api.request_verification("acc-2", {"reason": "risk_signal"})
    registry.settings = registry.settings.replace(account_service_webhook_url=HOOK_URL)
    now = registry.now()
    target = staff_member(registry, email="target@example.com", name="Tess")
    disabled = staff_member(registry, email="gone@example.com", name="Gus")
    with unit_of_work(registry.sessions) as session:
        hold = session.scalar(sa.select(Hold.id).where(Hold.account_id == "acc-1"))
        event = session.scalars(sa.select(OutboxEvent).where(OutboxEvent.account_id == "acc-2")).first()
        event.status, event.attempts, event.last_status_code = DeliveryStatus.DEAD, 40, 503
        event.last_error = "the account service answered 503"
        session.add(WebhookEndpoint(url=HOOK_URL, disabled_at=now, disabled_reason="410 Gone for event evt_x",
                                    updated_at=now))
        session.get_one(Reviewer, disabled.id).active = False
        shift = shifts.add_recurring_shift(session, shifts.parse_plan(str(target.id), "2", "09:00", "17:00", "UTC"),
                                           actor="test", now=now)
        invited = invite_staff(session, email="ivy@example.com", display_name="Ivy", role=Role.REVIEWER, by=None,
                               actor="test", links=LinkPolicy(registry.settings.base_url, 48), now=now)
        return World(hold, event.event_id, target.id, disabled.id, shift.id, invited.reviewer.id)


def staff_client(app: Flask, registry: Registry, role: Role | None, email: str | None = None) -> FlaskClient:
    """A browser of a signed-in staff member with ``role``; ``None``: one whose sign-in has ended (it keeps
    a valid CSRF token, so what refuses its posts is the missing session)."""
    client = app.test_client()
    signed_in(client, registry, role=role or Role.LEAD, email=email or f"{role.value if role else 'anon'}@example.com")
    client.token = csrf_token(client, "/review/lead/metrics")  # type: ignore[attr-defined]
    if role is None:
        client.delete_cookie("verify_staff")
    return client


def post(client: FlaskClient, path: str, form: dict[str, object] | None = None, *, token: bool = True):
    data = dict(form or {})
    if token:
        data["csrf_token"] = client.token  # type: ignore[attr-defined]
    return client.post(path, data=data)


def changes(registry: Registry) -> int:
    """Audit entries other than denials: every lead action writes at least one."""
    with registry.sessions() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(AuditEntry)
                              .where(AuditEntry.action != "access.denied")) or 0


def denials(registry: Registry, reviewer_id: int) -> list[str]:
    with registry.sessions() as session:
        return list(session.scalars(sa.select(AuditEntry.subject_id).where(
            AuditEntry.action == "access.denied", AuditEntry.actor == f"reviewer:{reviewer_id}")))


def text(response) -> str:
    return response.get_data(as_text=True)


# ---------------------------------------------------------------- who may do what

def test_the_matrix_covers_every_lead_endpoint(app: Flask) -> None:
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules() if rule.endpoint.startswith("leads.")}
    assert endpoints == set(PAGES) | set(ACTIONS)


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r.value if r else "anonymous")
@pytest.mark.parametrize("endpoint", sorted(PAGES))
def test_pages_by_role(app: Flask, registry: Registry, world: World, endpoint: str, role: Role | None) -> None:
    client = staff_client(app, registry, role)
    response = client.get(world.fill(PAGES[endpoint]))
    if role is None:
        assert response.status_code == 303 and response.headers["Location"].startswith("/review/sign-in")
    elif role is Role.REVIEWER:
        assert response.status_code == 403 and "needs the lead role" in text(response)
        assert endpoint in denials(registry, staff_member(registry, role=role).id)
    else:
        assert response.status_code == 200, text(response)
        page = text(response)
        assert 'style="' not in page and "<script" not in page  # the CSP allows neither
        assert "<caption" in page or "aria-labelledby" in page or endpoint == "leads.shift_edit"


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r.value if r else "anonymous")
@pytest.mark.parametrize("endpoint", sorted(ACTIONS))
def test_actions_by_role(app: Flask, registry: Registry, world: World, endpoint: str, role: Role | None) -> None:
    client = staff_client(app, registry, role)
    path, form = ACTIONS[endpoint]
    before = changes(registry)
    response = post(client, world.fill(path), {k: world.fill(v) for k, v in form.items()})
    if role is None:
        assert response.status_code == 401 and changes(registry) == before
    elif role is Role.REVIEWER:
        assert response.status_code == 403 and changes(registry) == before
        assert endpoint in denials(registry, staff_member(registry, role=role).id)
    else:
        assert response.status_code in (200, 303), text(response)
        assert changes(registry) > before


@pytest.mark.parametrize("endpoint", sorted(ACTIONS))
def test_posts_without_a_valid_csrf_token_are_refused_and_change_nothing(app: Flask, registry: Registry, world: World,
                                                                        endpoint: str) -> None:
    lead = staff_client(app, registry, Role.LEAD)
    path, form = ACTIONS[endpoint]
    before = changes(registry)
    filled = {k: world.fill(v) for k, v in form.items()}
    missing = post(lead, world.fill(path), filled, token=False)
    forged = post(lead, world.fill(path), {**filled, "csrf_token": "forged"}, token=False)
    assert missing.status_code == forged.status_code == 400
    assert "This page has expired" in text(missing)
    assert changes(registry) == before


def test_disabling_ends_the_reviewers_live_session_at_once(app: Flask, registry: Registry, world: World) -> None:
    lead = staff_client(app, registry, Role.LEAD)
    other = staff_client(app, registry, Role.LEAD, email="other-lead@example.com")
    other_id = staff_member(registry, email="other-lead@example.com").id
    assert other.get("/review/lead/metrics").status_code == 200
    assert post(lead, f"/review/lead/reviewers/{other_id}/disable").status_code == 303
    assert other.get("/review/lead/metrics").status_code == 303  # back to sign-in, on the very next request
    assert post(other, f"/review/lead/reviewers/{world.target}/disable").status_code == 401
    with registry.sessions() as session:
        sessions = session.scalars(sa.select(StaffSession).where(StaffSession.reviewer_id == other_id)).all()
        assert sessions and all(s.revoked_at == registry.now() for s in sessions)
        entry = session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "reviewer.disabled")).one()
    assert entry.subject_id == str(other_id) and entry.details == {"sessions_revoked": 1, "calls_released": 0}
    assert post(lead, f"/review/lead/reviewers/{other_id}/enable").status_code == 303
    assert other.get("/review/lead/metrics").status_code == 303  # enabling does not bring a session back


# ---------------------------------------------------------------- holds

def test_a_manual_hold_placed_and_lifted_through_the_page(app: Flask, registry: Registry, world: World,
                                                          api: Api) -> None:
    lead = staff_client(app, registry, Role.LEAD)
    me = staff_member(registry, role=Role.LEAD)
    placed = post(lead, "/review/lead/accounts/acc-1/holds",
                  {"blocks": ["withdraw_earnings", "appear_in_search"], "reason": "Chargeback under review"})
    assert placed.status_code == 303 and placed.headers["Location"].endswith("/review/lead/accounts/acc-1")
    body = api.restrictions("acc-1").get_json()
    assert body["version"] == 2
    assert body["blocked"] == ["submit_proposals", "withdraw_earnings", "appear_in_search", "change_profile_photo"]
    manual = next(h for h in body["holds"] if h["kind"] == "manual")
    assert manual["placed_by"] == f"reviewer:{me.id}" and manual["reason"] == "Chargeback under review"
    page = text(lead.get("/review/lead/accounts/acc-1"))
    assert "Chargeback under review" in page and "by Lead" in page and "hold.placed" in page
    # Lift the manual hold and the automatic one: a lead may lift any hold, with a reason.
    for hold_id, reason in ((manual["id"], "Bank confirmed"), (world.hold, "Verified by phone")):
        assert post(lead, f"/review/lead/accounts/acc-1/holds/{hold_id}/lift", {"reason": reason}).status_code == 303
    body = api.restrictions("acc-1").get_json()
    assert body["version"] == 4 and body["blocked"] == [] and body["holds"] == []
    with registry.sessions() as session:
        types = session.scalars(sa.select(OutboxEvent.type).where(OutboxEvent.account_id == "acc-1")
                                .order_by(OutboxEvent.seq)).all()
        lifted = session.get_one(Hold, world.hold)
    assert types[-3:] == ["account.hold.placed", "account.hold.lifted", "account.hold.lifted"]
    assert (lifted.lifted_by, lifted.lift_reason) == (f"reviewer:{me.id}", "Verified by phone")
    assert "Verified by phone" in text(lead.get("/review/lead/accounts/acc-1"))


def test_bad_hold_input_is_shown_and_changes_nothing(app: Flask, registry: Registry, world: World, api: Api) -> None:
    lead = staff_client(app, registry, Role.LEAD)
    before = changes(registry)
    for form, field in (({"reason": "No capability"}, "Blocks"), ({"blocks": "withdraw_earnings"}, "Reason"),
                        ({"blocks": "fly", "reason": "x"}, "Blocks"),
                        ({"blocks": "withdraw_earnings", "reason": "x" * 501}, "Reason")):
        refused = post(lead, "/review/lead/accounts/acc-1/holds", form)
        assert refused.status_code == 422 and 'role="alert"' in text(refused) and field in text(refused)
    refused = post(lead, f"/review/lead/accounts/acc-1/holds/{world.hold}/lift", {"reason": "  "})
    assert refused.status_code == 422 and 'role="alert"' in text(refused)
    assert post(lead, f"/review/lead/accounts/acc-2/holds/{world.hold}/lift", {"reason": "x"}).status_code == 404
    assert post(lead, "/review/lead/accounts/acc-1/holds/no-such-hold/lift", {"reason": "x"}).status_code == 404
    assert post(lead, "/review/lead/accounts/nobody/holds", {"blocks": "withdraw_earnings",
                                                             "reason": "x"}).status_code == 404
    assert lead.get("/review/lead/accounts/nobody").status_code == 404
    assert changes(registry) == before and api.restrictions("acc-1").get_json()["version"] == 1
    assert post(lead, f"/review/lead/accounts/acc-1/holds/{world.hold}/lift", {"reason": "ok"}).status_code == 303
    again = post(lead, f"/review/lead/accounts/acc-1/holds/{world.hold}/lift", {"reason": "again"})
    assert again.status_code == 409 and "already lifted" in text(again)


def test_account_search(app: Flask, registry: Registry, world: World) -> None:
    lead = staff_client(app, registry, Role.LEAD)
    listing = text(lead.get("/review/lead/accounts"))
    assert listing.index("acc-1") < listing.index("acc-2")  # the held account first
    exact = lead.get("/review/lead/accounts?q=acc-2")
    assert exact.status_code == 303 and exact.headers["Location"].endswith("/review/lead/accounts/acc-2")
    assert "acc-1" in text(lead.get("/review/lead/accounts?q=acc")) and "No accounts found" in text(
        lead.get("/review/lead/accounts?q=acc%25"))


# ---------------------------------------------------------------- deliveries

def test_dead_events_are_shown_and_redelivered(app: Flask, registry: Registry, world: World) -> None:
    lead = staff_client(app, registry, Role.LEAD)
    with unit_of_work(registry.sessions) as session:
        for event in session.scalars(sa.select(OutboxEvent).where(OutboxEvent.account_id == "acc-1")):
            event.status, event.attempts, event.last_error = DeliveryStatus.DEAD, 40, "connection refused"
    page = text(lead.get("/review/lead/deliveries"))
    assert "Delivery is stopped" in page and world.event in page and "HTTP 503" in page
    assert "connection refused" in page and "Redeliver all 3 dead events" in page
    assert post(lead, "/review/lead/deliveries/redeliver", {"event_id": world.event}).status_code == 303
    assert post(lead, "/review/lead/deliveries/redeliver", {"event_id": world.event}).status_code == 404  # not dead now
    with registry.sessions() as session:
        event = session.scalars(sa.select(OutboxEvent).where(OutboxEvent.event_id == world.event)).one()
        assert (event.status, event.attempts) == (DeliveryStatus.PENDING, 0)
    assert post(lead, "/review/lead/deliveries/redeliver", {"all": "1"}).status_code == 303
    assert post(lead, "/review/lead/deliveries/enable").status_code == 303
    page = text(lead.get("/review/lead/deliveries"))
    assert "No dead-lettered events" in page and "Delivery is stopped" not in page
    with registry.sessions() as session:
        actions = session.scalars(sa.select(AuditEntry.action).where(AuditEntry.action.like("outbox.%"))).all()
    assert actions.count("outbox.redelivered") == 3 and actions.count("outbox.endpoint_enabled") == 1


# ---------------------------------------------------------------- shifts

def test_weekly_shifts_through_the_page(app: Flask, registry: Registry, world: World) -> None:
    lead = staff_client(app, registry, Role.LEAD)
    assert "Time zone: <strong>UTC</strong>" in text(lead.get("/review/lead/shifts"))
    refused = post(lead, "/review/lead/shifts", {**SHIFT_FORM, "reviewer_id": str(world.target),
                                                 "time_zone": "Berlin"})
    assert refused.status_code == 422 and 'role="alert"' in text(refused) and "not a time zone name" in text(refused)
    overlap = post(lead, "/review/lead/shifts", {**SHIFT_FORM, "weekday": "2", "reviewer_id": str(world.target)})
    assert overlap.status_code == 409 and 'role="alert"' in text(overlap)
    assert post(lead, f"/review/lead/shifts/{world.shift}", SHIFT_FORM).status_code == 303
    with registry.sessions() as session:
        rows = session.scalars(sa.select(ReviewerShift).where(ReviewerShift.recurring_shift_id == world.shift)).all()
    # The Tuesdays of the 14 days from Sunday 2026-11-22; 10:00 in Berlin is 09:00 UTC in winter.
    assert sorted(r.starts_at for r in rows) == [dt.datetime(2026, 11, 24, 9, tzinfo=dt.timezone.utc),
                                                 dt.datetime(2026, 12, 1, 9, tzinfo=dt.timezone.utc)]
    assert lead.get("/review/lead/shifts/999").status_code == 404
    assert post(lead, "/review/lead/shifts/999/remove").status_code == 404
    assert post(lead, f"/review/lead/shifts/{world.shift}/remove").status_code == 303
    with registry.sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(ReviewerShift)) == 0


# ---------------------------------------------------------------- reviewers

def test_staff_rules(app: Flask, registry: Registry, world: World) -> None:
    lead = staff_client(app, registry, Role.LEAD)
    admin = staff_client(app, registry, Role.ADMIN)
    me, boss = staff_member(registry, role=Role.LEAD), staff_member(registry, role=Role.ADMIN)
    refusals = [
        post(lead, f"/review/lead/reviewers/{me.id}/disable"),
        post(lead, f"/review/lead/reviewers/{me.id}/role", {"role": "reviewer"}),
        post(lead, f"/review/lead/reviewers/{world.target}/role", {"role": "admin"}),
        post(lead, f"/review/lead/reviewers/{boss.id}/disable"),
        post(lead, f"/review/lead/reviewers/{boss.id}/role", {"role": "reviewer"}),
        post(lead, "/review/lead/reviewers", {"email": "root@example.com", "role": "admin"}),
        post(admin, f"/review/lead/reviewers/{boss.id}/role", {"role": "lead"}),
    ]
    assert [r.status_code for r in refusals] == [403] * len(refusals)
    assert all('role="alert"' in text(r) for r in refusals)
    assert post(lead, "/review/lead/reviewers/999/disable").status_code == 404
    assert post(lead, f"/review/lead/reviewers/{world.target}/role", {"role": "boss"}).status_code == 422
    assert post(admin, f"/review/lead/reviewers/{world.target}/role", {"role": "admin"}).status_code == 303
    created = post(lead, "/review/lead/reviewers", {"email": "Nia@Example.com", "display_name": "Nia",
                                                    "role": "lead"})
    assert created.status_code == 303 and created.headers["Cache-Control"] == "no-store"
    listing = text(lead.get("/review/lead/reviewers"))
    assert "was added as lead" in listing and "password" not in listing.split("<table>")[0].lower()
    nia = staff_member(registry, email="nia@example.com")
    # No password exists to show anyone: Nia chooses hers through the link mailed to her own address.
    assert nia.role is Role.LEAD and not has_usable_password(nia) and not check_password(nia, "")
    [invitation] = mailbox(registry)[-1:]
    assert invitation.recipient == "nia@example.com" and setup_path(invitation.body) not in listing
    duplicate = post(lead, "/review/lead/reviewers", {"email": "nia@example.com", "role": "reviewer"})
    assert duplicate.status_code == 409 and 'role="alert"' in text(duplicate)
    with registry.sessions() as session:
        roles = session.execute(sa.select(Reviewer.email, Reviewer.role, Reviewer.active)
                                .where(Reviewer.id.in_([me.id, boss.id, world.target]))).all()
        changed = session.scalars(sa.select(AuditEntry.details).where(AuditEntry.action == "reviewer.role_changed")
                                  ).all()
    assert sorted(roles) == [("admin@example.com", Role.ADMIN, True), ("lead@example.com", Role.LEAD, True),
                             ("target@example.com", Role.ADMIN, True)]
    assert changed == [{"from": "reviewer", "to": "admin"}]


def test_resetting_two_step_ends_their_sessions(app: Flask, registry: Registry, world: World) -> None:
    lead = staff_client(app, registry, Role.LEAD)
    other = staff_client(app, registry, Role.LEAD, email="other-lead@example.com")
    me, other_id = staff_member(registry, role=Role.LEAD).id, staff_member(registry, email="other-lead@example.com").id
    with registry.sessions.begin() as session:
        session.get_one(Reviewer, other_id).totp_secret = "JBSWY3DPEHPK3PXP"
    mine = post(lead, f"/review/lead/reviewers/{me}/two-step/reset")
    assert mine.status_code == 403 and 'role="alert"' in text(mine)
    assert post(lead, "/review/lead/reviewers/999/two-step/reset").status_code == 404
    assert post(lead, f"/review/lead/reviewers/{other_id}/two-step/reset").status_code == 303
    assert other.get("/review/lead/metrics").status_code == 303
    with registry.sessions() as session:
        assert session.get_one(Reviewer, other_id).totp_secret is None


# ---------------------------------------------------------------- metrics

def _call(session, account: str, *, created: dt.datetime, started: dt.datetime | None = None,
          scheduled: dt.datetime | None = None, status: SessionStatus = SessionStatus.COMPLETED) -> CallSession:
    call = CallSession(account_id=account, status=status, created_at=created, updated_at=created,
                       scheduled_for=scheduled, started_at=started, claimed_at=started)
    session.add(call)
    session.flush()
    return call


def _decide(session, call: CallSession, result: Outcome, after: dt.timedelta, reviewer_id: int, *,
            second: str | None = None, reasons: list[str] | None = None) -> None:
    outcome = OutcomeRecord(call_session_id=call.id, account_id=call.account_id, result=result,
                            decided_by_id=reviewer_id, decided_at=call.started_at + after,
                            final=second is not None or result is not Outcome.FAILED, second_decision=second)
    if hasattr(OutcomeRecord, "reason_codes"):  # migration 0007 adds them
        outcome.reason_codes = reasons or []
    session.add(outcome)


def test_metrics_on_known_data(app: Flask, registry: Registry, api: Api, clock: FakeClock) -> None:
    api.put_account("acc-m")
    reviewer = staff_member(registry, email="rev@example.com")
    now = clock()  # 2026-11-22 09:00 UTC
    minute = dt.timedelta(minutes=1)
    with unit_of_work(registry.sessions) as session:
        calls = [_call(session, "acc-m", created=now - 2 * dt.timedelta(hours=1) + 3 * i * minute,
                       started=now - 2 * dt.timedelta(hours=1) + 3 * i * minute + i * minute) for i in range(1, 11)]
        # Booked three days ago for 08:30 and taken up at 08:32: a two-minute wait, not three days.
        _call(session, "acc-m", created=now - dt.timedelta(days=3), scheduled=now - 30 * minute,
              started=now - 28 * minute)
        yesterday = _call(session, "acc-m", created=now - 10 * dt.timedelta(hours=1) + 20 * minute,
                          started=now - 9 * dt.timedelta(hours=1) - 10 * minute)  # 23:50 yesterday, waited 30 min
        for _ in range(2):
            _call(session, "acc-m", created=now - 5 * minute, status=SessionStatus.WAITING)
        _decide(session, calls[0], Outcome.PASSED, 10 * minute, reviewer.id, reasons=["id_matches"])
        _decide(session, calls[1], Outcome.FAILED, 20 * minute, reviewer.id, reasons=["id_expired", "id_matches"])
        _decide(session, calls[2], Outcome.FAILED, 30 * minute, reviewer.id, second="confirmed")
        _decide(session, yesterday, Outcome.INCONCLUSIVE, 5 * minute, reviewer.id)
    with registry.sessions() as session:
        m = lead_metrics(session, now=now)
    # Waits today: 1, 2, 2 (booked), 3 … 10 minutes.
    assert (m.waiting_now, m.waits_today) == (2, 11)
    assert (m.median_wait, m.p90_wait) == (5 * minute, 9 * minute)
    assert (m.handled_today, m.average_handling, m.decisions_today) == (3, 20 * minute, 3)
    counts = {c.label: (c.today, c.period) for c in m.decisions}
    assert counts["passed"] == (1, 1) and counts["failed, awaiting second review"] == (1, 1)
    assert counts["failed, confirmed"] == (1, 1) and counts["inconclusive"] == (0, 1) and counts["no_show"] == (0, 0)
    if m.reasons is not None:
        assert {c.label: (c.today, c.period) for c in m.reasons} == {"id_matches": (2, 2), "id_expired": (1, 1)}
    assert len(m.series) == 30 and m.series[-1].day == now.date()
    assert (m.series[-1].decisions, m.series[-1].median_wait) == (3, 5 * minute)
    assert (m.series[-2].decisions, m.series[-2].median_wait) == (1, 30 * minute)
    assert all(p.decisions == 0 and p.median_wait is None for p in m.series[:-2])
    page = text(staff_client(app, registry, Role.LEAD).get("/review/lead/metrics"))
    assert "<dd>5 min</dd>" in page and "<dd>9 min</dd>" in page and "<dd>20 min</dd>" in page
    assert page.count('role="img"') == 2 and "<caption>Per day</caption>" in page
    assert "<th scope=\"row\">2026-11-21</th><td>1</td><td>30 min</td>" in page
