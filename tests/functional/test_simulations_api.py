"""POST /api/v1/simulations/accounts/{id}/outcome: a simulated call on the real path (README, "Testing your
integration end to end"), compared with the same outcome reached through the dashboard."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from tests.conftest import API_KEY, Api, FakeClock, assert_problem, make_settings
from tests.support.fake_meet import FakeMeetGateway
from tests.support.review_desk import attend, events, staff, waiting
from tests.support.staff import csrf_token
from verify_service import create_app
from verify_service.accounts.models import Account, Hold
from verify_service.audit.models import AuditEntry
from verify_service.audit.services import verify_chain
from jobs import calls as call_jobs
from verify_service.calls.attendance import sessions_to_sync
from verify_service.calls.models import CallSession, OutcomeRecord
from verify_service.calls.state import SessionStatus
from verify_service.leads.metrics import lead_metrics
from verify_service.freelancer import journey
from verify_service.leads.shifts import plans
from verify_service.leads.staffing import locked_staff, staff_list
from verify_service.registry import KEY, Registry
from verify_service.review.quality import qa_list
from verify_service.simulations.identities import SIMULATOR_EMAIL
from verify_service.staff.errors import ReviewerNotFound
from verify_service.staff.models import Reviewer, Role, StaffSession
from verify_service.staff.services import sign_in_with_google, sign_in_with_password

OUTCOMES = ("passed", "failed", "inconclusive", "no_show")


@pytest.fixture
def gateway(registry: Registry) -> FakeMeetGateway:
    registry.meet = FakeMeetGateway()
    return registry.meet


def simulate(api: Api, account_id: str, body: dict[str, Any], key: str | None = None) -> Any:
    headers = dict(api.auth, **({"Idempotency-Key": key} if key else {}))
    return api.client.post(f"/api/v1/simulations/accounts/{account_id}/outcome", json=body, headers=headers)


def requested(api: Api, account_id: str) -> None:
    assert api.put_account(account_id, email=f"{account_id}@example.com").status_code == 201
    assert api.request_verification(account_id, {"reason": "new_account", "place_hold": True}).status_code == 201


def trace(registry: Registry, account_id: str) -> tuple[list[str], list[tuple[str, bool]], str, int]:
    """What the account service sees of the account: event types in seq order, holds (kind, active), status, version."""
    with registry.sessions() as db:
        account = db.get_one(Account, account_id)
        holds = sorted((h.kind.value, h.lifted_at is None) for h in db.scalars(
            sa.select(Hold).where(Hold.account_id == account_id)))
        return ([e.type for e in events(registry) if e.account_id == account_id], holds,
                account.verification_status.value, account.restrictions_version)


def by_dashboard(app: Flask, api: Api, registry: Registry, gateway: FakeMeetGateway, account_id: str,
                 outcome: str, clock: FakeClock) -> None:
    """The same outcome reached by people: a reviewer claims and decides, a lead confirms a fail."""
    call_id = waiting(api, registry, gateway, account_id)
    ana = staff(app, registry, email=f"ana-{account_id}@example.com")
    assert ana.claim(call_id).status_code == 303
    attend(registry, call_id, freelancer=outcome != "no_show", reviewer=ana.reviewer, minutes_ago=10)
    if outcome == "passed":
        assert ana.pass_call(call_id, number=f"P{abs(hash(account_id)) % 10**7:07d}").status_code == 303
        return
    reasons = {"failed": ("id_mismatch",), "inconclusive": ("poor_video",)}.get(outcome, ())
    assert ana.decide(call_id, outcome, reasons=reasons).status_code == 303
    if outcome == "failed":
        lea = staff(app, registry, Role.LEAD, email=f"lea-{account_id}@example.com")
        with registry.sessions() as db:
            outcome_id = db.scalars(sa.select(OutcomeRecord.id).where(OutcomeRecord.call_session_id == call_id)).one()
        assert lea.second_review(outcome_id, "confirm").status_code == 303


@pytest.mark.parametrize("outcome", OUTCOMES)
def test_a_simulation_ends_as_the_same_call_through_the_dashboard_does(
        app: Flask, api: Api, registry: Registry, gateway: FakeMeetGateway, clock: FakeClock, outcome: str) -> None:
    by_dashboard(app, api, registry, gateway, "acc-real", outcome, clock)
    requested(api, "acc-sim")
    response = simulate(api, "acc-sim", {"outcome": outcome})
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    real, simulated = trace(registry, "acc-real"), trace(registry, "acc-sim")
    assert simulated == real  # the same events in the same order, the same holds, status and version
    assert body["outcome"] == outcome and body["restrictions_version"] == simulated[3]
    sim_events = [e for e in events(registry) if e.account_id == "acc-sim"]
    # The request's own two events (verification.required, the pending hold) are real; the call's are simulated.
    assert [e.data.get("simulated") for e in sim_events] == [None, None] + [True] * (len(sim_events) - 2)
    assert not any(e.data.get("simulated") for e in events(registry) if e.account_id == "acc-real")
    with registry.sessions() as db:
        call = db.get_one(CallSession, body["call_session_id"])
        assert call.status in (SessionStatus.COMPLETED,) and call.outcome.value == outcome
        assert call.meet_host == "host@simulations.verify-service.invalid"  # never the configured gateway's
        assert verify_chain(db).ok


def test_a_no_show_runs_on_a_clock_that_started_the_wait_earlier(
        api: Api, registry: Registry, clock: FakeClock) -> None:
    requested(api, "acc-1")
    body = simulate(api, "acc-1", {"outcome": "no_show"}).get_json()
    with registry.sessions() as db:
        call = db.get_one(CallSession, body["call_session_id"])
        wait = dt.timedelta(minutes=registry.settings.no_show_wait_minutes)
        assert call.created_at == call.reviewer_joined_at == clock() - wait
        assert call.ended_at == clock() and call.freelancer_joined_at is None
        assert call.reviewer_connected_seconds == wait.total_seconds()


def test_reasons_are_passed_on_and_checked(api: Api, registry: Registry) -> None:
    requested(api, "acc-1")
    assert simulate(api, "acc-1", {"outcome": "inconclusive", "reasons": ["refused_camera"]}).status_code == 201
    inconclusive = [e for e in events(registry) if e.type == "verification.inconclusive"]
    assert inconclusive[0].data["reason_codes"] == ["refused_camera"]
    for body, field in (({"outcome": "maybe"}, "outcome"), ({"outcome": "failed", "reasons": ["nope"]}, "reasons"),
                        ({"outcome": "passed", "reasons": ["id_mismatch"]}, "reasons"),
                        ({"outcome": "failed", "reasons": "id_mismatch"}, "reasons"),
                        ({"outcome": "failed", "extra": 1}, "extra")):
        problem = assert_problem(simulate(api, "acc-1", body), 422, "validation_failed")
        assert any(field in error["field"] for error in problem["errors"]), problem


def test_refusals(api: Api, registry: Registry, gateway: FakeMeetGateway) -> None:
    assert_problem(simulate(api, "acc-nobody", {"outcome": "passed"}), 404, "account_not_found")
    assert api.put_account("acc-1").status_code == 201
    assert_problem(simulate(api, "acc-1", {"outcome": "passed"}), 409, "no_open_verification_request")
    call_id = waiting(api, registry, gateway, "acc-2")
    problem = assert_problem(simulate(api, "acc-2", {"outcome": "passed"}), 409, "session_already_active")
    assert call_id in problem["detail"]
    requested(api, "acc-3")
    assert simulate(api, "acc-3", {"outcome": "passed"}).status_code == 201
    assert_problem(simulate(api, "acc-3", {"outcome": "passed"}), 409, "no_open_verification_request")
    unauthenticated = api.client.post("/api/v1/simulations/accounts/acc-3/outcome", json={"outcome": "passed"})
    assert_problem(unauthenticated, 401, "unauthorized")
    with registry.sessions() as db:  # refusals left nothing behind: one call on acc-2, one on acc-3
        assert db.scalar(sa.select(sa.func.count()).select_from(CallSession)) == 2


def test_a_closed_account_is_refused_as_the_api_refuses_it_elsewhere(api: Api, registry: Registry) -> None:
    requested(api, "acc-1")
    with registry.sessions() as db, db.begin():
        db.get_one(Account, "acc-1").closed_at = registry.now()
    elsewhere = api.request_verification("acc-1", {"reason": "manual"})
    problem = assert_problem(simulate(api, "acc-1", {"outcome": "passed"}), elsewhere.status_code,
                             elsewhere.get_json()["code"])
    assert problem["code"] == "account_closed"


def test_an_idempotency_key_replays_the_first_simulation(api: Api, registry: Registry) -> None:
    requested(api, "acc-1")
    first = simulate(api, "acc-1", {"outcome": "inconclusive"}, key="sim-1")
    again = simulate(api, "acc-1", {"outcome": "inconclusive"}, key="sim-1")
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true" and again.get_json() == first.get_json()
    with registry.sessions() as db:
        assert db.scalar(sa.select(sa.func.count()).select_from(CallSession)) == 1
    assert_problem(simulate(api, "acc-1", {"outcome": "no_show"}, key="sim-1"), 409, "idempotency_key_reused")


def test_the_built_in_identities_are_staff_nobody_can_be(api: Api, registry: Registry) -> None:
    requested(api, "acc-1")
    assert simulate(api, "acc-1", {"outcome": "failed"}).status_code == 201
    requested(api, "acc-2")
    assert simulate(api, "acc-2", {"outcome": "failed"}).status_code == 201  # made once, used again
    with registry.sessions() as db, db.begin():
        builtin = db.scalars(sa.select(Reviewer).where(Reviewer.builtin.is_(True)).order_by(Reviewer.id)).all()
        assert [(r.role, r.totp_secret) for r in builtin] == [(Role.REVIEWER, None), (Role.LEAD, None)]
        decided = db.scalars(sa.select(OutcomeRecord)).all()
        assert {(o.decided_by_id, o.second_reviewer_id) for o in decided} == {(builtin[0].id, builtin[1].id)}
        assert staff_list(db) == [] and plans(db, now=registry.now()) == []  # not on the Reviewers or Shifts pages
        for reviewer in builtin:
            with pytest.raises(ReviewerNotFound):  # no lead action (disable, role, reset) reaches one
                locked_staff(db, reviewer.id)
        assert journey.reviewers_working(db, now=registry.now()) == 0  # the simulator is never "working"
        assert journey.average_handling(db, now=registry.now()) == journey.DEFAULT_HANDLING
        for reviewer in builtin:
            step = sign_in_with_password(db, reviewer.email, "x" * 20, ip="127.0.0.1", now=registry.now())
            assert step.token is None and step.refusal is not None
            google = sign_in_with_google(db, {"email": reviewer.email, "email_verified": True,
                                              "hd": "simulations.verify-service.invalid"},
                                         allowed_domain="simulations.verify-service.invalid", ip=None,
                                         now=registry.now())
            assert google.token is None
        actors = {e.action: e.actor for e in db.scalars(sa.select(AuditEntry).where(AuditEntry.account_id == "acc-1"))}
        assert actors["outcome.recorded"] == f"reviewer:{builtin[0].id}"
        assert actors["outcome.second_review"] == f"reviewer:{builtin[1].id}"
        assert actors["simulation.run"] == "account-service"
        assert verify_chain(db).ok


def test_a_simulated_pass_is_never_sampled_nor_counted(app: Flask, api: Api, registry: Registry) -> None:
    registry.settings = dataclasses.replace(registry.settings, pass_sample_rate=1.0)
    requested(api, "acc-1")
    assert simulate(api, "acc-1", {"outcome": "passed"}).status_code == 201
    with registry.sessions() as db:
        assert db.scalars(sa.select(OutcomeRecord.qa_sampled_at)).one() is None
        assert qa_list(db) == []
        metrics = lead_metrics(db, now=registry.now())
        assert metrics.waits_today == 0 and sum(c.today for c in metrics.decisions) == 0


def test_off_in_production_like_settings_it_is_not_there(database_url: str, tmp_path: Path) -> None:
    off = create_app(make_settings(database_url, tmp_path, simulations=False))
    client = off.test_client()
    response = client.post("/api/v1/simulations/accounts/acc-1/outcome", json={"outcome": "passed"},
                           headers={"Authorization": f"Bearer {API_KEY}"})
    assert_problem(response, 404, "not_found")
    assert not any("simulations" in path for path in client.get("/api/v1/openapi.json").get_json()["paths"])
    off.extensions[KEY].engine.dispose()


def test_the_readme_example_a_simulated_fail(api: Api, registry: Registry) -> None:
    requested(api, "fl-43")
    body = simulate(api, "fl-43", {"outcome": "failed", "reasons": ["id_mismatch"]}, key="sim-fl-43-1").get_json()
    assert body["restrictions_version"] == 2
    fail = [(e.type, e.data.get("restrictions_version")) for e in events(registry)]
    assert [t for t, _ in fail] == ["verification.required", "account.hold.placed", "verification.session.started",
                                    "verification.failed", "account.hold.placed", "account.hold.lifted",
                                    "account.proposals.cancel_requested"]
    assert [v for t, v in fail][3:] == [2, 2, 2, 2]
    assert api.restrictions("fl-43").get_json()["blocked"] == ["submit_proposals", "withdraw_earnings",
                                                              "accept_direct_hires", "appear_in_search"]


def test_the_sign_in_form_refuses_the_simulator(app: Flask, api: Api, registry: Registry) -> None:
    requested(api, "acc-1")
    assert simulate(api, "acc-1", {"outcome": "inconclusive"}).status_code == 201
    client = app.test_client()
    for password in ("", "x" * 20):
        response = client.post("/review/sign-in", data={"csrf_token": csrf_token(client, "/review/sign-in"),
                                                        "email": SIMULATOR_EMAIL, "password": password})
        assert response.status_code != 303
    with registry.sessions() as db:
        assert db.scalar(sa.select(sa.func.count()).select_from(StaffSession)) == 0


def test_the_jobs_leave_a_simulated_call_alone(app: Flask, api: Api, registry: Registry,
                                               gateway: FakeMeetGateway) -> None:
    """Its meeting lives in no gateway the service has: the attendance job never re-reads it (which would find
    nobody there and erase the evidence of the decision), and no conference is left for the ending job.
    Found by the state machine: a fail whose reviewer the job then lost."""
    requested(api, "acc-1")
    response = simulate(api, "acc-1", {"outcome": "failed"})
    assert response.status_code == 201, response.get_data(as_text=True)
    call_id = response.get_json()["call_session_id"]
    with registry.sessions() as db:
        before = db.get_one(CallSession, call_id)
        joined, ended = before.reviewer_joined_at, before.conference_ended_at
        assert before.conference_end_requested_at is None or ended is not None  # nothing left to end
        assert call_id not in sessions_to_sync(db, now=registry.now())
    call_jobs.sync_attendance(app)
    with registry.sessions() as db:
        after = db.get_one(CallSession, call_id)
        assert (after.reviewer_joined_at, after.conference_ended_at) == (joined, ended)
        assert joined is not None
