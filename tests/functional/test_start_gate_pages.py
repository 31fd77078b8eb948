"""The browser gate over the Flask test client (both backends): the page does not offer Start to a browser
that cannot hold the call, and the start request is refused (409, a page with the site's header, no call)."""

from __future__ import annotations

import json
import re

import pytest

from tests.functional.test_freelancer_journey import CHROME, Freelancer, all_calls, ana, gateway  # noqa: F401
from verify_service.registry import Registry

CHROMIUM = {"User-Agent": CHROME.replace("142", "156"),
            "Sec-CH-UA": '"Chromium";v="156", "Not_A Brand";v="24"', "Sec-CH-UA-Mobile": "?0",
            "Sec-CH-UA-Platform": '"Windows"'}
CHROME_120 = {"User-Agent": CHROME.replace("142", "120")}
FIREFOX_115 = {"User-Agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:115.0) Gecko/20100101 Firefox/115.0"}
MAC_CHROME = {"User-Agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
                            "Chrome/142.0.0.0 Safari/537.36"}
ANDROID = {"User-Agent": "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
                         "Chrome/142.0.0.0 Mobile Safari/537.36", "Sec-CH-UA-Mobile": "?1",
           "Sec-CH-UA-Platform": '"Android"'}
HIDDEN_FORM = re.compile(r'<form method="post" id="start-form"[^>]*\bhidden\b')


def start(freelancer: Freelancer, headers: dict[str, str], **form: str):
    return freelancer.client.post("/verify/calls", data={"csrf_token": freelancer.token, **form}, headers=headers)


@pytest.mark.parametrize(("headers", "named"), [(CHROMIUM, "Chromium 156 on Windows"),
                                                (CHROME_120, "Chrome 120 on Windows"),
                                                (FIREFOX_115, "Firefox 115 on Windows")])
def test_an_unsupported_browser_is_not_offered_start_and_is_refused(ana: Freelancer, registry: Registry,
                                                                    headers: dict[str, str], named: str) -> None:
    page = ana.client.get("/verify", headers=headers).get_data(as_text=True)
    assert HIDDEN_FORM.search(page), "Start is not offered"
    assert "You cannot start the call in this browser" in page and named in page
    assert 'id="start-blocked-browser" class="notice notice-error" >' in page  # shown, not hidden

    refused = start(ana, headers)
    assert refused.status_code == 409
    text = refused.get_data(as_text=True)
    assert "This browser cannot hold the call" in text and named in text
    assert "Join from a phone or tablet instead" in text and 'href="/verify/mobile"' in text
    assert 'aria-label="Verification"' in text and "Your verification" in text  # the site's header and nav
    assert all_calls(registry) == []


def test_the_hints_the_page_posted_count_too(ana: Freelancer, registry: Registry) -> None:
    windows_8 = {"platform": "Windows", "platformVersion": "0.3.0",
                 "brands": [{"brand": "Google Chrome", "version": "142"}]}
    refused = start(ana, {"User-Agent": CHROME}, client_hints=json.dumps(windows_8))
    assert refused.status_code == 409 and "Windows 8.1 is not supported" in refused.get_data(as_text=True)
    chromium = {"brands": [{"brand": "Chromium", "version": "142"}], "platform": "Windows"}
    assert start(ana, {"User-Agent": CHROME}, client_hints=json.dumps(chromium)).status_code == 409
    assert all_calls(registry) == []
    for unreadable in ("not json", "[]", "{" * 5000):  # ignored: the headers' verdict stands
        assert start(ana, {"User-Agent": CHROME}, client_hints=unreadable).status_code == 303
        assert len(all_calls(registry)) == 1


@pytest.mark.parametrize(("camera", "fix"), [("denied", "Your camera or microphone is blocked"),
                                             ("missing", "No camera or microphone found")])
def test_a_camera_the_page_found_blocked_or_missing_refuses_the_start(ana: Freelancer, registry: Registry,
                                                                      camera: str, fix: str) -> None:
    refused = start(ana, {"User-Agent": CHROME}, camera=camera)
    assert refused.status_code == 409
    text = refused.get_data(as_text=True)
    assert "Your camera is not ready for the call" in text
    assert re.search(rf'data-fix="{camera}">\s*<h4>{fix}</h4>', text), "the fix is shown, not hidden"
    assert "Join from a phone or tablet instead" in text
    assert all_calls(registry) == []


@pytest.mark.parametrize("camera", ["", "ok", "busy", "unavailable", "made-up"])
def test_no_camera_report_or_a_working_camera_may_start(ana: Freelancer, registry: Registry, camera: str) -> None:
    assert start(ana, {"User-Agent": CHROME}, camera=camera).status_code == 303
    assert len(all_calls(registry)) == 1


def test_an_unverified_browser_may_start_and_the_queue_names_it(ana: Freelancer, registry: Registry) -> None:
    page = ana.client.get("/verify", headers=MAC_CHROME).get_data(as_text=True)
    assert not HIDDEN_FORM.search(page) and "You can continue" in page and "Chrome 142 on macOS" in page
    assert start(ana, MAC_CHROME).status_code == 303
    [call] = all_calls(registry)
    assert call.system_check["summary"] == "Chrome 142 on macOS" and call.system_check["verdict"] == "unverified"


def test_a_phone_may_start_and_is_not_asked_to_test_its_camera_here(ana: Freelancer, registry: Registry) -> None:
    page = ana.client.get("/verify", headers=ANDROID).get_data(as_text=True)
    assert not HIDDEN_FORM.search(page)
    assert '<div id="media-check" hidden>' in page and "Google Meet on Google Play" in page
    assert "Google Meet on the App Store" not in page  # only the phone's own store
    assert start(ana, ANDROID, camera="denied").status_code == 303  # the Meet app has the camera, not this page
    [call] = all_calls(registry)
    room = ana.client.get(f"/verify/calls/{call.id}", headers=ANDROID).get_data(as_text=True)
    assert "Move the call to your phone" not in room
    assert "Get Google Meet on Google Play" in room and "App Store" not in room
    computer = ana.client.get(f"/verify/calls/{call.id}").get_data(as_text=True)
    assert "Move the call to your phone" in computer


def test_the_check_says_whether_the_call_may_start(ana: Freelancer) -> None:
    posted = {"client_hints": {"brands": [{"brand": "Chromium", "version": "156"}], "platform": "Windows"}}
    blocked = ana.client.post("/verify/check", json=posted, headers={"X-CSRFToken": ana.token}).get_json()
    assert blocked["verdict"] == "unsupported" and blocked["may_start"] is False
    assert "Chromium 156 on Windows" in blocked["html"]
    fine = ana.client.post("/verify/check", json={"client_hints": {}}, headers={"X-CSRFToken": ana.token}).get_json()
    assert fine["may_start"] is True
