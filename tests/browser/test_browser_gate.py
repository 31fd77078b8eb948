"""The browser gate in real Chromium: Start is offered only where the call can work, with the fix and the
phone path where it cannot; ``unverified`` still starts."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from tests.browser.conftest import (Device, LiveServer, assert_accessible, chrome_on_macos, chrome_on_windows,
                                    chromium_on_linux, firefox_on_windows, screenshot)
from verify_service.calls.models import CallSession


def call_count(server: LiveServer) -> int:
    with server.registry.sessions() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(CallSession)) or 0


@pytest.mark.parametrize(("device", "named", "fix"), [
    (chromium_on_linux(156), "Chromium 156 on Linux", "Chromium cannot be used for verification calls"),
    (chrome_on_windows(120), "Chrome 120 on Windows 11", "About Google Chrome"),
    (firefox_on_windows(115), "Firefox 115 on Windows", "About Firefox"),
], ids=["chromium-156", "chrome-120", "firefox-115"])
def test_an_unsupported_browser_is_not_offered_start(server: LiveServer, new_page: Callable[..., Page],
                                                     device: Device, named: str, fix: str) -> None:
    page = new_page(device, permissions=["camera", "microphone"])
    page.goto(server.freelancer())
    verdict = page.locator("#verdict")
    expect(verdict).to_contain_text("cannot be used for the call")
    expect(verdict.locator("#client-summary")).to_have_text(named)
    expect(verdict).to_contain_text(fix)
    expect(page.get_by_role("button", name="Start a call now")).to_be_hidden()
    blocked = page.locator("#start-blocked-browser")
    expect(blocked).to_be_visible()
    expect(blocked).to_contain_text("You cannot start the call in this browser")
    expect(blocked.get_by_role("link", name="How to join from a phone")).to_be_visible()
    expect(page.get_by_role("link", name="Book a time instead")).to_be_visible()
    assert_accessible(page)
    if device.user_agent.startswith("Mozilla/5.0 (X11"):
        screenshot(page, "browser-unsupported")

    # The server says the same to a start request from this browser (the form sent anyway).
    page.evaluate("() => document.getElementById('start-form').submit()")
    expect(page.get_by_role("heading", name="This browser cannot hold the call")).to_be_visible()
    expect(page.get_by_role("navigation", name="Verification")).to_be_visible()
    expect(page.get_by_role("heading", name="Join from a phone or tablet instead")).to_be_visible()
    assert_accessible(page)
    assert call_count(server) == 0


def test_a_blocked_camera_takes_start_away_until_it_works(server: LiveServer, new_page: Callable[..., Page]) -> None:
    page = new_page(chrome_on_windows(142))  # nothing granted: Chromium refuses the camera, as after "Block"
    page.goto(server.freelancer())
    start = page.get_by_role("button", name="Start a call now")
    expect(start).to_be_visible()  # nothing known against the camera yet
    page.get_by_role("button", name="Test camera and microphone").click()
    expect(page.locator("[data-fix=denied]")).to_be_visible()
    expect(start).to_be_hidden()
    blocked = page.locator("#start-blocked-camera")
    expect(blocked).to_contain_text("Your camera and microphone need to work before you start the call")
    expect(blocked.get_by_role("link", name="How to join from a phone")).to_be_visible()
    assert_accessible(page)

    page.evaluate("() => document.getElementById('start-form').submit()")  # the page's report goes with it
    expect(page.get_by_role("heading", name="Your camera is not ready for the call")).to_be_visible()
    expect(page.locator("[data-fix=denied]")).to_be_visible()
    assert_accessible(page)
    assert call_count(server) == 0


def test_a_current_chrome_starts(server: LiveServer, new_page: Callable[..., Page]) -> None:
    page = new_page(chrome_on_windows(142), permissions=["camera", "microphone"])
    page.goto(server.freelancer())
    expect(page.locator("#client-summary")).to_have_text("Chrome 142 on Windows 11")
    expect(page.locator("#start-blocked-browser")).to_be_hidden()
    expect(page.locator("#media-state")).to_contain_text("working")  # allowed already: tested at once
    expect(page.locator("#start-camera")).to_have_value("ok")
    page.get_by_role("button", name="Start a call now").click()
    expect(page.get_by_role("heading", name="Your call is ready")).to_be_visible()
    assert call_count(server) == 1


def test_an_unverified_system_still_starts_with_its_notice(server: LiveServer, new_page: Callable[..., Page]) -> None:
    page = new_page(chrome_on_macos(142), permissions=["camera", "microphone"])
    page.goto(server.freelancer())
    verdict = page.locator("#verdict")
    expect(verdict).to_contain_text("You can continue")
    expect(verdict).to_contain_text("does not tell us your macOS version")
    expect(verdict.locator("#client-summary")).to_have_text("Chrome 142 on macOS")
    page.get_by_role("button", name="Start a call now").click()
    expect(page.get_by_role("heading", name="Your call is ready")).to_be_visible()
    assert call_count(server) == 1
