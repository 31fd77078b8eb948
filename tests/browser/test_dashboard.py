"""The reviewer dashboard in a real browser: sign-in with TOTP, claim, the Meet room, a pass; a fail and its second
review by a lead; and an accessibility scan of every dashboard page."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

import pyotp
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer, assert_accessible, chrome_on_windows, screenshot
from tests.support.staff import PASSWORD, staff_member
from verify_service.accounts.domain import HoldKind, VerificationStatus
from verify_service.accounts.models import Account, Hold
from verify_service.calls.models import CallSession
from verify_service.db import unit_of_work
from verify_service.freelancer import journey
from verify_service.staff.models import Reviewer, Role, Stage
from verify_service.staff import sessions

DESKTOP = chrome_on_windows(142)


def waiting_call(server: LiveServer, account_id: str, name: str) -> str:
    """A freelancer asked to verify who started a call (through the journey's service)."""
    server.freelancer(account_id, name=name)
    registry = server.registry
    call_id, _ = journey.start_call(registry.sessions, registry.meet_gateway(), account_id,
                                    settings=registry.settings, now=server.now())
    return call_id


def sign_in_with_enrolment(page: Page, server: LiveServer, email: str) -> str:
    """The first sign-in: password, set up the authenticator, recovery codes. Returns the TOTP secret."""
    page.goto(f"{server.base_url}/review")
    expect(page.get_by_role("heading", name="Staff sign-in")).to_be_visible()
    assert_accessible(page)
    screenshot(page, "staff-sign-in")
    page.get_by_label("Work email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Set up two-step verification")).to_be_visible()
    expect(page.locator(".qr svg")).to_be_visible()
    assert_accessible(page)
    secret = re.sub(r"\s", "", page.locator("#totp-secret").inner_text())
    page.get_by_label("Enter the 6-digit code the app now shows").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Confirm and continue").click()
    expect(page.get_by_role("heading", name="Two-step verification is on")).to_be_visible()
    expect(page.locator("#recovery-codes li")).to_have_count(10)
    assert_accessible(page)
    page.get_by_role("link", name="I have saved them: continue").click()
    return secret


def join_room(page: Page, *people: tuple[str, str]) -> None:
    """From the call page, open the sandbox Meet room and join it as each ``(as, display name)``."""
    with page.context.expect_page() as opened:
        page.get_by_role("link", name=re.compile("Join the Meet call")).click()
    room = opened.value
    for joining_as, display_name in people:
        form = room.locator("form", has=room.get_by_role("button", name=f"Join as {joining_as}"))
        form.get_by_label("Display name").fill(display_name)
        form.get_by_role("button", name=f"Join as {joining_as}").click()
        expect(room.get_by_text(f"joined as {joining_as}")).to_be_visible()
    room.close()


def signed_in_page(new_page: Callable[..., Page], server: LiveServer, reviewer: Reviewer) -> Page:
    """A browser already signed in as ``reviewer`` (the sign-in itself is tested above)."""
    page = new_page(DESKTOP)
    with unit_of_work(server.registry.sessions) as session:
        token = sessions.open_session(session, reviewer.id, stage=Stage.ACTIVE, ip="127.0.0.1", now=server.now())
    page.context.add_cookies([{"name": "verify_staff", "value": token, "url": server.base_url}])
    return page


def test_a_reviewer_signs_in_with_totp_claims_joins_the_room_and_passes(server: LiveServer,
                                                                      new_page: Callable[..., Page]) -> None:
    call_id = waiting_call(server, "acc-1", "Ana Lima")
    staff_member(server.registry, role=Role.REVIEWER, email="rita@example.com", name="Rita Reviewer")
    page = new_page(DESKTOP)
    secret = sign_in_with_enrolment(page, server, "rita@example.com")

    # The queue: the waiting freelancer, then claim.
    expect(page.get_by_role("heading", name="Queue", level=1)).to_be_visible()
    row = page.get_by_role("row", name=re.compile("Ana Lima"))
    expect(row).to_contain_text("PT")
    assert_accessible(page)
    screenshot(page, "reviewer-queue")
    row.get_by_role("button", name=re.compile("Claim")).click()
    expect(page.get_by_role("heading", name="Call with Ana Lima")).to_be_visible()

    # A pass before anyone is in the call, with nothing recorded: the page says what is missing, and the button
    # why it cannot be pressed yet (without the script the server refuses and lists it: test_staff_labels.py).
    page.get_by_role("radio", name="Passed").check()
    record = page.get_by_role("button", name="Record the decision")
    expect(record).to_be_disabled()
    expect(page.locator("#pass-blocked")).to_have_text("A pass cannot be recorded yet: tick the 5 checklist items "
                                                       "left and record a valid ID document above.")
    missing = page.locator("#pass-missing")
    expect(missing).to_contain_text("The freelancer seen in the Meet call")
    expect(missing).to_contain_text("5 checklist items not ticked")
    expect(missing).to_contain_text("Record the ID document")
    expect(page.locator("#checklist-progress")).to_have_text("0 of 5 checks done")
    assert_accessible(page)
    screenshot(page, "reviewer-evidence-missing")
    page.get_by_role("radio", name="Failed").check()
    expect(record).to_be_enabled()  # only a pass needs the checklist

    # Join the sandbox meeting room as the reviewer (a co-host of the space), and the freelancer joins too.
    with page.context.expect_page() as opened:
        page.get_by_role("link", name=re.compile("Join the Meet call")).click()
    room = opened.value
    expect(room.get_by_text("rita@example.com · co-host")).to_be_visible()
    room.close()
    join_room(page, ("reviewer", "Rita Reviewer"), ("freelancer", "Ana Lima"))

    # The ID document, the checklist, the decision.
    page.get_by_label("Type of document").select_option("passport")
    page.get_by_label("Issuing country (two letters)").fill("PT")
    page.get_by_label("Expiry date (leave empty if none)").fill((dt.date.today() + dt.timedelta(days=900)).isoformat())
    page.get_by_label("Document number").fill("P-1234 5678")
    page.get_by_role("button", name="Save the ID").click()
    expect(page.locator("#identity")).to_contain_text("5678")
    page.get_by_role("radio", name="Passed").check()
    boxes = page.locator("input[name=checklist]").all()
    for box in boxes[:3]:
        box.check()
    expect(page.locator("#checklist-progress")).to_have_text("3 of 5 checks done")
    expect(record).to_be_disabled()
    expect(page.locator("#pass-blocked")).to_have_text("A pass cannot be recorded yet: tick the 2 checklist items left.")
    for box in boxes[3:]:
        box.check()
    expect(page.locator("#checklist-progress")).to_have_text("5 of 5 checks done")
    expect(record).to_be_enabled()
    expect(page.locator("#pass-blocked")).to_be_empty()
    assert_accessible(page)
    screenshot(page, "reviewer-session")
    page.get_by_role("button", name="Record the decision").click()
    expect(page.get_by_role("status").first).to_contain_text("Recorded: passed")
    with server.registry.sessions() as session:
        assert session.get(Account, "acc-1").verification_status is VerificationStatus.VERIFIED
        assert session.get(CallSession, call_id).outcome.value == "passed"

    # Sign out, and back in with the authenticator's next code.
    page.get_by_role("button", name="Sign out").click()
    page.goto(f"{server.base_url}/review/mine")
    page.get_by_label("Work email").fill("rita@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Two-step verification")).to_be_visible()
    assert_accessible(page)
    totp = pyotp.TOTP(secret)
    page.get_by_label("Code").fill(totp.at(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=totp.interval)))
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="My sessions")).to_be_visible()
    assert_accessible(page)


def test_a_fail_is_confirmed_by_a_lead_and_places_the_failed_hold(server: LiveServer,
                                                                   new_page: Callable[..., Page]) -> None:
    call_id = waiting_call(server, "acc-2", "Bo Chen")
    reviewer = staff_member(server.registry, role=Role.REVIEWER, email="rita@example.com")
    lead = staff_member(server.registry, role=Role.LEAD, email="lena@example.com", name="Lena Lead")

    page = signed_in_page(new_page, server, reviewer)
    page.goto(f"{server.base_url}/review")
    page.get_by_role("row", name=re.compile("Bo Chen")).get_by_role("button", name=re.compile("Claim")).click()
    join_room(page, ("reviewer", "Rita"))  # a fail needs the reviewer in the call
    page.get_by_role("radio", name="Failed").check()
    page.get_by_label("The ID does not match the person on camera").check()
    page.get_by_label(re.compile("^Notes")).fill("The face on the passport is someone else's.")
    page.get_by_role("button", name="Record the decision").click()
    expect(page.get_by_role("status").first).to_contain_text("a lead will review the fail")
    with server.registry.sessions() as session:
        assert session.get(CallSession, call_id).status.value == "awaiting_second_review"

    lead_page = signed_in_page(new_page, server, lead)
    lead_page.goto(f"{server.base_url}/review/second-reviews")
    expect(lead_page.get_by_role("heading", name="Second reviews", level=1)).to_be_visible()
    assert_accessible(lead_page)
    lead_page.get_by_role("link", name=re.compile("Bo Chen")).first.click()
    lead_page.get_by_role("button", name="Confirm the fail").click()
    expect(lead_page.locator("main")).to_contain_text("confirmed")
    with server.registry.sessions() as session:
        held = session.scalars(sa.select(Hold.kind).where(Hold.account_id == "acc-2", Hold.lifted_at.is_(None))).all()
        assert HoldKind.VERIFICATION_FAILED in held
        assert session.get(Account, "acc-2").verification_status is VerificationStatus.FAILED


def test_every_lead_page_passes_the_accessibility_scan(server: LiveServer, new_page: Callable[..., Page]) -> None:
    waiting_call(server, "acc-3", "Cy Diallo")
    lead = staff_member(server.registry, role=Role.LEAD, email="lena@example.com", name="Lena Lead")
    page = signed_in_page(new_page, server, lead)
    for path, heading in (("/review", "Queue"), ("/review/mine", "My sessions"),
                          ("/review/second-reviews", "Second reviews"), ("/review/quality", "Quality review of passes"),
                          ("/review/lead/accounts", None),
                          ("/review/lead/accounts/acc-3", None), ("/review/lead/deliveries", None),
                          ("/review/lead/shifts", None), ("/review/lead/reviewers", None),
                          ("/review/lead/metrics", None)):
        response = page.goto(f"{server.base_url}{path}")
        assert response is not None and response.status == 200, path
        if heading:
            expect(page.get_by_role("heading", name=heading, level=1)).to_be_visible()
        assert_accessible(page)
        name = path.rstrip("/").rsplit("/", 1)[-1]
        if name in ("accounts", "metrics", "shifts", "reviewers"):
            screenshot(page, f"lead-{name}")


def test_long_and_spoofed_names_keep_the_queue_usable_and_the_shortcuts_work(
        server: LiveServer, new_page: Callable[..., Page]) -> None:
    spoofed = waiting_call(server, "acc-rtl", "Ana \u202eamiL")  # waits longest: the first row
    waiting_call(server, "acc-long", "W" * 200)
    reviewer = staff_member(server.registry, role=Role.REVIEWER, email="rita@example.com")
    page = signed_in_page(new_page, server, reviewer)
    page.goto(f"{server.base_url}/review")
    claims = page.get_by_role("button", name=re.compile("^Claim"))
    expect(claims).to_have_count(2)
    width = page.viewport_size["width"] if page.viewport_size else 1280
    for button in claims.all():
        box = button.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, box
    assert page.evaluate("document.documentElement.scrollWidth") <= width  # no sideways scrolling
    expect(page.locator("#live-queue .bidi-mark")).to_have_text("⟨U+202E⟩")
    expect(page.get_by_text("Keyboard shortcuts")).to_be_visible()
    assert_accessible(page)

    page.keyboard.press("c")  # claims the call that has waited longest
    expect(page).to_have_url(re.compile(f"/review/sessions/{spoofed}$"))
    expect(page).to_have_title(re.compile("Call with Ana ⟨U\\+202E⟩amiL"))
    expect(page.locator("h1 .bidi-mark")).to_have_text("⟨U+202E⟩")
    notes = page.get_by_label(re.compile("^Notes"))
    notes.click()
    page.keyboard.type("pfin")  # typing in a field is typing, not shortcuts
    expect(notes).to_have_value("pfin")
    expect(page.locator("input[name=result]:checked")).to_have_count(0)
    page.locator("h1").click()
    page.keyboard.press("p")
    expect(page.get_by_role("radio", name="Passed")).to_be_checked()
    expect(page.locator("#pass-blocked")).to_contain_text("A pass cannot be recorded yet")
    page.keyboard.press("x")
    page.keyboard.press("Space")
    expect(page.locator("#checklist-progress")).to_have_text("1 of 5 checks done")
    page.keyboard.press("f")
    expect(page.get_by_role("radio", name="Failed")).to_be_checked()
    assert_accessible(page)

    # Meet reports the freelancer in the call: the refreshing attendance takes it off the list of what is missing.
    unseen = page.locator("#pass-missing [data-missing=attendance]")
    expect(unseen).to_have_count(1)
    with unit_of_work(server.registry.sessions) as session:
        call = session.get_one(CallSession, spoofed)
        call.freelancer_joined_at = call.attendance_synced_at = server.now()
    expect(unseen).to_have_count(0, timeout=25_000)
