"""Canceling, leaving the queue and moving a booking through the freelancer pages (both backends).

The forms are posted as a browser would: signed in through a launch link, with
the CSRF token of the page the form is on. Whatever Google Calendar does, the
change stands and the page tells the freelancer what happened (never a 500).
"""

from __future__ import annotations

import datetime as dt
import html
import re
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from integrations.google_meet import MeetConfigurationError, MeetError
from jobs import invites as invite_jobs
from tests.conftest import FakeClock
from tests.functional.test_freelancer_journey import Freelancer, all_calls, ana, gateway  # noqa: F401 (fixtures)
from tests.support.fake_meet import FakeMeetGateway
from tests.support.staff import staff_member
from verify_service.audit.models import AuditEntry
from verify_service.calls import invites
from verify_service.calls.models import CallSession
from verify_service.calls.state import EndReason, SessionStatus
from verify_service.db import unit_of_work
from verify_service.registry import Registry
from verify_service.review import decisions
from verify_service.webhooks.models import OutboxEvent

CANCELED_EVENT = "verification.session.canceled"


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def form_token(page: str, action: str) -> str:
    """The CSRF token inside the form that posts to ``action`` (as the browser would send it)."""
    match = re.search(r'<form method="post"[^>]*action="' + re.escape(action) + r'"[^>]*>\s*'
                      r'<input type="hidden" name="csrf_token" value="([^"]+)">', page)
    assert match, f"no form posting to {action} on the page"
    return match.group(1)


def submit(freelancer: Freelancer, page_path: str, action: str, **form: str):
    """Open ``page_path`` and post its form to ``action``."""
    page = freelancer.client.get(page_path)
    assert page.status_code == 200
    return freelancer.client.post(action, data={"csrf_token": form_token(page.get_data(as_text=True), action),
                                                **form})


def follow(freelancer: Freelancer, response) -> tuple[str, str]:
    """Follow a 303; the path it went to and the page there (the flash message is on it)."""
    assert response.status_code == 303, response.get_data(as_text=True)
    location = urlsplit(response.headers["Location"])
    page = freelancer.client.get(location.path + (f"?{location.query}" if location.query else ""))
    assert page.status_code == 200, page.get_data(as_text=True)
    return location.path, text(page)


def row(registry: Registry, call_id: str) -> CallSession:
    with unit_of_work(registry.sessions, write=False) as session:
        found = session.get_one(CallSession, call_id)
        session.expunge(found)
        return found


def canceled_events(registry: Registry) -> list[dict]:
    with unit_of_work(registry.sessions, write=False) as session:
        return list(session.scalars(sa.select(OutboxEvent.data).where(OutboxEvent.type == CANCELED_EVENT)))


def audited(registry: Registry, action: str) -> list[str | None]:
    with unit_of_work(registry.sessions, write=False) as session:
        return list(session.scalars(sa.select(AuditEntry.subject_id).where(AuditEntry.action == action)))


def slot(clock: FakeClock, hour: int) -> dt.datetime:
    """A bookable slot tomorrow at ``hour``:00 UTC."""
    return (clock() + dt.timedelta(days=1)).replace(hour=hour, minute=0, second=0, microsecond=0)


def book(freelancer: Freelancer, start: dt.datetime) -> str:
    """Book through the booking page's form; the booked call's id."""
    response = freelancer.post("/verify/book", start=start.isoformat(), tz="UTC")
    path, page = follow(freelancer, response)
    assert "Your call is booked" in page
    return path.rsplit("/", 1)[-1]


# ---------------------------------------------------------------- leaving the queue

def test_leaving_the_queue_of_a_waiting_call(ana: Freelancer, registry: Registry) -> None:
    ana.start()
    [call] = all_calls(registry)
    page = text(ana.client.get(f"/verify/calls/{call.id}"))
    assert "Leave the queue" in page
    response = submit(ana, f"/verify/calls/{call.id}", f"/verify/calls/{call.id}/cancel")
    path, page = follow(ana, response)
    assert path == "/verify"
    assert "You have left the queue" in page
    left = row(registry, call.id)
    assert (left.status, left.end_reason) == (SessionStatus.CANCELED, EndReason.FREELANCER)
    assert [(e["session"]["id"], e["by"]) for e in canceled_events(registry)] == [(call.id, "freelancer")]
    assert audited(registry, "call_session.left_queue") == [call.id]
    assert audited(registry, "call_session.booking_canceled") == []  # not a booking change
    # The freelancer may start again at once.
    again = ana.start()
    assert again.status_code == 303 and call.id not in again.headers["Location"]


# ---------------------------------------------------------------- canceling a booking

def test_canceling_a_booking_removes_its_invite(ana: Freelancer, registry: Registry, gateway: FakeMeetGateway,
                                                clock: FakeClock) -> None:
    call_id = book(ana, slot(clock, 10))
    event_id = row(registry, call_id).calendar_event_id
    assert event_id in gateway.invites
    response = submit(ana, f"/verify/calls/{call_id}", f"/verify/calls/{call_id}/cancel")
    path, page = follow(ana, response)
    assert path == "/verify"
    assert "Your appointment is canceled, and its calendar invite removed" in page
    assert row(registry, call_id).status is SessionStatus.CANCELED
    assert event_id not in gateway.invites


@pytest.mark.parametrize("failure", [MeetError("calendar: HTTP 503"),
                                     MeetConfigurationError("calendar: HTTP 401: delegation revoked")],
                         ids=["google-down", "delegation-revoked"])
def test_canceling_a_booking_whose_calendar_delete_fails(ana: Freelancer, registry: Registry,
                                                         gateway: FakeMeetGateway, clock: FakeClock,
                                                         failure: MeetError) -> None:
    call_id = book(ana, slot(clock, 10))
    event_id = row(registry, call_id).calendar_event_id
    page = text(ana.client.get(f"/verify/calls/{call_id}"))
    assert "Cancel this appointment" in page
    gateway.fail_next(failure)

    response = submit(ana, f"/verify/calls/{call_id}", f"/verify/calls/{call_id}/cancel")
    assert response.status_code == 303  # never a 500
    path, page = follow(ana, response)
    assert path == "/verify"
    assert "Your appointment is canceled. We could not remove the calendar invite just yet" in page
    assert "its calendar invite removed" not in page
    canceled = row(registry, call_id)
    assert canceled.status is SessionStatus.CANCELED and canceled.invite_pending == "cancel"
    assert [(e["session"]["id"], e["by"]) for e in canceled_events(registry)] == [(call_id, "freelancer")]
    assert event_id in gateway.invites

    # The job takes it from there.
    clock.advance(minutes=1)
    assert invite_jobs.repair_invites(ana.client.application) == 1
    assert event_id not in gateway.invites and row(registry, call_id).invite_pending is None


def test_a_call_a_reviewer_claimed_cannot_be_canceled(ana: Freelancer, registry: Registry, clock: FakeClock) -> None:
    ana.start()
    [call] = all_calls(registry)
    waiting_page = ana.client.get(f"/verify/calls/{call.id}").get_data(as_text=True)
    token = form_token(waiting_page, f"/verify/calls/{call.id}/cancel")  # the page was open before the claim
    reviewer = staff_member(registry)
    with unit_of_work(registry.sessions) as session:
        decisions.claim_session(session, call.id, reviewer_id=reviewer.id, now=clock())
    events_before = canceled_events(registry)

    response = ana.client.post(f"/verify/calls/{call.id}/cancel", data={"csrf_token": token})
    path, page = follow(ana, response)
    assert path == f"/verify/calls/{call.id}"  # back on the call page, which says why
    assert 'role="alert"' in page
    assert "A reviewer has taken up your call, so it can no longer be canceled" in page
    claimed = row(registry, call.id)
    assert (claimed.status, claimed.claimed_by_id, claimed.ended_at) == (SessionStatus.IN_PROGRESS, reviewer.id,
                                                                          None)
    assert canceled_events(registry) == events_before == []
    assert audited(registry, "call_session.left_queue") == []


# ---------------------------------------------------------------- moving a booking

def test_rescheduling_when_the_event_was_deleted_on_googles_side(ana: Freelancer, registry: Registry,
                                                                 gateway: FakeMeetGateway, clock: FakeClock) -> None:
    call_id = book(ana, slot(clock, 10))
    booked = row(registry, call_id)
    gateway.cancel_invite(booked.calendar_event_id, host=booked.meet_host)  # deleted in Google Calendar
    new_time = slot(clock, 12)

    response = submit(ana, f"/verify/book?reschedule={call_id}", "/verify/book", start=new_time.isoformat(),
                      tz="UTC", reschedule=call_id)
    assert response.status_code == 303  # never a 500
    path, page = follow(ana, response)
    assert path == f"/verify/calls/{call_id}"
    assert "Your call is moved, and its calendar invite updated" in page
    moved = row(registry, call_id)
    assert moved.scheduled_for == new_time and moved.status is SessionStatus.SCHEDULED
    assert moved.calendar_event_id == invites.recreated_id(booked.calendar_event_id)
    assert {k: v.start for k, v in gateway.invites.items()} == {moved.calendar_event_id: new_time}
    assert len(all_calls(registry)) == 1


def test_rescheduling_while_calendar_fails_says_the_invite_follows(ana: Freelancer, registry: Registry,
                                                                   gateway: FakeMeetGateway,
                                                                   clock: FakeClock) -> None:
    call_id = book(ana, slot(clock, 10))
    event_id = row(registry, call_id).calendar_event_id
    new_time = slot(clock, 12)
    gateway.fail_next(MeetError("calendar: timeout"))
    response = submit(ana, f"/verify/book?reschedule={call_id}", "/verify/book", start=new_time.isoformat(),
                      tz="UTC", reschedule=call_id)
    path, page = follow(ana, response)
    assert path == f"/verify/calls/{call_id}"
    assert "Your call is moved. We could not update the calendar invite just yet" in page
    assert row(registry, call_id).scheduled_for == new_time
    assert gateway.invites[event_id].start == slot(clock, 10)
    clock.advance(minutes=1)
    assert invite_jobs.repair_invites(ana.client.application) == 1
    assert gateway.invites[event_id].start == new_time
