"""The sandbox account service in a real browser: what the outbox delivered, verified, listed for a developer."""

from __future__ import annotations

from collections.abc import Callable

import requests
from playwright.sync_api import Page, expect

from integrations.sandbox_account_service import PATH
from jobs.outbox import deliver_outbox
from tests.browser.conftest import LiveServer, assert_accessible, chrome_on_windows, screenshot

DESKTOP = chrome_on_windows(142)


def test_the_receiver_lists_the_outbox_s_deliveries(server: LiveServer, new_page: Callable[..., Page]) -> None:
    receiver = server.base_url + PATH
    server.registry.settings = server.registry.settings.replace(account_service_webhook_url=receiver)
    server.freelancer("acc-1", name="Ana Lima")  # verification.required and account.hold.placed
    report = deliver_outbox(server.app)  # the relay, over HTTP, signing with the configured secret
    assert report is not None and report.delivered == 2
    forged = requests.post(receiver, data=b'{"type": "account.hold.lifted", "data": {}}', timeout=5,
                           headers={"webhook-id": "evt_forged", "webhook-timestamp": "1",
                                    "webhook-signature": "v1,Zm9yZ2Vk", "Content-Type": "application/json"})
    assert forged.status_code == 401

    page = new_page(DESKTOP)
    page.goto(receiver)
    expect(page.get_by_role("heading", name="Sandbox account service", level=1)).to_be_visible()
    headings = page.get_by_role("heading", level=2)
    expect(headings).to_have_text(["account.hold.lifted", "account.hold.placed", "verification.required"])
    expect(page.get_by_text("Valid — answered 204")).to_have_count(2)
    expect(page.get_by_text("Invalid — answered 401")).to_have_count(1)
    expect(page.locator("pre").nth(1)).to_contain_text('"account_id": "acc-1"')
    assert_accessible(page)
    screenshot(page, "sandbox-account-service")
