"""The ends of a call as the freelancer sees them: second review, a confirmed fail, a call to redo."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer, assert_accessible, chrome_on_windows, screenshot
from tests.support.review_desk import record_with_evidence
from verify_service.calls.models import CallSession
from verify_service.calls.state import Outcome
from verify_service.db import unit_of_work
from verify_service.review.decisions import claim_session, second_review
from verify_service.staff.models import Role
from verify_service.staff.passwords import create_reviewer

DESKTOP = chrome_on_windows(142)


def start_call(server: LiveServer, page: Page) -> str:
    page.goto(server.freelancer())
    page.get_by_role("button", name="Start a call now").click()
    expect(page.get_by_role("heading", name="Your call is ready")).to_be_visible()
    with server.registry.sessions() as session:
        return session.scalars(sa.select(CallSession.id)).one()


def staff(server: LiveServer) -> tuple[int, int]:
    with unit_of_work(server.registry.sessions) as session:
        reviewer = create_reviewer(session, email="rita@example.com", display_name="Rita", role=Role.REVIEWER,
                                   password="a-long-enough-password", actor="test", now=server.now())
        lead = create_reviewer(session, email="lena@example.com", display_name="Lena", role=Role.LEAD,
                               password="another-long-password", actor="test", now=server.now())
        return reviewer.id, lead.id


def decide(server: LiveServer, call_id: str, reviewer_id: int, result: Outcome) -> str:
    with unit_of_work(server.registry.sessions) as session:
        claim_session(session, call_id, reviewer_id=reviewer_id, now=server.now())
    return record_with_evidence(server.registry.sessions, call_id, reviewer_id, result, server.now(),
                                notes="ID did not match").id


def test_a_fail_waits_for_the_second_review_then_shows_what_is_blocked(server: LiveServer,
                                                                      new_page: Callable[..., Page]) -> None:
    page = new_page(DESKTOP, permissions=["camera", "microphone"])
    call_id = start_call(server, page)
    reviewer_id, lead_id = staff(server)
    outcome_id = decide(server, call_id, reviewer_id, Outcome.FAILED)
    # Polling notices the change and reloads onto the new stage, its heading focused.
    expect(page.get_by_role("heading", name="Your call is over")).to_be_focused()
    expect(page.locator("main")).to_contain_text("confirmed by a second reviewer")
    assert_accessible(page)

    with unit_of_work(server.registry.sessions) as session:
        second_review(session, outcome_id, lead_id=lead_id, decision="confirm", notes=None, now=server.now())
    page.reload()
    expect(page.get_by_role("heading", name="We could not verify your identity")).to_be_visible()
    main = page.locator("main")
    for blocked in ("withdraw your earnings", "send new proposals to jobs", "accept direct offers from clients",
                    "appear in freelancer search results"):
        expect(main).to_contain_text(blocked)
    expect(main).to_contain_text("You can still work on your existing contracts")
    expect(main.get_by_role("link", name="What happens after a failed verification")).to_be_visible()
    assert_accessible(page)
    screenshot(page, "outcome-failed")


def test_an_inconclusive_call_offers_to_start_again(server: LiveServer, new_page: Callable[..., Page]) -> None:
    page = new_page(DESKTOP, permissions=["camera", "microphone"], viewport={"width": 360, "height": 740})
    call_id = start_call(server, page)
    reviewer_id, _ = staff(server)
    decide(server, call_id, reviewer_id, Outcome.INCONCLUSIVE)
    expect(page.get_by_role("heading", name="We need another call")).to_be_focused()
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 360
    assert_accessible(page)
    page.get_by_role("button", name="Start a new call now").click()
    expect(page.get_by_role("heading", name="Your call is ready")).to_be_visible()
    with server.registry.sessions() as session:
        attempts = session.scalars(sa.select(CallSession.attempt).order_by(CallSession.created_at)).all()
    assert attempts == [1, 2]


def test_while_meet_has_no_room_the_page_says_it_is_preparing_the_meeting(server: LiveServer,
                                                                          new_page: Callable[..., Page]) -> None:
    registry = server.registry
    registry.settings = registry.settings.replace(meet_project_creates_per_minute=0)
    page = new_page(DESKTOP)
    page.goto(server.freelancer())
    page.get_by_role("button", name="Start a call now").click()
    expect(page.get_by_role("heading", name="Preparing your meeting")).to_be_visible()
    expect(page.get_by_role("link", name="Join the call in Google Meet")).to_be_hidden()
    assert_accessible(page)
    registry.settings = registry.settings.replace(meet_project_creates_per_minute=100)
    from verify_service.calls.meetings import prepare_queued

    assert prepare_queued(registry.sessions, registry.meet_gateway(), settings=registry.settings,
                          now=server.now()) == 1
    # The page follows without a reload: the link appears and the heading changes.
    expect(page.get_by_role("heading", name="Your call is ready")).to_be_visible()
    expect(page.get_by_role("link", name="Join the call in Google Meet")).to_be_visible()
