"""The reviewer dashboard over the test client (both backends): the queue, claiming, the call page, decisions.

Access rules (every role × action) are in test_review_access.py; concurrency
and idle claims in tests/integration/test_review_claims.py.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re

import pytest
import sqlalchemy as sa
from flask import Flask

from integrations.google_meet import MeetError
from tests.conftest import Api, FakeClock
from tests.support.fake_meet import FakeMeetGateway
from tests.support.review_desk import FULL_CHECKLIST, attend, events, load_call, page_text, staff, waiting
from verify_service.accounts.domain import HoldKind
from verify_service.accounts.models import Hold
from verify_service.audit.models import AuditEntry
from verify_service.calls.models import CallParticipant, CallSession, OutcomeRecord
from verify_service.calls.state import SessionStatus
from verify_service.registry import Registry
from verify_service.review.models import IdentityDocument
from verify_service.staff.models import Role

PENDING = ["submit_proposals", "change_profile_photo"]


@pytest.fixture
def gateway(registry: Registry) -> FakeMeetGateway:
    registry.meet = FakeMeetGateway()
    return registry.meet


def outcome_of(registry: Registry, call_id: str) -> OutcomeRecord:
    with registry.sessions() as session:
        return session.scalars(sa.select(OutcomeRecord).where(OutcomeRecord.call_session_id == call_id)).one()


def audit(registry: Registry, action: str) -> list[AuditEntry]:
    with registry.sessions() as session:
        return list(session.scalars(sa.select(AuditEntry).where(AuditEntry.action == action)
                                    .order_by(AuditEntry.seq)))


# ---------------------------------------------------------------- the queue

def test_the_queue_shows_who_waits_oldest_first_with_a_badge_after_five_minutes(
        app: Flask, api: Api, registry: Registry, gateway: FakeMeetGateway, clock: FakeClock) -> None:
    first = waiting(api, registry, gateway, "acc-ana", name="Ana Lima", country="PT")
    clock.advance(minutes=2)
    second = waiting(api, registry, gateway, "acc-bo", name="Bo Chen", country="SG")
    with registry.sessions.begin() as session:
        session.get_one(CallSession, second).system_check = {
            "verdict": "supported", "browser": "chrome", "browser_major": 142, "os": "windows", "os_version": "11"}
    clock.advance(minutes=4)  # Ana has waited 6 minutes, Bo 4
    desk = staff(app, registry)

    page = page_text(desk.get("/review"))
    assert page.index("Ana Lima") < page.index("Bo Chen")
    assert "6 min 00 s" in page and "4 min 00 s" in page and page.count("Over 5 min") == 1
    assert "Chrome 142 on Windows 11 — supported" in page and "Not recorded" in page
    assert "Walk-in" in page and ">PT<" in page and ">SG<" in page
    live = desk.get_json("/review")
    assert live.status_code == 200 and live.headers["Cache-Control"] == "no-store"
    body = live.get_json()
    assert [s["call_id"] for s in body["sessions"]] == [first, second] and body["count"] == 2
    assert [(s["late"], s["attempt"], s["name"]) for s in body["sessions"]] == [(True, 1, "Ana Lima"),
                                                                               (False, 1, "Bo Chen")]
    assert "Over 5 min" in body["html"] and "<script" not in body["html"]


def test_a_booked_call_joins_the_queue_ten_minutes_before_its_time(
        app: Flask, api: Api, registry: Registry, gateway: FakeMeetGateway, clock: FakeClock) -> None:
    call_id = waiting(api, registry, gateway, "acc-ana")
    with registry.sessions.begin() as session:  # turn it into an appointment in a quarter of an hour
        call = session.get_one(CallSession, call_id)
        call.status, call.scheduled_for = SessionStatus.SCHEDULED, clock() + dt.timedelta(minutes=15)
    desk = staff(app, registry)
    assert desk.get_json("/review").get_json()["count"] == 0
    assert desk.claim(call_id).status_code == 409  # not claimable before its time
    clock.advance(minutes=6)
    [row] = desk.get_json("/review").get_json()["sessions"]
    assert row["call_id"] == call_id and row["scheduled_for"] is not None and row["wait_seconds"] == 0
    assert desk.claim(call_id).status_code == 303
    assert load_call(registry, call_id).status is SessionStatus.IN_PROGRESS


# ---------------------------------------------------------------- claiming

def test_claiming_makes_the_reviewer_cohost_and_opens_the_session_page(
        app: Flask, api: Api, registry: Registry, gateway: FakeMeetGateway) -> None:
    call_id = waiting(api, registry, gateway, "acc-ana", photo_url="https://photos.example/ana.jpg")
    desk = staff(app, registry, email="rita@example.com")
    claimed = desk.claim(call_id)
    assert claimed.status_code == 303 and claimed.headers["Location"].endswith(f"/review/sessions/{call_id}")
    call = load_call(registry, call_id)
    assert (call.status, call.claimed_by_id) == (SessionStatus.IN_PROGRESS, desk.reviewer.id)
    assert gateway.spaces[call.meet_space].members["rita@example.com"] is True  # co-host

    page = desk.get(f"/review/sessions/{call_id}")
    text = page_text(page)
    assert page.status_code == 200 and "img-src 'self' https:" in page.headers["Content-Security-Policy"]
    assert "Ana Lima" in text and 'src="https://photos.example/ana.jpg"' in text
    assert f'href="{call.meet_uri}"' in text and "Join the Meet call" in text
    for question in registry.settings.checklist:
        assert question in text
    assert 'name="document_number"' in text and "suspected_duplicate" in text
    assert "not joined yet" in text  # attendance, before anyone came
    assert desk.get_json("/review").get_json()["count"] == 0
    assert "Ana Lima" in page_text(desk.get("/review/mine"))
    assert desk.claim(call_id).status_code == 303  # a double click is harmless
    assert len(audit(registry, "session.claimed")) == 1


def test_the_second_reviewer_to_claim_is_told_someone_else_has_it(
        app: Flask, api: Api, registry: Registry, gateway: FakeMeetGateway) -> None:
    call_id = waiting(api, registry, gateway, "acc-ana")
    rita, bo = staff(app, registry, email="rita@example.com"), staff(app, registry, email="bo@example.com")
    assert rita.claim(call_id).status_code == 303
    lost = bo.claim(call_id)
    assert lost.status_code == 409 and "Another reviewer has claimed this session" in page_text(lost)
    problem = bo.claim(call_id, headers={"Accept": "application/json"})
    assert problem.status_code == 409 and problem.get_json()["code"] == "session_already_claimed"
    assert load_call(registry, call_id).claimed_by_id == rita.reviewer.id
    assert "bo@example.com" not in gateway.spaces[load_call(registry, call_id).meet_space].members


def test_when_meet_refuses_the_cohost_the_claim_is_released_and_the_reviewer_told(
        app: Flask, api: Api, registry: Registry, gateway: FakeMeetGateway) -> None:
    call_id = waiting(api, registry, gateway, "acc-ana")
    desk = staff(app, registry)
    gateway.fail_next(MeetError("backend unavailable"))
    refused = desk.claim(call_id)
    assert refused.status_code == 502 and "back to the queue" in page_text(refused)
    call = load_call(registry, call_id)
    # Back in the queue without a claimer; the call stays in progress (it was announced as started, once).
    assert (call.status, call.claimed_by_id) == (SessionStatus.IN_PROGRESS, None)
    assert desk.get_json("/review").get_json()["count"] == 1
    assert audit(registry, "session.released")[-1].details["reason"] == "meet_error"
    assert desk.claim(call_id).status_code == 303  # and it can be claimed again


def test_release_puts_the_session_back_in_the_queue(app: Flask, api: Api, registry: Registry,
                                                     gateway: FakeMeetGateway) -> None:
    call_id = waiting(api, registry, gateway, "acc-ana")
    desk = staff(app, registry)
    desk.claim(call_id)
    released = desk.post(f"/review/sessions/{call_id}/release")
    assert released.status_code == 303 and released.headers["Location"].endswith("/review")
    assert "back in the queue" in page_text(desk.get("/review"))
    assert desk.get_json("/review").get_json()["count"] == 1
    again = desk.post(f"/review/sessions/{call_id}/release")
    assert again.status_code == 409 and "Nobody has claimed this session" in page_text(again)


def test_the_session_page_shows_attendance_from_meet_and_refreshes_it(
        app: Flask, api: Api, registry: Registry, gateway: FakeMeetGateway, clock: FakeClock) -> None:
    call_id = waiting(api, registry, gateway, "acc-ana")
    desk = staff(app, registry)
    desk.claim(call_id)
    with registry.sessions.begin() as session:  # what the attendance job stores
        call = session.get_one(CallSession, call_id)
        call.freelancer_joined_at = clock() + dt.timedelta(minutes=1)
        call.attendance_synced_at = clock() + dt.timedelta(minutes=2)
        session.add(CallParticipant(call_session_id=call_id, participant="conferenceRecords/c/participants/1",
                                    kind="signed_in", role="freelancer", display_name="Ana L.",
                                    first_joined_at=clock() + dt.timedelta(minutes=1), connected_seconds=120))
    live = desk.get_json(f"/review/sessions/{call_id}/attendance")
    html = live.get_json()["html"]
    assert live.status_code == 200 and live.get_json()["status"] == "in_progress"
    assert "joined 09:01:00, in the call" in html and "Ana L." in html and "still in" in html
    assert "Read from Meet at 09:02:00" in html
    assert 'data-live-url="/review/sessions/' in page_text(desk.get(f"/review/sessions/{call_id}"))


# ---------------------------------------------------------------- the ID document

def fingerprint(registry: Registry, normalised: str) -> str:
    return hmac.new(registry.settings.identity_pepper.encode(), normalised.encode(), hashlib.sha256).hexdigest()


def test_the_id_number_is_kept_as_a_keyed_fingerprint_and_its_last_four(
        app: Flask, api: Api, registry: Registry, gateway: FakeMeetGateway) -> None:
    call_id = waiting(api, registry, gateway, "acc-ana")
    desk = staff(app, registry)
    desk.claim(call_id)
    saved = desk.record_id(call_id, " pt-123 456 78x ", doc_type="national_id", issuing_country="pt")
    assert saved.status_code == 303
    with registry.sessions() as session:
        document = session.scalars(sa.select(IdentityDocument)).one()
    assert (document.doc_type.value, document.issuing_country, document.expires_on, document.last4) == (
        "national_id", "PT", dt.date(2030, 1, 31), "678X")
    assert document.fingerprint == fingerprint(registry, "PT12345678X")
    assert document.fingerprint != hashlib.sha256(b"PT12345678X").hexdigest()  # keyed, not a bare hash
    page = page_text(desk.get(f"/review/sessions/{call_id}"))
    assert "ending <strong>678X</strong>" in page and "already on another account" not in page
    assert events(registry, "verification.duplicate_identity_suspected") == []


@pytest.mark.parametrize(("field", "value", "message"), [
    ("document_number", "12", "4 to 30 letters and digits"),
    ("document_number", "AB#12345", "4 to 30 letters and digits"),
    ("issuing_country", "Portugal", "two-letter country code"),
    ("expires_on", "31/01/2030", "YYYY-MM-DD"),
    ("doc_type", "library_card", "kind of document"),
])
def test_a_wrong_id_field_is_explained_and_the_number_never_echoed(
        app: Flask, api: Api, registry: Registry, gateway: FakeMeetGateway, field: str, value: str,
        message: str) -> None:
    call_id = waiting(api, registry, gateway, "acc-ana")
    desk = staff(app, registry)
    desk.claim(call_id)
    fields = {field: value} if field != "document_number" else {}
    number = value if field == "document_number" else "ZX98765432"
    refused = desk.record_id(call_id, number, **fields)
    text = page_text(refused)
    assert refused.status_code == 422 and message in text and "Nothing was saved" in text
    # Random tokens and ids on the page may contain a short number by chance: leave them out of the search.
    shown = re.sub(r'name="csrf_token" value="[^"]*"|<meta name="csrf-token" content="[^"]*">'
                   r"|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "", text)
    assert number not in shown
    with registry.sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(IdentityDocument)) == 0


def test_the_same_document_on_another_account_warns_and_is_reported_once_per_pair(
        app: Flask, api: Api, registry: Registry, gateway: FakeMeetGateway) -> None:
    desk = staff(app, registry)
    ids = {}
    for account in ("acc-a", "acc-b", "acc-c"):
        ids[account] = waiting(api, registry, gateway, account)
        desk.claim(ids[account])
    assert desk.record_id(ids["acc-a"], "X1234-5678").status_code == 303
    assert desk.record_id(ids["acc-b"], "x1234 5678").status_code == 303
    warned = desk.get(f"/review/sessions/{ids['acc-b']}")
    assert "already on another account (acc-a)" in page_text(warned)
    assert 'value="suspected_duplicate" checked' in page_text(warned)  # the reason is suggested
    desk.record_id(ids["acc-b"], "X12345678")  # the same entry again: nothing new to report
    desk.record_id(ids["acc-c"], "X12345678")

    reported = events(registry, "verification.duplicate_identity_suspected")
    assert [(e.account_id, e.data["matching_account_id"]) for e in reported] == [
        ("acc-b", "acc-a"), ("acc-c", "acc-a"), ("acc-c", "acc-b")]
    assert reported[0].data["document"] == {"type": "passport", "issuing_country": "PT"}
    # seq: verification.required, account.hold.placed, verification.session.started (the claim), then this.
    assert reported[0].data["call_session_id"] == ids["acc-b"] and reported[0].data["seq"] == 4
    for event in reported:
        assert "12345678" not in str(event.data) and fingerprint(registry, "X12345678") not in str(event.data)
    assert len(audit(registry, "identity.duplicate_suspected")) == 3


# ---------------------------------------------------------------- outcomes

def test_a_pass_lifts_the_pending_hold_and_a_second_submission_is_refused(
        app: Flask, api: Api, registry: Registry, gateway: FakeMeetGateway) -> None:
    call_id = waiting(api, registry, gateway, "acc-ana")
    assert api.restrictions("acc-ana").get_json()["blocked"] == PENDING
    desk = staff(app, registry)
    desk.claim(call_id)
    attend(registry, call_id)
    assert desk.record_id(call_id, "P1234567").status_code == 303
    passed = desk.decide(call_id, "passed", notes="All matched", checklist=FULL_CHECKLIST)
    assert passed.status_code == 303 and passed.headers["Location"].endswith("/review")
    restrictions = api.restrictions("acc-ana").get_json()
    assert restrictions["blocked"] == [] and restrictions["verification"]["status"] == "verified"
    outcome = outcome_of(registry, call_id)
    assert (outcome.result.value, outcome.final, outcome.reason_codes) == ("passed", True, [])
    assert [q for q, ticked in outcome.checklist.items() if ticked] == list(registry.settings.checklist)
    assert [e.type for e in events(registry)][-2:] == ["verification.passed", "account.hold.lifted"]

    again = desk.decide(call_id, "inconclusive", reasons=("poor_video",))
    assert again.status_code == 409 and "already decided (passed, by you" in page_text(again)
    assert outcome_of(registry, call_id).result.value == "passed"


@pytest.mark.parametrize(("result", "reasons", "notes", "message"), [
    ("failed", (), "", "choose at least one reason: a fail must say why"),
    ("inconclusive", (), "", "choose at least one reason: an inconclusive decision must say why"),
    ("passed", ("poor_video",), "", "a pass takes no reasons"),
    ("failed", ("other",), "", "say in the notes what the other reason is"),
    ("failed", ("made_up",), "", "unknown reason"),
    ("maybe", (), "", "choose passed, failed, inconclusive or no show"),
    ("passed", (), "x" * 2001, "at most 2000 characters"),
])
def test_a_decision_that_does_not_fit_is_explained_and_changes_nothing(
        app: Flask, api: Api, registry: Registry, gateway: FakeMeetGateway, result: str,
        reasons: tuple[str, ...], notes: str, message: str) -> None:
    call_id = waiting(api, registry, gateway, "acc-ana")
    desk = staff(app, registry)
    desk.claim(call_id)
    refused = desk.decide(call_id, result, reasons=reasons, notes=notes)
    assert refused.status_code == 422 and message in page_text(refused)
    assert load_call(registry, call_id).status is SessionStatus.IN_PROGRESS
    with registry.sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(OutcomeRecord)) == 0


def test_inconclusive_and_fail_events_carry_the_reason_codes_never_the_notes(
        app: Flask, api: Api, registry: Registry, gateway: FakeMeetGateway) -> None:
    registry.settings = registry.settings.replace(four_eyes_on_fail=False)
    desk = staff(app, registry)
    first = waiting(api, registry, gateway, "acc-ana")
    desk.claim(first)
    desk.decide(first, "inconclusive", reasons=("poor_video", "connection_failed"), notes="Frozen video")
    [inconclusive] = events(registry, "verification.inconclusive")
    assert inconclusive.data["reason_codes"] == ["poor_video", "connection_failed"]
    assert "Frozen" not in str(inconclusive.data)


def test_without_four_eyes_a_fail_is_final_at_once(app: Flask, api: Api, registry: Registry,
                                                   gateway: FakeMeetGateway) -> None:
    registry.settings = registry.settings.replace(four_eyes_on_fail=False)
    call_id = waiting(api, registry, gateway, "acc-ana")
    desk = staff(app, registry)
    desk.claim(call_id)
    attend(registry, call_id, reviewer=desk.reviewer)
    assert desk.decide(call_id, "failed", reasons=("id_mismatch",), notes="Different face").status_code == 303
    assert load_call(registry, call_id).status is SessionStatus.COMPLETED
    assert outcome_of(registry, call_id).final is True
    assert [e.type for e in events(registry)][-4:] == [
        "verification.failed", "account.hold.placed", "account.hold.lifted", "account.proposals.cancel_requested"]
    assert events(registry, "verification.failed")[0].data["reason_codes"] == ["id_mismatch"]
    assert "withdraw_earnings" in api.restrictions("acc-ana").get_json()["blocked"]


# ---------------------------------------------------------------- four eyes

def test_a_fail_waits_for_another_lead_who_confirms_it(app: Flask, api: Api, registry: Registry,
                                                       gateway: FakeMeetGateway) -> None:
    call_id = waiting(api, registry, gateway, "acc-ana")
    lea = staff(app, registry, Role.LEAD, email="lea@example.com")
    max_ = staff(app, registry, Role.LEAD, email="max@example.com")
    lea.claim(call_id)
    attend(registry, call_id, reviewer=lea.reviewer)
    decided = lea.decide(call_id, "failed", reasons=("id_mismatch",), notes="Face differs")
    assert decided.status_code == 303 and "a lead will review the fail" in page_text(lea.get("/review"))
    assert load_call(registry, call_id).status is SessionStatus.AWAITING_SECOND_REVIEW
    assert api.restrictions("acc-ana").get_json()["blocked"] == PENDING  # the pending hold stays meanwhile
    outcome = outcome_of(registry, call_id)

    listed = page_text(max_.get("/review/second-reviews"))
    assert "Ana Lima" in listed and "The ID does not match the person on camera" in listed
    own = lea.second_review(outcome.id, "confirm")
    assert own.status_code == 403 and "another lead must review it" in page_text(own)
    assert "another lead must review it" in page_text(lea.get(f"/review/sessions/{call_id}"))
    assert outcome_of(registry, call_id).final is False

    assert "Confirm the fail" in page_text(max_.get(f"/review/sessions/{call_id}"))
    confirmed = max_.second_review(outcome.id, "confirm", notes="Agreed")
    assert confirmed.status_code == 303 and "Fail confirmed" in page_text(max_.get("/review/second-reviews"))
    outcome = outcome_of(registry, call_id)
    assert (outcome.final, outcome.second_decision, outcome.second_reviewer_id) == (True, "confirmed",
                                                                                   max_.reviewer.id)
    with registry.sessions() as session:
        kinds = set(session.scalars(sa.select(Hold.kind).where(Hold.lifted_at.is_(None))))
    assert kinds == {HoldKind.VERIFICATION_FAILED}  # the fail's finality lifted the pending hold, in one change
    assert [e.type for e in events(registry)][-4:] == [
        "verification.failed", "account.hold.placed", "account.hold.lifted", "account.proposals.cancel_requested"]
    change = events(registry)[-4:]
    assert {e.data["restrictions_version"] for e in change} == {api.restrictions("acc-ana").get_json()["version"]}
    assert max_.second_review(outcome.id, "overturn").status_code == 409  # decided once


def test_a_lead_may_overturn_a_fail(app: Flask, api: Api, registry: Registry, gateway: FakeMeetGateway) -> None:
    call_id = waiting(api, registry, gateway, "acc-ana")
    rita, lea = staff(app, registry), staff(app, registry, Role.LEAD)
    rita.claim(call_id)
    attend(registry, call_id, reviewer=rita.reviewer)
    assert rita.decide(call_id, "failed", reasons=("document_not_shown",)).status_code == 303
    outcome_id = outcome_of(registry, call_id).id
    unclear = lea.second_review(outcome_id, "maybe")
    assert unclear.status_code == 422 and "must be &#39;confirm&#39; or &#39;overturn&#39;" in page_text(unclear)
    assert rita.second_review(outcome_id, "overturn").status_code == 403  # leads only
    overturned = lea.second_review(outcome_id, "overturn", notes="Shown at the end")
    assert overturned.status_code == 303
    assert api.restrictions("acc-ana").get_json()["verification"]["status"] == "verified"
    assert outcome_of(registry, call_id).second_decision == "overturned"
