"""Every event type of the catalogue is emitted by a real path, and the README's catalogue lists each one.

One story drives the services the dashboard, the freelancer pages and the
jobs use, on both backends; the outbox then holds every type the service
declares (``webhooks.outbox.EVENT_TYPES``), each with the envelope every
event has.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import sqlalchemy as sa
from flask import Flask

from jobs import audit as audit_jobs
from jobs import calls as call_jobs
from tests.conftest import Api, FakeClock
from tests.support.fake_meet import FakeMeetGateway
from tests.support.review_desk import record_with_evidence, waiting
from tests.support.staff import staff_member
from verify_service.calls import booking
from verify_service.calls.state import Outcome
from verify_service.db import unit_of_work
from verify_service.freelancer import journey
from verify_service.registry import Registry
from verify_service.review import decisions, identity
from verify_service.staff.models import Role
from verify_service.webhooks.models import OutboxEvent
from verify_service.webhooks.outbox import EVENT_TYPES

README = Path(__file__).resolve().parents[2] / "README.md"


def claim(registry: Registry, call_id: str, reviewer_id: int) -> None:
    with unit_of_work(registry.sessions) as session:
        decisions.claim_session(session, call_id, reviewer_id=reviewer_id, now=registry.now())


def show_id(registry: Registry, call_id: str, reviewer_id: int, number: str) -> None:
    form = identity.DocumentForm.parse({"doc_type": "passport", "issuing_country": "PT", "document_number": number})
    with unit_of_work(registry.sessions) as session:
        identity.record_document(session, call_id, form, reviewer_id=reviewer_id,
                                 pepper=registry.settings.identity_pepper, now=registry.now())


def test_every_event_type_is_emitted_by_a_path(app: Flask, api: Api, registry: Registry, clock: FakeClock) -> None:
    registry.settings = registry.settings.replace(daily_session_limit=10)
    gateway = registry.meet = FakeMeetGateway()
    rita = staff_member(registry, email="rita@example.com").id
    lena = staff_member(registry, role=Role.LEAD, email="lena@example.com").id

    # A fail, confirmed: started, failed, the failed hold placed and the pending one lifted, proposals canceled.
    failing = waiting(api, registry, gateway, "acc-1")  # required, hold placed
    claim(registry, failing, rita)
    outcome = record_with_evidence(registry.sessions, failing, rita, Outcome.FAILED, clock())
    with unit_of_work(registry.sessions) as session:
        decisions.second_review(session, outcome.id, lead_id=lena, decision="confirm", notes=None, now=clock())

    # acc-2: a call nobody joins expires; then inconclusive, no show, a pass with an ID acc-3 also shows.
    waiting(api, registry, gateway, "acc-2")
    clock.advance(minutes=registry.settings.session_ttl_minutes)
    call_jobs.sync_attendance(app)
    for result in (Outcome.INCONCLUSIVE, Outcome.NO_SHOW, Outcome.PASSED):
        call_id, _ = journey.start_call(registry.sessions, gateway, "acc-2", settings=registry.settings, now=clock())
        claim(registry, call_id, rita)
        if result is Outcome.PASSED:
            show_id(registry, call_id, rita, "X12345678")
        record_with_evidence(registry.sessions, call_id, rita, result, clock())
    duplicate = waiting(api, registry, gateway, "acc-3")
    claim(registry, duplicate, rita)
    show_id(registry, duplicate, rita, "X1234-5678")

    # A lead cancels acc-3's call, acc-5 leaves the queue, and acc-4 books a time and gets its reminder.
    with unit_of_work(registry.sessions) as session:
        decisions.release_session(session, duplicate, reviewer_id=rita, now=clock())
        decisions.cancel_by_lead(session, duplicate, lead_id=lena, reason="duplicate", now=clock())
    leaving = waiting(api, registry, gateway, "acc-5")
    journey.cancel_call(registry.sessions, gateway, "acc-5", leaving, settings=registry.settings, now=clock())
    assert api.put_account("acc-4").status_code == 201
    assert api.request_verification("acc-4").status_code == 201
    start = booking.booking_window(now=clock(), settings=registry.settings).first
    booking.book_slot(registry.sessions, gateway, "acc-4", start=start, settings=registry.settings, now=clock(),
                      tz=dt.timezone.utc)
    clock.current = start - dt.timedelta(minutes=10)
    call_jobs.send_appointment_reminders(app)
    # The hourly job signs the audit chain's head and sends it on the reserved system account.
    assert audit_jobs.checkpoint_audit_chain(app) is not None

    with registry.sessions() as session:
        emitted = session.execute(sa.select(OutboxEvent.type, OutboxEvent.data)).all()
    assert {event_type for event_type, _ in emitted} == EVENT_TYPES
    for event_type, data in emitted:
        assert isinstance(data["account_id"], str) and data["seq"] >= 1, event_type
    by = {data["by"] for event_type, data in emitted if event_type == "verification.session.canceled"}
    assert by == {"lead", "freelancer"}
    reasons = {data["reason"] for event_type, data in emitted if event_type == "verification.session.expired"}
    assert reasons == {"not_joined"}
    [checkpoint] = [data for event_type, data in emitted if event_type == "audit.checkpoint"]
    assert checkpoint["account_id"] == "_audit" and set(checkpoint["checkpoint"]) == {"seq", "hash", "at", "signature"}


def test_the_readme_catalogue_lists_every_event_type_and_nothing_planned() -> None:
    text = README.read_text(encoding="utf-8")
    catalogue = text.split("**Catalogue**", 1)[1].split("<!-- end of the event catalogue -->", 1)[0]
    listed = set(re.findall(r"`([a-z_]+(?:\.[a-z_]+)+)`", catalogue))
    assert EVENT_TYPES <= listed, sorted(EVENT_TYPES - listed)
    assert "planned" not in catalogue.lower()
