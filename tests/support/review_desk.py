"""The reviewer dashboard from the outside: staff browsers and freelancers waiting in the queue."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from integrations.google_meet import ConferenceAttendance, Participant, ParticipantSession
from tests.conftest import Api
from tests.support.fake_meet import FakeMeetGateway
from tests.support.staff import csrf_token, signed_in
from verify_service.calls.models import CallSession, OutcomeRecord
from verify_service.calls.state import Outcome
from verify_service.db import unit_of_work
from verify_service.freelancer import journey
from verify_service.registry import Registry
from verify_service.review import decisions
from verify_service.review.evidence import DecisionPolicy
from verify_service.review.models import DocumentType, IdentityDocument
from verify_service.staff.models import Reviewer, Role
from verify_service.settings import Settings
from verify_service.webhooks.models import OutboxEvent

LOCATION_ID = re.compile(r"/review/sessions/([^/?#]+)")
# Every item of the default checklist (VERIFY_CHECKLIST's five questions), as the form posts them.
FULL_CHECKLIST = (0, 1, 2, 3, 4)


@dataclasses.dataclass
class Staff:
    """A signed-in staff browser that posts forms with the page's CSRF token."""

    client: FlaskClient
    reviewer: Reviewer
    token: str

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.client.get(path, **kwargs)

    def get_json(self, path: str) -> Any:
        return self.client.get(path, headers={"Accept": "application/json"})

    def post(self, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        return self.client.post(path, data={"csrf_token": self.token, **(data or {})}, **kwargs)

    def claim(self, call_id: str, **kwargs: Any) -> Any:
        return self.post(f"/review/sessions/{call_id}/claim", **kwargs)

    def record_id(self, call_id: str, number: str, **fields: str) -> Any:
        form = {"doc_type": "passport", "issuing_country": "PT", "expires_on": "2030-01-31",
                "document_number": number, **fields}
        return self.post(f"/review/sessions/{call_id}/identity-document", form)

    def pass_call(self, call_id: str, number: str = "P1234567") -> Any:
        """Record a valid ID and pass with the whole checklist ticked (the freelancer must be in the call)."""
        assert self.record_id(call_id, number).status_code == 303
        return self.decide(call_id, "passed", checklist=FULL_CHECKLIST)

    def decide(self, call_id: str, result: str, reasons: tuple[str, ...] = (), notes: str = "",
               checklist: tuple[int, ...] = ()) -> Any:
        form: dict[str, Any] = {"result": result, "notes": notes, "reason_codes": list(reasons),
                                "checklist": [str(i) for i in checklist]}
        return self.post(f"/review/sessions/{call_id}/outcome", form)

    def second_review(self, outcome_id: str, decision: str, notes: str = "") -> Any:
        return self.post(f"/review/outcomes/{outcome_id}/second-review", {"decision": decision, "notes": notes})


def staff(app: Flask, registry: Registry, role: Role = Role.REVIEWER, email: str | None = None) -> Staff:
    client = app.test_client()
    reviewer = signed_in(client, registry, role=role, email=email)
    return Staff(client, reviewer, csrf_token(client, "/review/mine"))


def waiting(api: Api, registry: Registry, gateway: FakeMeetGateway, account_id: str, *, name: str = "Ana Lima",
            country: str = "PT", **profile: Any) -> str:
    """``account_id`` asked to verify (with a pending hold) and waiting in a call; returns the session id."""
    assert api.put_account(account_id, name=name, country=country, email=f"{account_id}@example.com",
                           **profile).status_code in (200, 201)
    assert api.request_verification(account_id, {"reason": "new_account", "place_hold": True}).status_code == 201
    call_id, _ = journey.start_call(registry.sessions, gateway, account_id, settings=registry.settings,
                                    now=registry.now())
    return call_id


def attend(registry: Registry, call_id: str, *, freelancer: bool = True, reviewer: Reviewer | None = None,
           minutes_ago: float = 10, left_minutes_ago: float | None = None) -> None:
    """People in the call's Meet conference (the FakeMeetGateway in ``registry.meet``): the freelancer (signed
    in) and/or ``reviewer`` (their Meet display name is their staff name), joined ``minutes_ago``, still
    there unless ``left_minutes_ago``. The attendance is what Meet reports from now on (a decision re-reads it)."""
    gateway = registry.meet
    assert isinstance(gateway, FakeMeetGateway)
    call = load_call(registry, call_id)
    assert call.meet_space is not None, "the call has no meeting yet"
    now = registry.now()
    start = now - dt.timedelta(minutes=minutes_ago)
    end = now - dt.timedelta(minutes=left_minutes_ago) if left_minutes_ago is not None else None
    record = f"conferenceRecords/{call.id}-{len(gateway.attendance(call.meet_space, host=call.meet_host or ''))}"
    people = []
    if freelancer:
        people.append(Participant(f"{record}/participants/f", "signed_in", f"users/fl-{call.account_id}",
                                  "The Freelancer", (ParticipantSession(start, end),)))
    if reviewer is not None:
        people.append(Participant(f"{record}/participants/r{reviewer.id}", "signed_in", f"users/staff-{reviewer.id}",
                                  reviewer.display_name, (ParticipantSession(start, end),)))
    gateway.add_attendance(call.meet_space, ConferenceAttendance(record, start, end, tuple(people)))


# The decision service's policy as the default settings make it, without QA sampling (tests sample on purpose).
POLICY = DecisionPolicy(checklist=Settings.checklist, pass_sample_rate=0.0)
REASONS = {Outcome.FAILED: ["id_mismatch"], Outcome.INCONCLUSIVE: ["poor_video"]}


def give_evidence(sessions: sessionmaker[Session], call_id: str, reviewer_id: int, result: Outcome,
                  now: dt.datetime) -> None:
    """What ``result`` needs, as an attendance re-read at ``now`` and the reviewer's ID panel would leave it
    (for tests of what follows a decision; the rules themselves are tested against Meet in test_evidence.py)."""
    with unit_of_work(sessions) as session:
        call = session.get_one(CallSession, call_id)
        call.attendance_synced_at = now
        if result is Outcome.PASSED:
            call.freelancer_joined_at = now - dt.timedelta(minutes=5)
            if session.scalar(sa.select(IdentityDocument.id).where(IdentityDocument.call_session_id == call_id)) is None:
                session.add(IdentityDocument(account_id=call.account_id, call_session_id=call_id,
                                             doc_type=DocumentType.PASSPORT, issuing_country="PT",
                                             expires_on=dt.date(2031, 1, 1), fingerprint="f" * 64, last4="1234",
                                             recorded_by_id=reviewer_id, recorded_at=now))
        if result in (Outcome.FAILED, Outcome.NO_SHOW):
            call.reviewer_joined_at = now - dt.timedelta(minutes=10)
            call.reviewer_connected_seconds = 600


def record_with_evidence(sessions: sessionmaker[Session], call_id: str, reviewer_id: int, result: Outcome,
                         now: dt.datetime, *, notes: str | None = None,
                         policy: DecisionPolicy = POLICY, reason_codes: list[str] | None = None) -> OutcomeRecord:
    """The claimer's decision, with its evidence in place (see :func:`give_evidence`)."""
    give_evidence(sessions, call_id, reviewer_id, result, now)
    with unit_of_work(sessions) as session:
        return decisions.record_outcome(session, call_id, reviewer_id=reviewer_id, result=result, notes=notes,
                                        now=now, reason_codes=REASONS.get(result, []) if reason_codes is None
                                        else reason_codes,
                                        checklist=dict.fromkeys(policy.checklist, True), policy=policy)


def load_call(registry: Registry, call_id: str) -> CallSession:
    with registry.sessions() as session:
        return session.get_one(CallSession, call_id)


def events(registry: Registry, event_type: str | None = None) -> list[OutboxEvent]:
    with registry.sessions() as session:
        stmt = sa.select(OutboxEvent).order_by(OutboxEvent.account_id, OutboxEvent.seq)
        if event_type:
            stmt = stmt.where(OutboxEvent.type == event_type)
        return list(session.scalars(stmt))


def page_text(response: Any) -> str:
    return response.get_data(as_text=True)
