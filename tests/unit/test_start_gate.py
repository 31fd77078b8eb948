"""Who may start a call from which browser (freelancer/gate.py), and how the pages name the browser
(support/describe.py), against the fixed test catalog (Chrome 140-142, Firefox 143-145, Windows 10/11)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from verify_service.freelancer import gate
from verify_service.support import catalog as catalog_module
from verify_service.support import hints
from verify_service.support.classify import Classifier, Verdict
from verify_service.support.describe import MEET_APP_LINKS, describe_client, store_links

CATALOG = catalog_module.load(Path(__file__).resolve().parents[1] / "fixtures" / "test_catalog.json")
WINDOWS_CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/{}.0.0.0 Safari/537.36")
MAC_CHROME = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/142.0.0.0 Safari/537.36")
FIREFOX_115 = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:115.0) Gecko/20100101 Firefox/115.0"
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.4 Mobile/15E148 Safari/604.1")
ANDROID = ("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 "
           "Mobile Safari/537.36")
IE11 = "Mozilla/5.0 (Windows NT 10.0; Trident/7.0; rv:11.0) like Gecko"
# What Debian's Chromium sends: the same user agent as Chrome's, but no "Google Chrome" brand.
CHROMIUM_HEADERS = {"Sec-CH-UA": '"Chromium";v="156", "Not_A Brand";v="24"', "Sec-CH-UA-Mobile": "?0",
                    "Sec-CH-UA-Platform": '"Windows"'}


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier()


def judge(classifier: Classifier, user_agent: str, headers: dict[str, str] | None = None,
          posted: hints.ClientHints | None = None) -> Verdict:
    return classifier.classify(user_agent, hints.merge(hints.from_headers(headers or {}), posted), CATALOG)


@pytest.mark.parametrize(("user_agent", "headers", "expected"), [
    (WINDOWS_CHROME.format(156), CHROMIUM_HEADERS, "Chromium 156 on Windows"),
    (WINDOWS_CHROME.format(120), None, "Chrome 120 on Windows"),  # Windows 10 or 11: the frozen UA cannot tell
    (WINDOWS_CHROME.format(142), {"Sec-CH-UA-Platform": '"Windows"', "Sec-CH-UA-Platform-Version": '"15.0.0"'},
     "Chrome 142 on Windows 11"),
    (MAC_CHROME, None, "Chrome 142 on macOS"),  # Mac OS X 10_15_7 is frozen: no version
    (FIREFOX_115, None, "Firefox 115 on Windows"),
    (IPHONE, None, "Safari 17 on iOS 17"),
    (ANDROID, None, "Chrome 142 on Android"),  # "Android 10; K" is Chrome's frozen value
    (ANDROID, {"Sec-CH-UA-Platform-Version": '"15.0.0"', "Sec-CH-UA-Mobile": "?1"}, "Chrome 142 on Android 15"),
    (IE11, None, "Internet Explorer 11 on Windows"),
    (WINDOWS_CHROME.format(142) + " OPR/126.0.0.0", None, "Opera 126 on Windows"),
])
def test_the_summary_names_browser_and_system_as_people_do(classifier: Classifier, user_agent: str,
                                                           headers: dict[str, str] | None, expected: str) -> None:
    assert describe_client(judge(classifier, user_agent, headers)) == expected


@pytest.mark.parametrize("user_agent", ["", "curl/8.5.0", "Werkzeug/3.1", "Mozilla/5.0"])
def test_nothing_is_said_where_nothing_is_known(classifier: Classifier, user_agent: str) -> None:
    summary = describe_client(judge(classifier, user_agent))
    assert summary is None or ("browser" not in summary.lower() and " on " not in summary), summary


def test_an_ipad_in_desktop_mode_is_not_named_a_mac(classifier: Classifier) -> None:
    verdict = judge(classifier, MAC_CHROME.replace("Chrome/142.0.0.0 ", ""), posted=hints.ClientHints(touch_mac=True))
    assert verdict.verdict == "use_mobile_app"
    assert describe_client(verdict) is not None and describe_client(verdict).endswith("on iPadOS")


def test_the_api_answer_keeps_its_families(classifier: Classifier) -> None:
    answer = judge(classifier, WINDOWS_CHROME.format(156), CHROMIUM_HEADERS).as_dict()
    assert answer["browser"]["family"] == "other" and "client" not in answer and "Chromium" not in json.dumps(
        {k: v for k, v in answer.items() if k != "reasons"})


@pytest.mark.parametrize(("user_agent", "headers"), [
    (WINDOWS_CHROME.format(156), CHROMIUM_HEADERS),  # Chromium is not Chrome
    (WINDOWS_CHROME.format(120), None),
    (FIREFOX_115, None),
    (IE11, None),  # plugin_required: not without the plugin
    ("", None),
    ("curl/8.5.0", None),
])
def test_an_unsupported_browser_cannot_start(classifier: Classifier, user_agent: str,
                                             headers: dict[str, str] | None) -> None:
    verdict = judge(classifier, user_agent, headers)
    assert verdict.verdict in gate.BLOCKING_VERDICTS
    assert gate.refusal(verdict, None) == gate.Refusal(gate.Blocker.BROWSER)
    assert gate.refusal(verdict, "ok") == gate.Refusal(gate.Blocker.BROWSER)


@pytest.mark.parametrize(("user_agent", "verdict_name"), [
    (WINDOWS_CHROME.format(142), "supported"), (MAC_CHROME, "unverified"), (ANDROID, "use_mobile_app")])
def test_supported_unverified_and_phones_may_start(classifier: Classifier, user_agent: str, verdict_name: str) -> None:
    verdict = judge(classifier, user_agent)
    assert verdict.verdict == verdict_name
    for camera in (None, "ok", "busy", "unavailable"):
        assert gate.refusal(verdict, camera) is None


@pytest.mark.parametrize("camera", ["denied", "missing"])
def test_a_blocked_or_missing_camera_cannot_start_on_a_computer(classifier: Classifier, camera: str) -> None:
    assert gate.refusal(judge(classifier, WINDOWS_CHROME.format(142)), camera) == gate.Refusal(
        gate.Blocker.CAMERA, camera)
    assert gate.refusal(judge(classifier, ANDROID), camera) is None  # the Meet app has its own camera


def test_the_camera_report_and_posted_hints_are_read_defensively() -> None:
    assert [gate.camera_report(v) for v in ("denied", "ok", "DENIED", "", None, "x" * 50)] == [
        "denied", "ok", None, None, None, None]
    assert gate.posted_hints(json.dumps({"brands": [{"brand": "Chromium", "version": "156"}]})) == hints.ClientHints(
        brands=(hints.Brand("Chromium", "156"),))
    nested = "[" * 3000 + "]" * 3000
    for bad in (None, "", "not json", "[1, 2]", '"text"', nested[:3999], "{" + " " * gate.MAX_POSTED_HINTS + "}"):
        assert gate.posted_hints(bad) is None


def test_a_phone_gets_its_own_store_only() -> None:
    assert [link["url"] for link in store_links("android")] == [MEET_APP_LINKS[0]["url"]]
    assert [link["url"] for link in store_links("ios")] == [MEET_APP_LINKS[1]["url"]]
    assert store_links("other") == store_links(None) == MEET_APP_LINKS
