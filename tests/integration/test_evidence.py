"""A decision rests on evidence: the rules, judged against attendance re-read from Meet at decision time.

Everything goes through the decision workflow the dashboard uses
(``review.claims.decide``): the form is checked, attendance is read again
from Meet (the in-memory gateway here), then the decision service judges it.
Both backends.
"""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from flask import Flask

from integrations.google_meet import ConferenceAttendance, MeetError, Participant, ParticipantSession
from tests.conftest import Api, FakeClock
from tests.support.fake_meet import FakeMeetGateway
from tests.support.review_desk import attend, events, load_call, staff, waiting
from tests.support.staff import staff_member
from verify_service.calls.models import CallSession, OutcomeRecord
from verify_service.calls.state import Outcome, SessionStatus
from verify_service.db import unit_of_work
from verify_service.registry import Registry
from verify_service.review import claims, decisions, identity
from verify_service.review.evidence import DecisionPolicy, EvidenceMissing
from verify_service.staff.models import Reviewer, Role

@pytest.fixture
def gateway(registry: Registry) -> FakeMeetGateway:
    registry.meet = FakeMeetGateway()
    return registry.meet


@pytest.fixture
def rita(registry: Registry) -> Reviewer:
    return staff_member(registry, email="rita@example.com", name="Rita")


@pytest.fixture
def call_id(api: Api, registry: Registry, gateway: FakeMeetGateway, rita: Reviewer) -> str:
    """acc-1 waiting in a call that Rita has claimed (nobody in the conference yet)."""
    call_id = waiting(api, registry, gateway, "acc-1")
    with unit_of_work(registry.sessions) as session:
        decisions.claim_session(session, call_id, reviewer_id=rita.id, now=registry.now())
    return call_id


def checklist(registry: Registry, *, full: bool = True) -> dict[str, bool]:
    answers = dict.fromkeys(registry.settings.checklist, True)
    if not full:
        answers[registry.settings.checklist[1]] = False
    return answers


def record_id(registry: Registry, call_id: str, reviewer: Reviewer, *, expires: dt.date | None) -> None:
    form = identity.DocumentForm.parse({"doc_type": "passport", "issuing_country": "PT", "document_number": "P9988776",
                                        "expires_on": expires.isoformat() if expires else ""})
    with unit_of_work(registry.sessions) as session:
        identity.record_document(session, call_id, form, reviewer_id=reviewer.id,
                                 pepper=registry.settings.identity_pepper, now=registry.now())


def decide(registry: Registry, gateway: FakeMeetGateway, call_id: str, reviewer: Reviewer, result: Outcome, *,
           reasons: tuple[str, ...] = (), full: bool = True) -> OutcomeRecord:
    return claims.decide(registry.sessions, gateway, call_id, reviewer_id=reviewer.id, result=result, notes="",
                         reason_codes=list(reasons), checklist=checklist(registry, full=full),
                         settings=registry.settings, now=registry.now())


def refused(registry: Registry, gateway: FakeMeetGateway, call_id: str, reviewer: Reviewer, result: Outcome,
            **kwargs: object) -> dict[str, list[str]]:
    """The decision is refused for missing evidence and changes nothing; the messages by field."""
    before = load_call(registry, call_id).status
    with pytest.raises(EvidenceMissing) as error:
        decide(registry, gateway, call_id, reviewer, result, **kwargs)  # type: ignore[arg-type]
    assert (error.value.status, error.value.code) == (422, "evidence_missing")
    with registry.sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(OutcomeRecord)) == 0
    assert load_call(registry, call_id).status is before is SessionStatus.IN_PROGRESS
    found: dict[str, list[str]] = {}
    for problem in error.value.errors:
        found.setdefault(problem.field, []).append(problem.message)
    assert all(message in error.value.detail for messages in found.values() for message in messages)
    return found


# ---------------------------------------------------------------- passed

def test_a_pass_for_a_call_nobody_joined_with_nothing_recorded_is_refused_naming_everything(
        registry: Registry, gateway: FakeMeetGateway, rita: Reviewer, call_id: str) -> None:
    found = refused(registry, gateway, call_id, rita, Outcome.PASSED, full=False)
    assert sorted(found) == ["attendance", "checklist", "identity_document"]
    assert "freelancer has not been seen in the Meet call" in found["attendance"][0]
    assert registry.settings.checklist[1] in found["checklist"][0]
    assert "record the ID document" in found["identity_document"][0]
    # The refusal rests on a fresh read of Meet, stored for the reviewer to see.
    assert load_call(registry, call_id).attendance_synced_at == registry.now()


def test_a_pass_with_the_freelancer_in_the_call_every_item_confirmed_and_a_valid_id_is_recorded(
        registry: Registry, gateway: FakeMeetGateway, rita: Reviewer, call_id: str) -> None:
    attend(registry, call_id)
    record_id(registry, call_id, rita, expires=registry.now().date() + dt.timedelta(days=400))
    outcome = decide(registry, gateway, call_id, rita, Outcome.PASSED)
    assert (outcome.result, outcome.final) == (Outcome.PASSED, True)
    assert load_call(registry, call_id).status is SessionStatus.COMPLETED


def test_the_freelancer_seen_only_by_meet_now_is_enough_and_an_anonymous_guest_is_not(
        registry: Registry, gateway: FakeMeetGateway, rita: Reviewer, call_id: str) -> None:
    """The stored attendance (the job's last pass) says nobody came; Meet says otherwise now: Meet wins."""
    record_id(registry, call_id, rita, expires=None)  # a document without expiry is valid
    with unit_of_work(registry.sessions) as session:
        session.get_one(CallSession, call_id).attendance_synced_at = registry.now() - dt.timedelta(seconds=30)
    call = load_call(registry, call_id)
    start = registry.now() - dt.timedelta(minutes=3)
    guest = Participant("conferenceRecords/g/participants/1", "anonymous", None, "Ana (guest)",
                        (ParticipantSession(start, None),))
    gateway.add_attendance(call.meet_space or "", ConferenceAttendance("conferenceRecords/g", start, None, (guest,)))
    assert "attendance" in refused(registry, gateway, call_id, rita, Outcome.PASSED)
    attend(registry, call_id)
    assert decide(registry, gateway, call_id, rita, Outcome.PASSED).result is Outcome.PASSED


def test_the_decision_service_refuses_attendance_not_read_at_decision_time(
        registry: Registry, gateway: FakeMeetGateway, rita: Reviewer, call_id: str) -> None:
    """Called without the re-read, a 30-second-old sync that saw the freelancer is no reason to accept."""
    attend(registry, call_id)
    record_id(registry, call_id, rita, expires=None)
    claims.refresh_attendance(registry.sessions, gateway, call_id, settings=registry.settings, now=registry.now())
    assert load_call(registry, call_id).freelancer_joined_at is not None
    later = registry.now() + dt.timedelta(seconds=30)
    with pytest.raises(EvidenceMissing) as error, unit_of_work(registry.sessions) as session:
        decisions.record_outcome(session, call_id, reviewer_id=rita.id, result=Outcome.PASSED, notes=None, now=later,
                                 reason_codes=[], checklist=checklist(registry),
                                 policy=DecisionPolicy.from_settings(registry.settings))
    assert [e.field for e in error.value.errors] == ["attendance"]
    assert "not read from Meet at the time of the decision" in error.value.detail


def test_an_expired_id_is_refused_and_the_id_rule_can_be_switched_off(
        registry: Registry, gateway: FakeMeetGateway, rita: Reviewer, call_id: str) -> None:
    attend(registry, call_id)
    record_id(registry, call_id, rita, expires=registry.now().date() - dt.timedelta(days=1))
    found = refused(registry, gateway, call_id, rita, Outcome.PASSED)
    assert list(found) == ["identity_document"] and "expired on" in found["identity_document"][0]
    registry.settings = registry.settings.replace(pass_requires_id=False)
    assert decide(registry, gateway, call_id, rita, Outcome.PASSED).final


def test_without_the_id_rule_a_pass_still_needs_the_freelancer_and_the_checklist(
        registry: Registry, gateway: FakeMeetGateway, rita: Reviewer, call_id: str) -> None:
    registry.settings = registry.settings.replace(pass_requires_id=False)
    assert sorted(refused(registry, gateway, call_id, rita, Outcome.PASSED, full=False)) == ["attendance", "checklist"]


def test_meet_not_answering_at_decision_time_records_nothing(
        registry: Registry, gateway: FakeMeetGateway, rita: Reviewer, call_id: str) -> None:
    attend(registry, call_id, reviewer=rita)
    gateway.fail_next(MeetError("Meet answered 503"))
    with pytest.raises(claims.AttendanceUnavailable) as error:
        decide(registry, gateway, call_id, rita, Outcome.FAILED, reasons=("id_mismatch",))
    assert error.value.status == 503
    assert load_call(registry, call_id).status is SessionStatus.IN_PROGRESS
    assert decide(registry, gateway, call_id, rita, Outcome.FAILED, reasons=("id_mismatch",)).result is Outcome.FAILED


# ---------------------------------------------------------------- failed, inconclusive, no show

def test_a_fail_needs_the_reviewer_in_the_call(registry: Registry, gateway: FakeMeetGateway, rita: Reviewer,
                                               call_id: str) -> None:
    attend(registry, call_id)  # only the freelancer
    found = refused(registry, gateway, call_id, rita, Outcome.FAILED, reasons=("id_mismatch",))
    assert found == {"attendance": ["you (the reviewer) have not been seen in the Meet call"]}
    attend(registry, call_id, freelancer=False, reviewer=rita)
    outcome = decide(registry, gateway, call_id, rita, Outcome.FAILED, reasons=("id_mismatch",))
    assert (outcome.final, load_call(registry, call_id).status) == (False, SessionStatus.AWAITING_SECOND_REVIEW)


def test_an_inconclusive_call_needs_only_its_reason_even_with_meet_down(
        registry: Registry, gateway: FakeMeetGateway, rita: Reviewer, call_id: str) -> None:
    gateway.fail_next(MeetError("Meet answered 503"), times=5)
    outcome = decide(registry, gateway, call_id, rita, Outcome.INCONCLUSIVE, reasons=("connection_failed",))
    assert outcome.result is Outcome.INCONCLUSIVE
    assert [e.type for e in events(registry)][-1] == "verification.inconclusive"


def test_a_no_show_needs_the_reviewer_to_have_waited_and_the_freelancer_never_seen(
        registry: Registry, gateway: FakeMeetGateway, rita: Reviewer, call_id: str, clock: FakeClock) -> None:
    assert refused(registry, gateway, call_id, rita, Outcome.NO_SHOW) == {
        "attendance": ["you (the reviewer) have not been seen in the Meet call"]}
    attend(registry, call_id, freelancer=False, reviewer=rita, minutes_ago=3)
    found = refused(registry, gateway, call_id, rita, Outcome.NO_SHOW)
    assert found == {"attendance": ["wait in the call at least 5 min for the freelancer (you have been there 3 min)"]}
    clock.advance(minutes=2)
    outcome = decide(registry, gateway, call_id, rita, Outcome.NO_SHOW)
    assert outcome.result is Outcome.NO_SHOW
    [announced] = [e for e in events(registry) if e.type == "verification.no_show"]
    assert announced.data["session"]["id"] == call_id and announced.data["verification"]["status"] == "required"


def test_a_no_show_is_refused_once_the_freelancer_came(registry: Registry, gateway: FakeMeetGateway,
                                                       rita: Reviewer, call_id: str) -> None:
    attend(registry, call_id, reviewer=rita, minutes_ago=10)
    found = refused(registry, gateway, call_id, rita, Outcome.NO_SHOW)
    assert found == {"attendance": ["the freelancer was in the call, so this is not a no show"]}


def test_the_no_show_wait_is_configurable(registry: Registry, gateway: FakeMeetGateway, rita: Reviewer,
                                          call_id: str) -> None:
    registry.settings = registry.settings.replace(no_show_wait_minutes=2)
    attend(registry, call_id, freelancer=False, reviewer=rita, minutes_ago=3)
    assert decide(registry, gateway, call_id, rita, Outcome.NO_SHOW).result is Outcome.NO_SHOW


# ---------------------------------------------------------------- the dashboard shows the refusal

def test_the_decision_form_lists_what_is_missing_and_keeps_the_answers(
        app: Flask, api: Api, registry: Registry, gateway: FakeMeetGateway) -> None:
    call_id = waiting(api, registry, gateway, "acc-2")
    desk = staff(app, registry)
    desk.claim(call_id)
    page = desk.decide(call_id, "passed", checklist=(0, 1), notes="Looked fine")
    text = page.get_data(as_text=True)
    assert page.status_code == 422 and 'id="evidence-missing"' in text
    assert "The freelancer has not been seen in the Meet call" in text and "Record the ID document" in text
    assert registry.settings.checklist[4] in text and "Looked fine" in text
    problem = desk.post(f"/review/sessions/{call_id}/outcome", {"result": "passed"},
                        headers={"Accept": "application/json"})
    assert problem.status_code == 422 and problem.get_json()["code"] == "evidence_missing"
    assert {e["field"] for e in problem.get_json()["errors"]} == {"attendance", "checklist", "identity_document"}
    attend(registry, call_id)
    assert desk.pass_call(call_id).status_code == 303
    assert load_call(registry, call_id).status is SessionStatus.COMPLETED


def test_the_second_review_page_shows_attendance_as_meet_reports_it_now(
        app: Flask, api: Api, registry: Registry, gateway: FakeMeetGateway, clock: FakeClock) -> None:
    call_id = waiting(api, registry, gateway, "acc-3")
    desk = staff(app, registry, email="rita@example.com")
    desk.claim(call_id)
    attend(registry, call_id, freelancer=False, reviewer=desk.reviewer)
    assert desk.decide(call_id, "failed", reasons=("document_not_shown",)).status_code == 303
    assert load_call(registry, call_id).freelancer_joined_at is None
    clock.advance(hours=3)  # the freelancer turned up after the decision; Meet has it, our copy does not
    attend(registry, call_id, minutes_ago=170, left_minutes_ago=160)
    lead = staff(app, registry, Role.LEAD, email="lena@example.com")
    page = lead.get(f"/review/sessions/{call_id}").get_data(as_text=True)
    assert "Read from Meet just now." in page and "Confirm the fail" in page
    call = load_call(registry, call_id)
    assert call.freelancer_joined_at == clock() - dt.timedelta(minutes=170)
    assert call.attendance_synced_at == clock()
    assert call.freelancer_joined_at.strftime("%H:%M:%S") in page
    # A reviewer's look (not the second review) leaves Meet alone.
    desk = staff(app, registry, email="rita@example.com")
    gateway.fail_next(MeetError("must not be called"))
    assert desk.get(f"/review/sessions/{call_id}").status_code == 200
    with pytest.raises(MeetError):  # the injected failure is still there: the page did not call Meet
        gateway.attendance(call.meet_space or "", host="x")
