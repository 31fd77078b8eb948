"""A staff invitation in a real browser: the lead adds an account, the owner opens the mailed link, chooses a
password, sets up two-step verification, and changes the password on "Your account"; every page passes the
accessibility scan."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pyotp
from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer, assert_accessible, chrome_on_windows
from tests.browser.test_dashboard import signed_in_page
from tests.support.mail import latest_setup_path, mailbox
from tests.support.staff import staff_member
from verify_service.staff.models import Role

DESKTOP = chrome_on_windows(142)
CHOSEN = "nia's own long passphrase"


def next_code(secret: str) -> str:
    """A code of the next time step: each code works once (the one that set up the app cannot be used again),
    and the server accepts the step after its own (clocks drift), so nobody waits for the clock to move on."""
    return pyotp.TOTP(secret).at(time.time() + 30)


def test_an_invited_reviewer_sets_up_their_account(server: LiveServer, new_page: Callable[..., Page]) -> None:
    lead = staff_member(server.registry, role=Role.LEAD, email="lena@example.com", name="Lena Lead")
    page = signed_in_page(new_page, server, lead)
    page.goto(f"{server.base_url}/review/lead/reviewers")
    page.get_by_label("Work email").fill("nia@example.com")
    page.get_by_label("Name shown on the dashboard").fill("Nia")
    page.get_by_role("button", name="Add account").click()
    expect(page.get_by_text("Nia (nia@example.com) was added as reviewer")).to_be_visible()
    expect(page.get_by_role("button", name="Send setup link again to Nia")).to_be_visible()
    assert_accessible(page)

    mail_page = new_page(DESKTOP)
    mail_page.goto(f"{server.base_url}/sandbox/mail")
    expect(mail_page.get_by_role("heading", name="Set up your staff account")).to_be_visible()
    assert_accessible(mail_page)
    path = latest_setup_path(server.registry, "nia@example.com")
    link = mail_page.locator(f'a[href="{server.base_url}{path}"]')
    link.click()  # the mailbox's links open in the same tab
    expect(mail_page.get_by_role("heading", name="Set up your staff account")).to_be_visible()
    assert_accessible(mail_page)
    mail_page.get_by_label("New password (at least 12 characters)").fill(CHOSEN)
    mail_page.get_by_label("The same password again").fill(CHOSEN)
    mail_page.get_by_role("button", name="Save and continue").click()
    expect(mail_page.get_by_role("heading", name="Set up two-step verification")).to_be_visible()
    secret = re.sub(r"\s", "", mail_page.locator("#totp-secret").inner_text())
    mail_page.get_by_label("Enter the 6-digit code the app now shows").fill(pyotp.TOTP(secret).now())
    mail_page.get_by_role("button", name="Confirm and continue").click()
    expect(mail_page.locator("#recovery-codes li")).to_have_count(10)
    mail_page.get_by_role("link", name="I have saved them: continue").click()

    mail_page.get_by_role("link", name="Your account").click()
    expect(mail_page.get_by_role("heading", name="Your account", level=1)).to_be_visible()
    assert_accessible(mail_page)
    mail_page.get_by_label("Current password").fill(CHOSEN)
    mail_page.get_by_label("New password (at least 12 characters)").fill(CHOSEN + " v2")
    mail_page.get_by_label("The new password again").fill(CHOSEN + " v2")
    mail_page.locator("#password-code").fill(next_code(secret))
    mail_page.get_by_role("button", name="Change password").click()
    expect(mail_page.get_by_text("Your password was changed.")).to_be_visible()
    assert [m.subject for m in mailbox(server.registry, "nia@example.com")] == [
        "Set up your staff account", "Your password was set", "Two-step verification was set up",
        "Your password was changed"]
