"""The freelancer's journey in a real browser: launch link → checks → call → sandbox meeting → decision → outcome."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

import sqlalchemy as sa
from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer, assert_accessible, chrome_on_windows, screenshot
from tests.support.review_desk import record_with_evidence
from verify_service.calls.attendance import sync_attendance
from verify_service.calls.models import CallSession
from verify_service.calls.state import Outcome
from verify_service.db import unit_of_work
from verify_service.review.decisions import claim_session
from verify_service.staff.models import Role
from verify_service.staff.passwords import create_reviewer

DESKTOP = chrome_on_windows(142)


def the_call(server: LiveServer) -> CallSession:
    with server.registry.sessions() as session:
        return session.scalars(sa.select(CallSession)).one()


def test_the_full_journey_from_launch_link_to_a_passed_outcome(server: LiveServer,
                                                              new_page: Callable[..., Page]) -> None:
    page = new_page(DESKTOP, permissions=["camera", "microphone"])
    server.registry.settings = server.registry.settings.replace(marketplace_name="Market Example")
    page.goto(server.freelancer(return_url="https://market.example.com/settings/identity"))

    # Where they stand, and the live system check.
    expect(page.get_by_role("heading", name="Identity verification", level=1)).to_be_visible()
    expect(page.get_by_text("send new proposals to jobs")).to_be_visible()
    expect(page.locator("#verdict")).to_contain_text("Your browser and system are ready for the call")
    # Permission is granted: the check runs on its own, with the fake camera and microphone.
    expect(page.locator("#media-state")).to_contain_text("camera and microphone are working")
    expect(page.locator("#devices")).to_contain_text("Camera:")
    page.wait_for_function("() => document.getElementById('preview').videoWidth > 0")
    page.wait_for_function("() => document.getElementById('mic-level').value > 0")
    # The results fill space kept for them: nothing on the page jumps (cumulative layout shift).
    shift = page.evaluate("""() => new Promise(resolve => {
        new PerformanceObserver(list => resolve(list.getEntries().reduce((sum, e) => sum + e.value, 0)))
            .observe({type: "layout-shift", buffered: true});
        setTimeout(() => resolve(0), 500);
    })""")
    assert shift < 0.1, f"layout shift {shift}"
    assert_accessible(page)
    screenshot(page, "verification-page")

    # Start a call now: the waiting room, with its Meet link and the queue.
    page.get_by_role("button", name="Start a call now").click()
    expect(page.get_by_role("heading", name="Your call is ready")).to_be_visible()
    expect(page.locator("#queue-position")).to_have_text("1")
    join = page.get_by_role("link", name=re.compile("Join the call in Google Meet"))
    assert_accessible(page)
    screenshot(page, "waiting-room")

    # Join the sandbox meeting room (a new tab, as Meet would open).
    with page.context.expect_page() as opened:
        join.click()
    room = opened.value
    expect(room.get_by_role("heading", level=1)).to_contain_text("Sandbox meeting room")
    form = room.locator("form", has=room.get_by_role("button", name="Join as freelancer"))
    form.get_by_label("Display name").fill("Ana Lima")
    form.get_by_role("button", name="Join as freelancer").click()
    expect(room.get_by_text("joined as freelancer")).to_be_visible()
    room.close()

    # The attendance job sees the freelancer in the conference; the page follows by itself.
    registry = server.registry
    call_id = the_call(server).id
    sync_attendance(registry.sessions, registry.meet_gateway(), call_id,
                    ttl=dt.timedelta(minutes=registry.settings.session_ttl_minutes),
                    now=server.now())
    expect(page.get_by_role("heading", name="You are in the call")).to_be_visible()

    # A reviewer claims the call and passes it (the service layer the dashboard uses).
    with unit_of_work(registry.sessions) as session:
        reviewer = create_reviewer(session, email="rita@example.com", display_name="Rita", role=Role.REVIEWER,
                                   password="a-long-enough-password", actor="test", now=server.now())
        claim_session(session, call_id, reviewer_id=reviewer.id, now=server.now())
        reviewer_id = reviewer.id
    record_with_evidence(registry.sessions, call_id, reviewer_id, Outcome.PASSED, server.now())
    expect(page.get_by_role("heading", name="You are verified")).to_be_visible()
    expect(page.get_by_role("heading", name="You are verified")).to_be_focused()
    expect(page.locator("main")).to_contain_text("send new proposals to jobs")  # unblocked again
    back = page.get_by_role("link", name="Back to Market Example")
    expect(back).to_have_count(2)  # in the header, and after the outcome
    expect(back.last).to_have_attribute("href", "https://market.example.com/settings/identity")
    assert_accessible(page)
    screenshot(page, "outcome-passed")
