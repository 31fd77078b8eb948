"""Quality review of passes, a lead canceling a call, and what leads see of it (both backends)."""

from __future__ import annotations

import random

import pytest
import sqlalchemy as sa
from flask import Flask

from tests.conftest import Api
from tests.support.fake_meet import FakeMeetGateway
from tests.support.review_desk import Staff, attend, events, load_call, page_text, staff, waiting
from verify_service.accounts.domain import HoldKind
from verify_service.accounts.models import Hold
from verify_service.calls.models import OutcomeRecord
from verify_service.calls.state import EndReason, Outcome, SessionStatus
from verify_service.registry import Registry
from verify_service.review import claims
from verify_service.staff.models import Role


@pytest.fixture
def gateway(registry: Registry) -> FakeMeetGateway:
    registry.meet = FakeMeetGateway()
    return registry.meet


def passed(api: Api, registry: Registry, gateway: FakeMeetGateway, desk: Staff, account_id: str) -> OutcomeRecord:
    call_id = waiting(api, registry, gateway, account_id)
    desk.claim(call_id)
    attend(registry, call_id)
    assert desk.pass_call(call_id).status_code == 303
    with registry.sessions() as session:
        return session.scalars(sa.select(OutcomeRecord).where(OutcomeRecord.call_session_id == call_id)).one()


def active_kinds(registry: Registry, account_id: str) -> set[HoldKind]:
    with registry.sessions() as session:
        return set(session.scalars(sa.select(Hold.kind).where(Hold.account_id == account_id,
                                                              Hold.lifted_at.is_(None))))


def test_sampled_passes_stand_and_a_lead_confirms_or_overturns_them(
        app: Flask, api: Api, registry: Registry, gateway: FakeMeetGateway) -> None:
    registry.settings = registry.settings.replace(pass_sample_rate=1.0)
    rita = staff(app, registry, email="rita@example.com")
    lea, max_ = staff(app, registry, Role.LEAD, email="lea@example.com"), staff(app, registry, Role.LEAD,
                                                                                 email="max@example.com")
    first, second = passed(api, registry, gateway, rita, "acc-1"), passed(api, registry, gateway, lea, "acc-2")
    assert first.qa_sampled_at is not None and second.qa_sampled_at is not None
    assert api.restrictions("acc-1").get_json()["verification"]["status"] == "verified"  # the pass stands

    listed = page_text(max_.get("/review/quality"))
    assert listed.count("Overturn to failed") == 2
    own = page_text(lea.get("/review/quality"))
    assert "You recorded this pass, so another lead must review it" in own
    refused = lea.post(f"/review/outcomes/{second.id}/quality", {"decision": "overturn",
                                                                  "reason_codes": "id_mismatch"})
    assert refused.status_code == 403 and "another lead must review it" in page_text(refused)
    unreasoned = max_.post(f"/review/outcomes/{first.id}/quality", {"decision": "overturn"})
    assert unreasoned.status_code == 422 and "choose at least one reason" in page_text(unreasoned)

    assert max_.post(f"/review/outcomes/{second.id}/quality", {"decision": "confirm"}).status_code == 303
    overturned = max_.post(f"/review/outcomes/{first.id}/quality",
                           {"decision": "overturn", "reason_codes": "id_mismatch", "notes": "Photo reused"})
    assert overturned.status_code == 303
    assert "Pass overturned" in page_text(max_.get("/review/quality"))
    doc = api.restrictions("acc-1").get_json()
    assert doc["verification"]["status"] == "failed" and "withdraw_earnings" in doc["blocked"]
    assert active_kinds(registry, "acc-1") == {HoldKind.VERIFICATION_FAILED}
    assert api.restrictions("acc-2").get_json()["verification"]["status"] == "verified"
    failed = [e for e in events(registry, "verification.failed") if e.account_id == "acc-1"]
    assert [e.data["reason_codes"] for e in failed] == [["id_mismatch"]]
    assert [e.type for e in events(registry) if e.account_id == "acc-1"][-3:] == [
        "verification.failed", "account.hold.placed", "account.proposals.cancel_requested"]
    assert load_call(registry, first.call_session_id).outcome is Outcome.FAILED
    again = max_.post(f"/review/outcomes/{first.id}/quality", {"decision": "confirm"})
    assert again.status_code == 409  # reviewed once

    metrics = page_text(max_.get("/review/lead/metrics"))
    assert "Passes sampled</dt><dd>2" in metrics and "Overturned</dt><dd>1" in metrics
    assert "Overturn rate</dt><dd>50 %" in metrics
    assert "Passed, overturned in quality review" in metrics


def test_a_pass_superseded_by_a_later_decision_can_no_longer_be_overturned(
        app: Flask, api: Api, registry: Registry, gateway: FakeMeetGateway, clock) -> None:
    registry.settings = registry.settings.replace(pass_sample_rate=1.0)
    first = passed(api, registry, gateway, staff(app, registry, email="rita@example.com"), "acc-1")
    clock.advance(hours=1)  # (staff sessions end after 15 minutes idle: sign in again)
    later = passed(api, registry, gateway, staff(app, registry, email="rita@example.com"), "acc-1")
    lea = staff(app, registry, Role.LEAD)
    refused = lea.post(f"/review/outcomes/{first.id}/quality", {"decision": "overturn", "reason_codes": "other",
                                                                 "notes": "Old photo"})
    assert refused.status_code == 409 and "place a manual hold" in page_text(refused)
    assert api.restrictions("acc-1").get_json()["verification"]["status"] == "verified"
    assert later.qa_decision is None


@pytest.mark.parametrize(("rate", "draws", "sampled"), [(0.0, [0.0], False), (0.05, [0.049], True),
                                                         (0.05, [0.05], False)])
def test_the_sample_rate_decides_which_passes_are_sampled(
        app: Flask, api: Api, registry: Registry, gateway: FakeMeetGateway, rate: float, draws: list[float],
        sampled: bool) -> None:
    registry.settings = registry.settings.replace(pass_sample_rate=rate)
    rita = staff(app, registry)
    call_id = waiting(api, registry, gateway, "acc-1")
    rita.claim(call_id)
    attend(registry, call_id)
    assert rita.record_id(call_id, "P1234567").status_code == 303

    pending = list(draws)

    class Drawn(random.Random):
        def random(self) -> float:
            return pending.pop(0)

    outcome = claims.decide(registry.sessions, gateway, call_id, reviewer_id=rita.reviewer.id, result=Outcome.PASSED,
                            notes=None, reason_codes=[], checklist=dict.fromkeys(registry.settings.checklist, True),
                            settings=registry.settings, now=registry.now(), rng=Drawn())
    assert (outcome.qa_sampled_at is not None) is sampled


def test_a_lead_cancels_a_call_from_its_page(app: Flask, api: Api, registry: Registry,
                                            gateway: FakeMeetGateway) -> None:
    call_id = waiting(api, registry, gateway, "acc-1")
    rita, lea = staff(app, registry), staff(app, registry, Role.LEAD)
    rita.claim(call_id)
    assert "Cancel the call" not in page_text(rita.get(f"/review/sessions/{call_id}"))  # leads only
    assert rita.post(f"/review/sessions/{call_id}/cancel", {"reason": "duplicate"}).status_code == 403
    assert "Cancel the call" in page_text(lea.get(f"/review/sessions/{call_id}"))
    unexplained = lea.post(f"/review/sessions/{call_id}/cancel", {"reason": ""})
    assert unexplained.status_code == 422 and load_call(registry, call_id).status is SessionStatus.IN_PROGRESS
    assert lea.post(f"/review/sessions/{call_id}/cancel", {"reason": "freelancer_request"}).status_code == 303
    call = load_call(registry, call_id)
    assert (call.status, call.end_reason) == (SessionStatus.CANCELED, EndReason.LEAD)
    [canceled] = events(registry, "verification.session.canceled")
    assert (canceled.data["by"], canceled.data["session"]["id"]) == ("lead", call_id)
    again = lea.post(f"/review/sessions/{call_id}/cancel", {"reason": "duplicate"})
    assert again.status_code == 409
