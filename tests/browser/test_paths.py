"""The other roads through the freelancer pages: camera denied, a phone, booking, and every page's accessibility."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from playwright.sync_api import Page, expect

from tests.browser.conftest import (LiveServer, assert_accessible, chrome_on_android, chrome_on_windows,
                                    safari_on_iphone, screenshot)
from verify_service.calls.models import CallSession
from verify_service.calls.state import SessionStatus
from verify_service.db import unit_of_work
from verify_service.freelancer.timezones import full_date
from verify_service.staff.models import Reviewer, ReviewerShift, Role

DESKTOP = chrome_on_windows(142)
PHONE = chrome_on_android(142)


def calls(server: LiveServer) -> list[CallSession]:
    with server.registry.sessions() as session:
        return list(session.scalars(sa.select(CallSession).order_by(CallSession.created_at)))


def test_a_blocked_camera_shows_how_to_allow_it_in_this_browser(server: LiveServer,
                                                               new_page: Callable[..., Page]) -> None:
    page = new_page(DESKTOP)  # no permission granted: Chromium refuses the camera, as after "Block"
    page.goto(server.freelancer())
    page.get_by_role("button", name="Test camera and microphone").click()
    expect(page.locator("#media-state")).to_contain_text("not allowed to use the camera or microphone")
    fix = page.locator("[data-fix=denied]")
    expect(fix).to_be_visible()
    expect(fix.get_by_text("In Chrome or Edge")).to_be_visible()
    expect(fix.get_by_text("In Firefox")).to_be_hidden()  # only the fix for this browser
    expect(fix).to_contain_text("Privacy & security")
    assert_accessible(page)
    screenshot(page, "camera-blocked")


def test_a_phone_gets_the_meet_app_path(server: LiveServer, new_page: Callable[..., Page]) -> None:
    page = new_page(PHONE, permissions=["camera", "microphone"])
    page.goto(server.freelancer())
    verdict = page.locator("#verdict")
    expect(verdict).to_contain_text("On a phone or tablet, join with the Google Meet app")
    expect(verdict.locator("#client-summary")).to_have_text("Chrome 142 on Android 15")
    expect(verdict.get_by_role("link", name="Google Meet on Google Play")).to_have_attribute(
        "href", re.compile(r"^https://play\.google\.com/"))
    expect(page.get_by_role("link", name="Google Meet on the App Store")).to_have_count(0)  # an Android phone
    # The call happens in the Meet app: no camera test in the browser.
    expect(page.get_by_role("button", name="Test camera and microphone")).to_be_hidden()
    expect(page.locator("#media-on-phone")).to_be_visible()
    assert page.evaluate("() => document.getElementById('preview').srcObject") is None
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390  # no sideways scrolling
    assert_accessible(page)

    page.get_by_role("button", name="Start a call now").click()
    expect(page.get_by_role("heading", name="Your call is ready")).to_be_visible()
    expect(page.get_by_role("link", name="Move the call to your phone")).to_have_count(0)  # it is on the phone
    expect(page.get_by_role("link", name="Get Google Meet on Google Play")).to_be_visible()
    expect(page.get_by_role("link", name=re.compile("App Store"))).to_have_count(0)
    assert_accessible(page)
    page.goto(f"{server.base_url}/verify/mobile")
    expect(page.get_by_role("heading", name="Join from a phone or tablet")).to_be_visible()
    meet_uri = calls(server)[0].meet_uri
    assert meet_uri
    expect(page.get_by_role("link", name="Open the call in Google Meet")).to_have_attribute("href", meet_uri)
    expect(page.get_by_role("link", name=re.compile("App Store"))).to_have_count(0)
    expect(page.locator(".qr svg")).to_have_count(0)  # already on the phone: no QR code to scan
    expect(page.get_by_text("No phone either?")).to_have_count(0)
    assert_accessible(page)
    screenshot(page, "mobile-path")


def test_an_iphone_gets_the_app_store_only(server: LiveServer, new_page: Callable[..., Page]) -> None:
    page = new_page(safari_on_iphone(17))
    page.goto(server.freelancer())
    verdict = page.locator("#verdict")
    expect(verdict.locator("#client-summary")).to_have_text("Safari 17 on iOS 17")
    expect(verdict.get_by_role("link", name="Google Meet on the App Store")).to_be_visible()
    expect(page.get_by_role("link", name="Google Meet on Google Play")).to_have_count(0)
    expect(page.get_by_role("button", name="Test camera and microphone")).to_be_hidden()
    page.get_by_role("button", name="Start a call now").click()
    expect(page.get_by_role("heading", name="Your call is ready")).to_be_visible()
    expect(page.get_by_role("link", name="Get Google Meet on the App Store")).to_be_visible()
    expect(page.get_by_role("link", name="Move the call to your phone")).to_have_count(0)
    assert_accessible(page)


def test_on_a_computer_the_phone_page_shows_a_qr_code_of_the_call(server: LiveServer,
                                                                   new_page: Callable[..., Page]) -> None:
    page = new_page(DESKTOP, permissions=["camera", "microphone"])
    page.goto(server.freelancer())
    page.get_by_role("button", name="Start a call now").click()
    expect(page.get_by_role("heading", name="Your call is ready")).to_be_visible()
    page.get_by_role("link", name="Move the call to your phone").click()
    expect(page.locator(".qr svg")).to_be_visible()
    assert_accessible(page)


def test_booking_a_slot_then_cancelling_it(server: LiveServer, new_page: Callable[..., Page]) -> None:
    page = new_page(DESKTOP, timezone_id="America/New_York")
    page.goto(server.freelancer())
    page.get_by_role("link", name="Book a time instead").click()
    # The page learns the browser's time zone and shows the times in it.
    expect(page.locator("#tz-name")).to_have_text("America/New_York")
    first = page.get_by_role("radio").first
    expect(first).to_be_checked()
    chosen = first.get_attribute("value")
    assert_accessible(page)
    screenshot(page, "book-a-time")
    page.get_by_role("button", name="Book this time").click()

    expect(page.get_by_role("heading", name="Your call is booked")).to_be_visible()
    expect(page.get_by_role("status").first).to_contain_text("Your call is booked")
    [booked] = calls(server)
    assert booked.status is SessionStatus.SCHEDULED
    assert booked.scheduled_for == dt.datetime.fromisoformat(chosen)
    assert booked.invite_sent_at is not None  # the calendar invite went out (sandbox Calendar)
    local = booked.scheduled_for.astimezone(__import__("zoneinfo").ZoneInfo("America/New_York"))
    expect(page.locator("#call-message")).to_contain_text(local.strftime("%H:%M"))
    # One time, one zone, on every page that states it: the call page and the status page.
    shown = full_date(booked.scheduled_for, ZoneInfo("America/New_York"))
    expect(page.locator("#call-message")).to_contain_text(shown)
    expect(page.locator("#call-message")).to_contain_text("about 10 minutes")
    assert_accessible(page)
    page.goto(f"{server.base_url}/verify")
    expect(page.locator("#your-call + p")).to_have_text(f"You have a call booked for {shown}.")
    expect(page.get_by_text("UTC")).to_have_count(0)
    page.get_by_role("link", name="Go to your call").click()

    # Move it to the next free time, then cancel it.
    page.get_by_role("link", name="Choose another time").click()
    expect(page.get_by_role("heading", name="Choose another time")).to_be_visible()
    radios = page.get_by_role("radio")
    expect(radios.first).to_be_visible()
    if radios.count() < 2:
        # The booked time was the last of its local day (late evening): the next free time is on the next day.
        page.locator(".days a").nth(1).click()
        expect(page.locator(".days a").nth(1)).to_have_attribute("aria-current", "date")
        target = page.get_by_role("radio").first
    else:
        target = radios.nth(1)
    target.check()
    moved_to = target.get_attribute("value")
    assert moved_to != chosen
    page.get_by_role("button", name="Move my call to this time").click()
    expect(page.get_by_role("heading", name="Your call is booked")).to_be_visible()
    assert calls(server)[0].scheduled_for == dt.datetime.fromisoformat(moved_to)

    page.get_by_role("button", name="Cancel this appointment").click()
    expect(page.get_by_role("status").first).to_contain_text("Your appointment is canceled")
    assert calls(server)[0].status is SessionStatus.CANCELED
    expect(page.get_by_role("button", name="Start a call now")).to_be_visible()


def test_the_waiting_room_with_nobody_on_shift_says_when_the_next_shift_starts(
        server: LiveServer, new_page: Callable[..., Page]) -> None:
    starts = (server.now() + dt.timedelta(days=2)).replace(hour=22, minute=0, second=0, microsecond=0)
    with unit_of_work(server.registry.sessions) as session:
        rita = Reviewer(email="rita@example.com", display_name="Rita", role=Role.REVIEWER, password_hash="x",
                        active=True, created_at=server.now())
        session.add(rita)
        session.flush()
        session.add(ReviewerShift(reviewer_id=rita.id, starts_at=starts, ends_at=starts + dt.timedelta(hours=8),
                                  created_by="test", created_at=server.now()))
    page = new_page(DESKTOP, timezone_id="Asia/Kolkata")
    page.goto(server.freelancer(timezone="Asia/Calcutta"))
    local = starts.astimezone(ZoneInfo("Asia/Kolkata"))
    next_shift = f"The next shift starts {local:%A} {local.day} {local:%B} at {local:%H:%M} (your time, Asia/Kolkata)."
    expect(page.locator("#availability")).to_contain_text("No reviewer is on shift right now. " + next_shift)
    expect(page.get_by_text("available 24/7")).to_have_count(0)
    # The booking page says the zone by its canonical name, whichever name the browser and profile use.
    page.get_by_role("link", name="Book a time instead").click()
    expect(page.locator("#tz-name")).to_have_text("Asia/Kolkata")
    expect(page.locator("#tz-hint")).to_have_count(0)
    expect(page.get_by_text("Times are shown in Asia/Kolkata.")).to_be_visible()
    page.get_by_role("link", name="Back").click()
    page.get_by_role("button", name="Start a call now").click()
    expect(page.get_by_role("heading", name="Your call is ready")).to_be_visible()
    expect(page.locator("#queue-reviewers")).to_have_text("0")
    expect(page.locator("#queue-availability")).to_have_text("No reviewer is on shift right now. " + next_shift)
    page.wait_for_timeout(4500)  # after a poll of the live status, still no guess at the wait
    expect(page.locator("#queue-estimate")).to_have_text("–")
    expect(page.locator("#queue-availability")).to_have_text("No reviewer is on shift right now. " + next_shift)
    assert_accessible(page)


def test_the_pages_without_a_session_are_accessible_too(server: LiveServer, new_page: Callable[..., Page]) -> None:
    page = new_page(DESKTOP, viewport={"width": 360, "height": 740})
    url = server.freelancer()
    page.goto(url)
    page.goto(url)  # a second use of the link
    expect(page.get_by_role("heading", name="This link can no longer be used")).to_be_visible()
    assert_accessible(page)
    page.context.clear_cookies()
    page.goto(f"{server.base_url}/verify")
    expect(page.get_by_role("heading", name="Please start again from your account")).to_be_visible()
    assert_accessible(page)
    page.goto(f"{server.base_url}/verify/help")
    expect(page.get_by_role("heading", name="Help with your verification call")).to_be_visible()
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 360
    assert_accessible(page)
    screenshot(page, "help")
