"""The ends of a call as the freelancer sees them: second review, a confirmed fail, a call to redo."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer, assert_accessible, chrome_on_windows, screenshot
from tests.support.review_desk import record_with_evidence
from verify_service.calls.models import CallSession
from verify_service.calls.state import Outcome, SessionStatus
from verify_service.closure import close_account
from verify_service.db import unit_of_work
from verify_service.review.decisions import claim_session, second_review
from verify_service.staff.models import Role
from verify_service.staff.passwords import create_reviewer

DESKTOP = chrome_on_windows(142)


BACK = "https://market.example.com/settings/identity"


def start_call(server: LiveServer, page: Page) -> str:
    server.registry.settings = server.registry.settings.replace(marketplace_name="Market Example")
    page.goto(server.freelancer(return_url=BACK))
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


def decide(server: LiveServer, call_id: str, reviewer_id: int, result: Outcome,
           reasons: list[str] | None = None) -> str:
    with unit_of_work(server.registry.sessions) as session:
        claim_session(session, call_id, reviewer_id=reviewer_id, now=server.now())
    return record_with_evidence(server.registry.sessions, call_id, reviewer_id, result, server.now(),
                                notes="ID did not match", reason_codes=reasons).id


def test_a_fail_waits_for_the_second_review_then_shows_what_is_blocked(server: LiveServer,
                                                                      new_page: Callable[..., Page]) -> None:
    page = new_page(DESKTOP, permissions=["camera", "microphone"])
    call_id = start_call(server, page)
    reviewer_id, lead_id = staff(server)
    outcome_id = decide(server, call_id, reviewer_id, Outcome.FAILED, ["document_expired", "suspected_duplicate"])
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
    # The hold is named; what still works is said precisely; the reason says what to bring next time.
    expect(main).to_contain_text("Hold after a failed verification")
    expect(main).to_contain_text("Work on your existing contracts carries on as usual")
    expect(main).to_contain_text("you can withdraw them once the hold that blocks withdrawals is lifted")
    expect(main).not_to_contain_text("get paid")
    expect(main).to_contain_text("Bring a valid, unexpired ID to the next call.")
    expect(main).not_to_contain_text("another account")  # a suspicion of fraud is not shown
    expect(main.get_by_role("link", name="What happens after a failed verification")).to_be_visible()
    back = page.get_by_role("link", name="Back to Market Example")
    expect(back).to_have_count(2)
    expect(back.first).to_have_attribute("href", BACK)
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


def test_error_pages_keep_the_navigation_and_lead_with_sentences(server: LiveServer,
                                                                new_page: Callable[..., Page]) -> None:
    page = new_page(DESKTOP, permissions=["camera", "microphone"])
    start_call(server, page)
    page.goto(f"{server.base_url}/verify/calls/no-such-call")
    expect(page.get_by_role("heading", level=1)).to_have_text("We cannot find that call")
    nav = page.get_by_role("navigation", name="Verification")
    expect(nav.get_by_role("link", name="Your verification")).to_be_visible()
    expect(nav.get_by_role("link", name="Back to Market Example")).to_have_attribute("href", BACK)
    expect(page.locator("main p").first).to_have_text("There is no such call on your account.")
    expect(page.locator("main")).not_to_contain_text("Error code")
    assert_accessible(page)


def test_at_the_daily_limit_the_page_says_when_to_come_back(server: LiveServer,
                                                           new_page: Callable[..., Page]) -> None:
    registry = server.registry
    registry.settings = registry.settings.replace(daily_session_limit=1)
    page = new_page(DESKTOP, permissions=["camera", "microphone"])
    call_id = start_call(server, page)
    with unit_of_work(registry.sessions) as session:  # the call ended without a decision
        call = session.get_one(CallSession, call_id)
        call.status, call.ended_at = SessionStatus.EXPIRED, server.now()
    page.goto(f"{server.base_url}/verify")
    expect(page.get_by_role("heading", name="You can start again later")).to_be_visible()
    expect(page.get_by_role("button", name="Start a call now")).to_have_count(0)
    expect(page.get_by_role("link", name="Book a time instead")).to_have_count(0)
    expect(page.locator("main")).to_contain_text("(UTC)")
    assert_accessible(page)


def test_no_request_fails_while_the_main_pages_load(server: LiveServer, new_page: Callable[..., Page]) -> None:
    page = new_page(DESKTOP, permissions=["camera", "microphone"])
    failed: list[str] = []
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}")
            if r.status == 404 or (r.status >= 400 and r.request.resource_type != "document") else None)
    page.on("requestfailed", lambda r: failed.append(f"failed {r.url}"))
    call_id = start_call(server, page)
    for path in ("/verify", f"/verify/calls/{call_id}", "/verify/help", "/verify/mobile", "/", "/favicon.ico"):
        page.goto(server.base_url + path)
        page.wait_for_load_state("networkidle")
    assert failed == []


def test_the_closed_account_page_keeps_the_way_back(server: LiveServer, new_page: Callable[..., Page]) -> None:
    page = new_page(DESKTOP, permissions=["camera", "microphone"])
    start_call(server, page)
    with unit_of_work(server.registry.sessions) as session:
        assert close_account(session, "acc-1", actor="account-service", now=server.now()).closed
    page.goto(f"{server.base_url}/verify")
    expect(page.get_by_role("heading", name="This account is closed")).to_be_visible()
    back = page.get_by_role("link", name="Back to Market Example")
    expect(back).to_have_count(2)
    expect(back.last).to_have_attribute("href", BACK)
    assert_accessible(page)
