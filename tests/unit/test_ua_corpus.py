"""A corpus of real User-Agent strings (and real client hints) with the verdict each must get.

Expectations follow the contract (docs/architecture.md, 'Browser and system support', and the
issue's policy) against the fixed test catalog (tests/fixtures/test_catalog.json): Chrome/Edge
142-140, Firefox 145-143, Safari 26/18/17, macOS 26/15/14, Windows 11/10/8.1,
ChromeOS 142-140, Ubuntu 25.10/25.04/24.04, Debian 13/12/11. They are written
from the contract, not from the classifier's output: where the two disagree
the case fails and says why.

Where the contract allows two answers, the case says so with ``AnyOf``: a
frozen ``Windows NT 10.0`` stands for 10 or 11, both supported, so
``os.supported`` may be true or null (true is right as well where every version
the frozen value can stand for is supported).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from werkzeug.datastructures import Headers

from verify_service.support import catalog as catalog_module
from verify_service.support.classify import Classifier, Verdict
from verify_service.support.hints import Brand, ClientHints, from_headers, from_json, merge
from verify_service.support.schemas import VerdictOut

CATALOG = catalog_module.load(Path(__file__).resolve().parents[1] / "fixtures" / "test_catalog.json")


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier()


class AnyOf:
    """More than one value is right by the contract."""

    def __init__(self, *values: Any) -> None:
        self.values = values

    def matches(self, actual: Any) -> bool:
        return any(_matches(v, actual) for v in self.values)

    def __repr__(self) -> str:
        return "AnyOf(" + ", ".join(map(repr, self.values)) + ")"


class _Anything:
    def __repr__(self) -> str:
        return "ANY"


ANY = _Anything()  # the contract says nothing about this field here


def _matches(expected: Any, actual: Any) -> bool:
    if expected is ANY:
        return True
    if isinstance(expected, AnyOf):
        return expected.matches(actual)
    # bool is an int: never let True stand for 1 (or a major of 1 for True)
    return type(expected) is type(actual) and expected == actual if expected is not None else actual is None


@dataclasses.dataclass(frozen=True)
class Case:
    id: str
    ua: str
    verdict: Any
    browser: tuple[Any, Any, Any]  # family, major, supported
    os: tuple[Any, Any, Any]  # family, version, supported
    mobile: bool = False
    hints: ClientHints | None = None
    headers: dict[str, str] | None = None  # Sec-CH-UA* request headers, read with hints.from_headers
    codes: tuple[str, ...] = ()  # reason codes that must be present
    message: str | None = None  # one reason's exact message
    mentions: tuple[str, ...] = ()  # words the reasons must contain (the product, what to use instead)
    why: str = ""  # what the contract says, for cases the classifier is known to get wrong

    def client_hints(self) -> ClientHints | None:
        return merge(from_headers(self.headers) if self.headers else None, self.hints)


def B(*pairs: tuple[str, str]) -> tuple[Brand, ...]:
    return tuple(Brand(brand, version) for brand, version in pairs)


# ------------------------------------------------------------------ real user agents

WIN = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Safari/537.36"
MAC = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Safari/537.36"
LINUX = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Safari/537.36"
CROS = "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Safari/537.36"
EDGE_WIN = WIN + " Edg/{v}.0.0.0"
SAFARI_MAC = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{v} Safari/605.1.15"
CHROME_109_WIN7 = "Mozilla/5.0 (Windows NT 6.1; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/109.0.0.0 Safari/537.36"
CHROME_109_WIN81 = "Mozilla/5.0 (Windows NT 6.3; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/109.0.0.0 Safari/537.36"

USE_INSTEAD = ("Chrome", "Firefox")  # "naming what to use instead"
WIN_FROZEN = ("windows", None, AnyOf(True, None))  # Windows NT 10.0: 10 or 11, both supported
MAC_FROZEN = ("macos", None, None)  # Mac OS X 10_15_7 / 10.15: any macOS from 10.15 to 26
OK_OR_NOTICE = AnyOf("supported", "unverified")
MOBILE_BROWSER = (ANY, ANY, AnyOf(None, False))  # the Meet app is the answer; no browser support is claimed
CHROME_142_HEADERS = {  # as Chrome 142 on Windows 11 sends them once asked (Accept-CH)
    "Sec-CH-UA": '"Chromium";v="142", "Google Chrome";v="142", "Not_A Brand";v="99"',
    "Sec-CH-UA-Mobile": "?0",
    "Sec-CH-UA-Platform": '"Windows"',
    "Sec-CH-UA-Platform-Version": '"19.0.0"',
    "Sec-CH-UA-Full-Version-List": '"Chromium";v="142.0.7444.60", "Google Chrome";v="142.0.7444.60", '
                                   '"Not_A Brand";v="99.0.0.0"',
}

CASES: list[Case] = [
    # ---- Chrome, desktop
    Case("chrome-142-windows-frozen", WIN.format(v=142), OK_OR_NOTICE, ("chrome", 142, True), WIN_FROZEN),
    Case("chrome-140-windows-oldest-supported", WIN.format(v=140), OK_OR_NOTICE, ("chrome", 140, True), WIN_FROZEN),
    Case("chrome-137-macos-outdated", MAC.format(v=137), "unsupported", ("chrome", 137, False), MAC_FROZEN,
         codes=("browser_outdated",), message="Chrome 137 is not supported: update to Chrome 140 or later."),
    Case("chrome-142-macos-frozen", MAC.format(v=142), "unverified", ("chrome", 142, True), MAC_FROZEN,
         codes=("os_unverified",)),
    Case("chrome-141-linux", LINUX.format(v=141), "unverified", ("chrome", 141, True), ("linux", None, None),
         codes=("os_unverified",)),
    Case("chrome-140-linux", LINUX.format(v=140), "unverified", ("chrome", 140, True), ("linux", None, None)),
    Case("chrome-139-linux-outdated", LINUX.format(v=139), "unsupported", ("chrome", 139, False),
         ("linux", None, None), codes=("browser_outdated",),
         message="Chrome 139 is not supported: update to Chrome 140 or later."),
    Case("chrome-142-chromeos-frozen-build", CROS.format(v=142), "supported", ("chrome", 142, True),
         ("chromeos", "142", True)),
    Case("chrome-139-chromeos-arm", "Mozilla/5.0 (X11; CrOS aarch64 14541.0.0) AppleWebKit/537.36 (KHTML, like "
         "Gecko) Chrome/139.0.0.0 Safari/537.36", "unsupported", ("chrome", 139, False), ("chromeos", "139", False),
         codes=("browser_outdated", "os_outdated")),
    Case("chrome-101-chromeos-unfrozen", "Mozilla/5.0 (X11; CrOS x86_64 14588.123.0) AppleWebKit/537.36 (KHTML, "
         "like Gecko) Chrome/101.0.4951.72 Safari/537.36", "unsupported", ("chrome", 101, False),
         ("chromeos", "101", False), codes=("browser_outdated",)),
    Case("chrome-109-windows-7", CHROME_109_WIN7, "unsupported", ("chrome", 109, False), ("windows", "7", False),
         codes=("browser_outdated", "os_outdated"),
         message="Windows 7 is not supported: update to Windows 8.1 or later."),
    Case("chrome-109-windows-8.1", CHROME_109_WIN81, "unsupported", ("chrome", 109, False),
         ("windows", "8.1", True), codes=("browser_outdated",),
         message="Chrome 109 is not supported: update to Chrome 140 or later."),
    Case("chrome-87-macos-10.11-real-version", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_6) AppleWebKit/537.36 "
         "(KHTML, like Gecko) Chrome/87.0.4280.88 Safari/537.36", "unsupported", ("chrome", 87, False),
         ("macos", "10.11", False), codes=("browser_outdated", "os_outdated"),
         message="macOS 10.11 is not supported: update to macOS 14 or later."),

    # ---- Edge
    Case("edge-142-windows", EDGE_WIN.format(v=142), OK_OR_NOTICE, ("edge", 142, True), WIN_FROZEN),
    Case("edge-141-macos", MAC.format(v=141) + " Edg/141.0.0.0", "unverified", ("edge", 141, True), MAC_FROZEN),
    Case("edge-139-windows-outdated", EDGE_WIN.format(v=139), "unsupported", ("edge", 139, False), WIN_FROZEN,
         codes=("browser_outdated",), message="Edge 139 is not supported: update to Edge 140 or later."),
    Case("edge-109-windows-7", CHROME_109_WIN7 + " Edg/109.0.1518.140", "unsupported", ("edge", 109, False),
         ("windows", "7", False), codes=("browser_outdated", "os_outdated")),
    Case("edge-142-linux", LINUX.format(v=142) + " Edg/142.0.0.0", "unverified", ("edge", 142, True),
         ("linux", None, None)),
    Case("edge-18-legacy-edgehtml", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like "
         "Gecko) Chrome/64.0.3282.140 Safari/537.36 Edge/18.17763", "unsupported",
         (AnyOf("edge", "other"), AnyOf(18, None), False), WIN_FROZEN, mentions=("Edge",)),

    # ---- Firefox
    Case("firefox-145-windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:145.0) Gecko/20100101 Firefox/145.0",
         OK_OR_NOTICE, ("firefox", 145, True), WIN_FROZEN),
    Case("firefox-145-macos-10.15-cap", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:145.0) Gecko/20100101 "
         "Firefox/145.0", "unverified", ("firefox", 145, True), MAC_FROZEN, codes=("os_unverified",)),
    Case("firefox-144-linux", "Mozilla/5.0 (X11; Linux x86_64; rv:144.0) Gecko/20100101 Firefox/144.0",
         "unverified", ("firefox", 144, True), ("linux", None, None), codes=("os_unverified",)),
    Case("firefox-143-ubuntu", "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:143.0) Gecko/20100101 Firefox/143.0",
         "unverified", ("firefox", 143, True), ("ubuntu", None, None), codes=("os_unverified",)),
    Case("firefox-142-ubuntu-outdated", "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:142.0) Gecko/20100101 "
         "Firefox/142.0", "unsupported", ("firefox", 142, False), ("ubuntu", None, None),
         codes=("browser_outdated",), message="Firefox 142 is not supported: update to Firefox 143 or later."),
    Case("firefox-140-esr-linux", "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0",
         "unsupported", ("firefox", 140, False), ("linux", None, None), codes=("browser_outdated",)),
    Case("firefox-128-linux-i686", "Mozilla/5.0 (X11; Linux i686; rv:128.0) Gecko/20100101 Firefox/128.0",
         "unsupported", ("firefox", 128, False), ("linux", None, None), codes=("browser_outdated",)),
    Case("firefox-144-fedora", "Mozilla/5.0 (X11; Fedora; Linux x86_64; rv:144.0) Gecko/20100101 Firefox/144.0",
         "unverified", ("firefox", 144, True), ("linux", None, None), codes=("os_unverified",),
         why="Fedora is Linux (the UA says 'Linux x86_64'): os.family must be 'linux', not 'other'"),
    Case("firefox-145-freebsd", "Mozilla/5.0 (X11; FreeBSD amd64; rv:145.0) Gecko/20100101 Firefox/145.0",
         "unsupported", ("firefox", 145, True), ("other", None, False), codes=("os_unsupported",)),
    Case("firefox-115-macos-10.14", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.14; rv:115.0) Gecko/20100101 "
         "Firefox/115.0", "unsupported", ("firefox", 115, False), ("macos", "10.14", False),
         codes=("browser_outdated", "os_outdated"),
         message="macOS 10.14 is not supported: update to macOS 14 or later."),
    Case("firefox-115-macos-10.13", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.13; rv:115.0) Gecko/20100101 "
         "Firefox/115.0", "unsupported", ("firefox", 115, False), ("macos", "10.13", False),
         codes=("browser_outdated", "os_outdated")),
    Case("firefox-115-windows-7", "Mozilla/5.0 (Windows NT 6.1; Win64; x64; rv:115.0) Gecko/20100101 Firefox/115.0",
         "unsupported", ("firefox", 115, False), ("windows", "7", False), codes=("browser_outdated", "os_outdated")),
    Case("firefox-115-windows-8.1", "Mozilla/5.0 (Windows NT 6.3; Win64; x64; rv:115.0) Gecko/20100101 "
         "Firefox/115.0", "unsupported", ("firefox", 115, False), ("windows", "8.1", True),
         codes=("browser_outdated",), message="Firefox 115 is not supported: update to Firefox 143 or later."),

    # ---- Safari (macOS frozen at 10_15_7; the major is the integer part)
    Case("safari-26.0-macos", SAFARI_MAC.format(v="26.0"), OK_OR_NOTICE, ("safari", 26, True),
         ("macos", None, AnyOf(None, True))),
    Case("safari-26.1-macos", SAFARI_MAC.format(v="26.1"), OK_OR_NOTICE, ("safari", 26, True),
         ("macos", None, AnyOf(None, True))),
    Case("safari-18.6-macos", SAFARI_MAC.format(v="18.6"), "unverified", ("safari", 18, True), MAC_FROZEN,
         codes=("os_unverified",)),
    Case("safari-17.6-macos", SAFARI_MAC.format(v="17.6"), "unverified", ("safari", 17, True), MAC_FROZEN),
    Case("safari-16.6-outdated", SAFARI_MAC.format(v="16.6"), "unsupported", ("safari", 16, False), MAC_FROZEN,
         codes=("browser_outdated",), message="Safari 16 is not supported: update to Safari 17 or later."),
    Case("safari-15.6.1-outdated", SAFARI_MAC.format(v="15.6.1"), "unsupported", ("safari", 15, False), MAC_FROZEN,
         codes=("browser_outdated",)),
    Case("safari-14-macos-10.14.6-real", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_14_6) AppleWebKit/605.1.15 "
         "(KHTML, like Gecko) Version/14.1.2 Safari/605.1.15", "unsupported", ("safari", 14, False),
         ("macos", "10.14", False), codes=("browser_outdated", "os_outdated"),
         message="Safari 14 is not supported: update to Safari 17 or later."),
    Case("safari-13-macos-10.13.6-real", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_13_6) AppleWebKit/605.1.15 "
         "(KHTML, like Gecko) Version/13.1.2 Safari/605.1.15", "unsupported", ("safari", 13, False),
         ("macos", "10.13", False), codes=("browser_outdated", "os_outdated")),

    # ---- iPadOS in desktop mode: a Mac user agent, but the page saw touch points
    Case("ipados-desktop-mode-safari-18", SAFARI_MAC.format(v="18.6"), "use_mobile_app", MOBILE_BROWSER,
         ("ios", None, None), mobile=True, hints=ClientHints(touch_mac=True), codes=("mobile_device",)),
    Case("ipados-desktop-mode-safari-26-posted", SAFARI_MAC.format(v="26.0"), "use_mobile_app", MOBILE_BROWSER,
         ("ios", None, None), mobile=True, hints=from_json({"touchMac": True}), codes=("mobile_device",)),

    # ---- phones and tablets: the Meet app
    Case("iphone-safari-26-ios-frozen-18_6", "Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) "
         "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/26.0 Mobile/15E148 Safari/604.1", "use_mobile_app",
         MOBILE_BROWSER, ("ios", None, None), mobile=True, codes=("mobile_device",)),
    Case("iphone-safari-17.7", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_7 like Mac OS X) AppleWebKit/605.1.15 "
         "(KHTML, like Gecko) Version/17.7 Mobile/15E148 Safari/604.1", "use_mobile_app", MOBILE_BROWSER,
         ("ios", AnyOf(None, "17", "17.7"), None), mobile=True),
    Case("ipad-safari-ios-frozen-18_7", "Mozilla/5.0 (iPad; CPU OS 18_7 like Mac OS X) AppleWebKit/605.1.15 "
         "(KHTML, like Gecko) Version/26.0 Mobile/15E148 Safari/604.1", "use_mobile_app", MOBILE_BROWSER,
         ("ios", None, None), mobile=True),
    Case("iphone-chrome-crios", "Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 "
         "(KHTML, like Gecko) CriOS/142.0.7444.46 Mobile/15E148 Safari/604.1", "use_mobile_app", MOBILE_BROWSER,
         ("ios", None, None), mobile=True),
    Case("iphone-firefox-fxios", "Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 "
         "(KHTML, like Gecko) FxiOS/145.0 Mobile/15E148 Safari/605.1.15", "use_mobile_app", MOBILE_BROWSER,
         ("ios", None, None), mobile=True),
    Case("iphone-edge-edgios", "Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 "
         "(KHTML, like Gecko) Version/18.0 EdgiOS/142.3595.53 Mobile/15E148 Safari/605.1.15", "use_mobile_app",
         MOBILE_BROWSER, ("ios", None, None), mobile=True),
    Case("android-chrome-frozen-10-K", "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
         "Chrome/142.0.0.0 Mobile Safari/537.36", "use_mobile_app", MOBILE_BROWSER, ("android", None, None),
         mobile=True, codes=("mobile_device",)),
    Case("android-tablet-chrome-no-mobile-token", "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, "
         "like Gecko) Chrome/142.0.0.0 Safari/537.36", "use_mobile_app", MOBILE_BROWSER, ("android", None, None),
         mobile=True),
    Case("android-13-chrome-112-unreduced", "Mozilla/5.0 (Linux; Android 13; SM-S901B) AppleWebKit/537.36 (KHTML, "
         "like Gecko) Chrome/112.0.0.0 Mobile Safari/537.36", "use_mobile_app", MOBILE_BROWSER,
         ("android", AnyOf(None, "13"), None), mobile=True),
    Case("android-firefox", "Mozilla/5.0 (Android 15; Mobile; rv:145.0) Gecko/145.0 Firefox/145.0",
         "use_mobile_app", MOBILE_BROWSER, ("android", AnyOf(None, "15"), None), mobile=True),
    Case("android-edge-edga", "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
         "Chrome/142.0.0.0 Mobile Safari/537.36 EdgA/142.0.0.0", "use_mobile_app", MOBILE_BROWSER,
         ("android", None, None), mobile=True),
    Case("android-samsung-internet", "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
         "SamsungBrowser/28.0 Chrome/130.0.0.0 Mobile Safari/537.36", "use_mobile_app", MOBILE_BROWSER,
         ("android", None, None), mobile=True),
    Case("android-opera", "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
         "Chrome/140.0.0.0 Mobile Safari/537.36 OPR/92.0.0.0", "use_mobile_app", MOBILE_BROWSER,
         ("android", None, None), mobile=True),
    Case("android-uc-browser", "Mozilla/5.0 (Linux; U; Android 10; en-US; RMX1911 Build/QKQ1.200209.002) "
         "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/78.0.3904.108 UCBrowser/13.4.0.1306 Mobile "
         "Safari/537.36", "use_mobile_app", MOBILE_BROWSER, ("android", AnyOf(None, "10"), None), mobile=True),
    Case("android-facebook-in-app", "Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/AP2A.240805.005; wv) "
         "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/128.0.6613.127 Mobile Safari/537.36 "
         "[FB_IAB/FB4A;FBAV/479.0.0.50.113;]", "use_mobile_app", MOBILE_BROWSER,
         ("android", AnyOf(None, "14"), None), mobile=True),
    Case("iphone-instagram-in-app", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6_1 like Mac OS X) AppleWebKit/605.1.15 "
         "(KHTML, like Gecko) Mobile/15E148 Instagram 346.0.6.33.79 (iPhone14,5; iOS 17_6_1; en_US; en; "
         "scale=3.00; 1170x2532; 634108168)", "use_mobile_app", MOBILE_BROWSER,
         ("ios", AnyOf(None, "17", "17.6", "17.6.1"), None), mobile=True),
    Case("windows-phone-edge", "Mozilla/5.0 (Windows Phone 10.0; Android 6.0.1; Microsoft; Lumia 950) "
         "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/52.0.2743.116 Mobile Safari/537.36 Edge/15.15063",
         "use_mobile_app", MOBILE_BROWSER, (AnyOf("other", "android"), None, None), mobile=True),
    Case("android-chrome-with-mobile-hint", "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like "
         "Gecko) Chrome/142.0.0.0 Mobile Safari/537.36", "use_mobile_app", MOBILE_BROWSER, ("android", None, None),
         mobile=True, headers={"Sec-CH-UA": '"Chromium";v="142", "Google Chrome";v="142", "Not_A Brand";v="99"',
                               "Sec-CH-UA-Mobile": "?1", "Sec-CH-UA-Platform": '"Android"'}),
    Case("android-tablet-request-desktop-site", LINUX.format(v=142), "use_mobile_app", MOBILE_BROWSER,
         ("android", None, None), mobile=True,
         hints=ClientHints(brands=B(("Chromium", "142"), ("Google Chrome", "142"), ("Not_A Brand", "99")),
                           mobile=False, platform="Android", platform_version="15.0.0")),

    # ---- other browsers and in-app web views on desktops: unsupported, naming what to use instead
    Case("opera-117-windows-with-hints", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like "
         "Gecko) Chrome/132.0.0.0 Safari/537.36 OPR/117.0.0.0", "unsupported", ("other", AnyOf(117, None), False),
         ("windows", None, AnyOf(True, None)), codes=("browser_unsupported",),
         headers={"Sec-CH-UA": '"Not A(Brand";v="8", "Chromium";v="132", "Opera";v="117"',
                  "Sec-CH-UA-Mobile": "?0", "Sec-CH-UA-Platform": '"Windows"'},
         mentions=("Opera",) + USE_INSTEAD),
    Case("opera-122-macos", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
         "Chrome/138.0.0.0 Safari/537.36 OPR/122.0.0.0", "unsupported", ("other", AnyOf(122, None), False),
         MAC_FROZEN, codes=("browser_unsupported",), mentions=("Opera",) + USE_INSTEAD),
    Case("yandex-windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
         "Chrome/132.0.0.0 YaBrowser/25.2.0.0 Safari/537.36", "unsupported", ("other", AnyOf(25, None), False),
         ("windows", None, AnyOf(True, None)), codes=("browser_unsupported",), mentions=("Yandex",) + USE_INSTEAD),
    Case("yandex-windows-with-hints", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like "
         "Gecko) Chrome/132.0.0.0 YaBrowser/25.2.0.0 Safari/537.36", "unsupported", ("other", ANY, False),
         ("windows", None, AnyOf(True, None)), codes=("browser_unsupported",),
         headers={"Sec-CH-UA": '"Not A(Brand";v="8", "Chromium";v="132", "YaBrowser";v="25.2", "Yowser";v="2.5"',
                  "Sec-CH-UA-Mobile": "?0", "Sec-CH-UA-Platform": '"Windows"'},
         mentions=("Yandex",) + USE_INSTEAD,
         why="reasons must be specific: the UA names Yandex Browser, the hints only add 'YaBrowser' and "
             "'Chromium'; telling a Yandex user 'Chromium cannot be used' names the wrong product"),
    Case("vivaldi-legacy-ua-token", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like "
         "Gecko) Chrome/78.0.3904.99 Safari/537.36 Vivaldi/2.9.1705.41", "unsupported", ("other", ANY, False),
         WIN_FROZEN, codes=("browser_unsupported",), mentions=("Vivaldi",) + USE_INSTEAD),
    Case("vivaldi-chrome-identical-ua-chromium-only-brands", WIN.format(v=142), "unsupported", ("other", ANY, False),
         ("windows", "11", True), codes=("browser_unsupported",), mentions=USE_INSTEAD,
         hints=ClientHints(brands=B(("Chromium", "142"), ("Not_A Brand", "24")), mobile=False, platform="Windows",
                           platform_version="19.0.0")),
    Case("brave-chrome-identical-ua", MAC.format(v=144), "unsupported", ("other", ANY, False), ("macos", "15", True),
         codes=("browser_unsupported",), mentions=("Brave",) + USE_INSTEAD,
         hints=ClientHints(brands=B(("Not(A:Brand", "8"), ("Chromium", "144"), ("Brave", "144")), mobile=False,
                           platform="macOS", platform_version="15.6.1")),
    Case("samsung-internet-dex-desktop-mode", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like "
         "Gecko) SamsungBrowser/22.0 Chrome/111.0.5563.116 Safari/537.36", "unsupported", ("other", ANY, False),
         ("linux", None, None), codes=("browser_unsupported",), mentions=("Samsung Internet",) + USE_INSTEAD),
    Case("samsung-smart-tv-tizen", "Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) "
         "SamsungBrowser/4.0 Chrome/76.0.3809.146 TV Safari/537.36", "unsupported", ("other", ANY, False),
         ("other", None, AnyOf(False, None)), codes=("browser_unsupported",)),
    Case("uc-browser-desktop-windows-7", "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) "
         "Chrome/55.0.2883.87 UBrowser/6.1.2716.5 Safari/537.36", "unsupported", ("other", ANY, False),
         ("windows", "7", False), codes=("browser_unsupported",), mentions=("UC Browser",) + USE_INSTEAD),
    Case("slack-desktop-electron-web-view", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
         "(KHTML, like Gecko) Slack/4.41.105 Chrome/130.0.6723.137 Electron/33.2.1 Safari/537.36 Sonic "
         "Slack_SSB/4.41.105", "unsupported", ("other", ANY, False), MAC_FROZEN, codes=("browser_unsupported",),
         mentions=USE_INSTEAD),
    Case("edge-webview2-in-app", EDGE_WIN.format(v=142), "unsupported", ("other", ANY, False),
         ("windows", "11", True), codes=("browser_unsupported",), mentions=USE_INSTEAD,
         hints=ClientHints(brands=B(("Microsoft Edge", "142"), ("Chromium", "142"), ("Not_A Brand", "24"),
                                    ("Microsoft Edge WebView2", "142")), mobile=False, platform="Windows",
                           platform_version="19.0.0"),
         why="an in-app web view (WebView2 adds the 'Microsoft Edge WebView2' brand, the UA is Edge's) is "
             "unsupported by the policy, not Edge"),
    Case("ubuntu-chromium-79", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Ubuntu "
         "Chromium/79.0.3945.79 Chrome/79.0.3945.79 Safari/537.36", "unsupported", ("other", ANY, False),
         ("ubuntu", None, None), codes=("browser_unsupported",), mentions=("Chromium",) + USE_INSTEAD),

    # ---- Internet Explorer: 11 needs the plugin; older ones are out
    Case("ie-11-windows-8.1", "Mozilla/5.0 (Windows NT 6.3; Trident/7.0; rv:11.0) like Gecko", "plugin_required",
         ("ie", 11, AnyOf(None, False)), ("windows", "8.1", True), codes=("plugin_required",),
         why="Windows NT 6.3 is a real version (8.1, supported): os.supported is null only when the version "
             "cannot be known"),
    Case("ie-11-windows-8.1-touch", "Mozilla/5.0 (Windows NT 6.3; WOW64; Trident/7.0; Touch; rv:11.0) like Gecko",
         "plugin_required", ("ie", 11, AnyOf(None, False)), ("windows", "8.1", True), codes=("plugin_required",),
         why="as ie-11-windows-8.1"),
    Case("ie-11-windows-10-wow64", "Mozilla/5.0 (Windows NT 10.0; WOW64; Trident/7.0; rv:11.0) like Gecko",
         "plugin_required", ("ie", 11, AnyOf(None, False)), WIN_FROZEN, codes=("plugin_required",)),
    Case("ie-11-windows-10-64bit", "Mozilla/5.0 (Windows NT 10.0; Trident/7.0; rv:11.0) like Gecko",
         "plugin_required", ("ie", 11, AnyOf(None, False)), WIN_FROZEN, codes=("plugin_required",)),
    Case("ie-11-windows-7", "Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko", "unsupported",
         ("ie", 11, AnyOf(None, False)), ("windows", "7", False), codes=("os_outdated",),
         message="Windows 7 is not supported: update to Windows 8.1 or later.",
         why="Windows 7 is known and unsupported, and 'unsupported when either is known to be unsupported'; "
             "the plugin does not make Windows 7 a supported system"),
    Case("ie-11-windows-7-dotnet-tokens", "Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; SLCC2; .NET CLR "
         "2.0.50727; .NET CLR 3.5.30729; .NET CLR 3.0.30729; Media Center PC 6.0; .NET4.0C; .NET4.0E; rv:11.0) "
         "like Gecko", "unsupported", ("ie", 11, AnyOf(None, False)), ("windows", "7", False),
         codes=("os_outdated",), why="as ie-11-windows-7"),
    Case("ie-10-windows-8", "Mozilla/5.0 (compatible; MSIE 10.0; Windows NT 6.2; Trident/6.0)", "unsupported",
         ("ie", 10, False), ("windows", "8", False), codes=("browser_unsupported",), mentions=USE_INSTEAD,
         why="Windows NT 6.2 is Windows 8, known and not in the catalog's supported majors"),
    Case("ie-9-windows-7", "Mozilla/5.0 (compatible; MSIE 9.0; Windows NT 6.1; Trident/5.0)", "unsupported",
         ("ie", 9, False), ("windows", "7", False), codes=("browser_unsupported",), mentions=USE_INSTEAD,
         why="Windows NT 6.1 is Windows 7, known and unsupported"),

    # ---- automated clients: never a browser, never 'use the app'
    Case("headless-chrome", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
         "HeadlessChrome/142.0.0.0 Safari/537.36", "unsupported", ("other", ANY, False),
         (AnyOf("other", "linux"), None, None), codes=("automated_client",)),
    Case("googlebot", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "unsupported",
         ("other", ANY, False), ("other", None, None), codes=("automated_client",)),
    Case("googlebot-desktop-chrome", "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Googlebot/2.1; "
         "+http://www.google.com/bot.html) Chrome/142.0.7444.59 Safari/537.36", "unsupported", ("other", ANY, False),
         ("other", None, None), codes=("automated_client",)),
    Case("googlebot-smartphone", "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 "
         "(KHTML, like Gecko) Chrome/142.0.7444.59 Mobile Safari/537.36 (compatible; Googlebot/2.1; "
         "+http://www.google.com/bot.html)", "unsupported", ("other", ANY, False),
         (AnyOf("other", "android"), None, None), codes=("automated_client",)),
    Case("bingbot", "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", "unsupported",
         ("other", ANY, False), ("other", None, None), codes=("automated_client",)),
    Case("bingbot-chrome", "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; "
         "+http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36", "unsupported", ("other", ANY, False),
         ("other", None, None), codes=("automated_client",)),
    Case("facebook-crawler", "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
         "unsupported", ("other", ANY, False), ("other", None, None), codes=("automated_client",)),
    Case("curl", "curl/8.5.0", "unsupported", ("other", ANY, False), ("other", None, None),
         codes=("automated_client",)),
    Case("wget", "Wget/1.21.4", "unsupported", ("other", ANY, False), ("other", None, None),
         codes=("automated_client",)),
    Case("python-requests", "python-requests/2.32.3", "unsupported", ("other", ANY, False), ("other", None, None),
         codes=("automated_client",)),
    Case("go-http-client", "Go-http-client/2.0", "unsupported", ("other", ANY, False), ("other", None, None),
         codes=("automated_client",)),

    # ---- nothing usable
    Case("empty", "", "unsupported", ("other", None, False), ("other", None, None), codes=("no_user_agent",),
         mentions=USE_INSTEAD),
    Case("whitespace", " \t\r\n  ", "unsupported", ("other", None, False), ("other", None, None),
         codes=("no_user_agent",)),
    Case("garbage", "asdf;;;(((", "unsupported", ("other", None, False), ("other", None, None),
         mentions=USE_INSTEAD),
    Case("bare-mozilla", "Mozilla/5.0", "unsupported", ("other", None, False), ("other", None, None)),
    Case("control-characters", "\x00\x07Mozilla/5.0 (\x1b[31m\x7f)\ufffd", "unsupported", ("other", ANY, False),
         ("other", None, None)),
    Case("real-ua-with-100k-padding", WIN.format(v=142) + " " + "A" * 100_000, OK_OR_NOTICE, ("chrome", 142, True),
         WIN_FROZEN),
    Case("100k-parentheses-then-ie11", "(" * 100_000 + "Windows NT 6.3; Trident/7.0; rv:11.0) like Gecko",
         "unsupported", ("other", ANY, False), ("other", None, None)),

    # ---- client hints tell the real OS version (and the real brand)
    Case("chrome-142-windows-11-hint", WIN.format(v=142), "supported", ("chrome", 142, True), ("windows", "11", True),
         hints=ClientHints(brands=B(("Chromium", "142"), ("Google Chrome", "142"), ("Not_A Brand", "99")),
                           mobile=False, platform="Windows", platform_version="15.0.0")),
    Case("chrome-142-windows-11-boundary-13", WIN.format(v=142), "supported", ("chrome", 142, True),
         ("windows", "11", True), hints=ClientHints(brands=B(("Google Chrome", "142"), ("Chromium", "142")),
                                                    platform="Windows", platform_version="13.0.0")),
    Case("chrome-142-windows-10-hint", WIN.format(v=142), "supported", ("chrome", 142, True), ("windows", "10", True),
         hints=ClientHints(brands=B(("Chromium", "142"), ("Google Chrome", "142"), ("Not_A Brand", "99")),
                           platform="Windows", platform_version="10.0.0")),
    Case("chrome-142-windows-10-1507-hint", WIN.format(v=142), "supported", ("chrome", 142, True),
         ("windows", "10", True), hints=ClientHints(brands=B(("Google Chrome", "142")), platform="Windows",
                                                    platform_version="1.0.0")),
    Case("chrome-142-windows-11-real-headers", WIN.format(v=142), "supported", ("chrome", 142, True),
         ("windows", "11", True), headers=CHROME_142_HEADERS),
    Case("chrome-142-windows-low-entropy-headers-only", WIN.format(v=142), OK_OR_NOTICE, ("chrome", 142, True),
         WIN_FROZEN, headers={k: v for k, v in CHROME_142_HEADERS.items()
                              if k in ("Sec-CH-UA", "Sec-CH-UA-Mobile", "Sec-CH-UA-Platform")}),
    Case("chrome-109-windows-8.1-hint-0.3.0-older", CHROME_109_WIN81, "unsupported", ("chrome", 109, False),
         ("windows", "8.1", True), codes=("browser_outdated",),
         hints=ClientHints(brands=B(("Not_A Brand", "99"), ("Google Chrome", "109"), ("Chromium", "109")),
                           platform="Windows", platform_version="0.3.0")),
    Case("chrome-109-windows-7-hint-0.1.0-older", CHROME_109_WIN7, "unsupported", ("chrome", 109, False),
         ("windows", "7", False), codes=("browser_outdated", "os_outdated"),
         hints=ClientHints(brands=B(("Not_A Brand", "99"), ("Google Chrome", "109"), ("Chromium", "109")),
                           platform="Windows", platform_version="0.1.0"),
         why="a platformVersion major of 0 only says 'older than 10'; the UA's real 'Windows NT 6.1' says 7, "
             "which must not become a supported 8.1"),
    Case("chrome-142-macos-15-hint", MAC.format(v=142), "supported", ("chrome", 142, True), ("macos", "15", True),
         hints=ClientHints(brands=B(("Not(A:Brand", "99"), ("Google Chrome", "142"), ("Chromium", "142")),
                           platform="macOS", platform_version="15.1.0")),
    Case("chrome-142-macos-26-hint", MAC.format(v=142), "supported", ("chrome", 142, True), ("macos", "26", True),
         hints=ClientHints(brands=B(("Google Chrome", "142"), ("Chromium", "142"), ("Not_A Brand", "99")),
                           platform="macOS", platform_version="26.0.0")),
    Case("chrome-142-macos-13-hint-outdated", MAC.format(v=142), "unsupported", ("chrome", 142, True),
         ("macos", "13", False), codes=("os_outdated",),
         message="macOS 13 is not supported: update to macOS 14 or later.",
         hints=ClientHints(brands=B(("Chromium", "142"), ("Google Chrome", "142"), ("Not_A Brand", "99")),
                           platform="macOS", platform_version="13.6.0")),
    Case("edge-141-macos-14-posted-hints", MAC.format(v=141) + " Edg/141.0.0.0", "supported", ("edge", 141, True),
         ("macos", "14", True),
         hints=from_json({"brands": [{"brand": "Microsoft Edge", "version": "141"},
                                     {"brand": "Not?A_Brand", "version": "8"},
                                     {"brand": "Chromium", "version": "141"}],
                          "fullVersionList": [{"brand": "Microsoft Edge", "version": "141.0.3537.99"},
                                              {"brand": "Not?A_Brand", "version": "8.0.0.0"},
                                              {"brand": "Chromium", "version": "141.0.7390.123"}],
                          "mobile": False, "platform": "macOS", "platformVersion": "14.7.1"})),
    Case("edge-142-windows-11-real-headers", EDGE_WIN.format(v=142), "supported", ("edge", 142, True),
         ("windows", "11", True),
         headers={"Sec-CH-UA": '"Chromium";v="142", "Microsoft Edge";v="142", "Not_A Brand";v="99"',
                  "Sec-CH-UA-Mobile": "?0", "Sec-CH-UA-Platform": '"Windows"',
                  "Sec-CH-UA-Platform-Version": '"15.0.0"'}),
    Case("chrome-133-grease-first-outdated", WIN.format(v=133), "unsupported", ("chrome", 133, False),
         ("windows", "11", True), codes=("browser_outdated",),
         message="Chrome 133 is not supported: update to Chrome 140 or later.",
         headers={"Sec-CH-UA": '"Not(A:Brand";v="99", "Google Chrome";v="133", "Chromium";v="133"',
                  "Sec-CH-UA-Platform": '"Windows"', "Sec-CH-UA-Platform-Version": '"15.0.0"'}),
    Case("chrome-138-grease-paren-semicolon", WIN.format(v=138), "unsupported", ("chrome", 138, False),
         ("windows", "10", True), codes=("browser_outdated",),
         headers={"Sec-CH-UA": '"Not)A;Brand";v="8", "Chromium";v="138", "Google Chrome";v="138"',
                  "Sec-CH-UA-Platform": '"Windows"', "Sec-CH-UA-Platform-Version": '"10.0.0"'}),
    Case("chrome-141-chromeos-hint-build-version", "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 "
         "(KHTML, like Gecko) Chrome/141.0.0.0 Safari/537.36", "supported", ("chrome", 141, True),
         ("chromeos", "141", True),
         hints=ClientHints(brands=B(("Google Chrome", "141"), ("Not?A_Brand", "8"), ("Chromium", "141")),
                           platform="Chrome OS", platform_version="16433.56.0")),
    Case("chrome-142-linux-hint-empty-version", LINUX.format(v=142), "unverified", ("chrome", 142, True),
         ("linux", None, None), codes=("os_unverified",),
         headers={"Sec-CH-UA": '"Chromium";v="142", "Google Chrome";v="142", "Not_A Brand";v="99"',
                  "Sec-CH-UA-Mobile": "?0", "Sec-CH-UA-Platform": '"Linux"', "Sec-CH-UA-Platform-Version": '""'}),
]

REAL_UAS = sorted({case.ua for case in CASES if case.ua.strip() and len(case.ua) < 1000 and case.ua.isprintable()
                   and case.id not in ("garbage", "bare-mozilla")})


def test_the_corpus_is_big_enough_and_ids_are_unique() -> None:
    assert len(REAL_UAS) >= 60
    assert len({case.id for case in CASES}) == len(CASES)


def _describe(case: Case, verdict: dict[str, Any]) -> str:
    note = f"\n  contract: {case.why}" if case.why else ""
    return f"{case.id}: got {verdict}{note}"


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_corpus(case: Case, classifier: Classifier) -> None:
    result = classifier.classify(case.ua, case.client_hints(), CATALOG)
    assert isinstance(result, Verdict)
    verdict = result.as_dict()
    VerdictOut.model_validate(verdict)
    shown = _describe(case, verdict)
    browser, system = verdict["browser"], verdict["os"]

    assert _matches(case.verdict, verdict["verdict"]), f"verdict should be {case.verdict!r}; {shown}"
    for name, expected in zip(("family", "major", "supported"), case.browser, strict=True):
        assert _matches(expected, browser[name]), f"browser.{name} should be {expected!r}; {shown}"
    for name, expected in zip(("family", "version", "supported"), case.os, strict=True):
        assert _matches(expected, system[name]), f"os.{name} should be {expected!r}; {shown}"
    assert verdict["mobile"] is case.mobile, shown

    codes = [r["code"] for r in verdict["reasons"]]
    messages = [r["message"] for r in verdict["reasons"]]
    for code in case.codes:
        assert code in codes, f"reason {code!r} missing; {shown}"
    if case.message is not None:
        assert case.message in messages, f"message {case.message!r} missing; {shown}"
    text = " ".join(messages)
    for word in case.mentions:
        assert word in text, f"the reasons should name {word!r}; {shown}"
    _assert_consistent(verdict)


def _assert_consistent(verdict: dict[str, Any]) -> None:
    """What every verdict owes the caller, whatever the input (docs/architecture.md, 'Browser and system support')."""
    browser_ok, os_ok = verdict["browser"]["supported"], verdict["os"]["supported"]
    codes = [r["code"] for r in verdict["reasons"]]
    kind = verdict["verdict"]
    if kind == "supported":
        assert browser_ok is True and os_ok is True
        assert not [c for c in codes if c.endswith(("_outdated", "_unsupported"))]
    elif kind == "unsupported":
        assert browser_ok is False or os_ok is False
        assert codes, "an unsupported verdict says why"
        assert all(r["message"].strip() for r in verdict["reasons"])
    elif kind == "unverified":
        assert browser_ok is not False and os_ok is not False
        assert not (browser_ok is True and os_ok is True)
        assert any(c.endswith("_unverified") for c in codes), "unverified comes with a notice"
    elif kind == "use_mobile_app":
        assert verdict["mobile"] is True
        urls = " ".join(link["url"] for link in verdict["links"])
        assert "play.google.com" in urls and "apps.apple.com" in urls, "store links for the Meet app"
    elif kind == "plugin_required":
        assert verdict["browser"]["family"] == "ie"
        assert verdict["links"], "the plugin instructions link to the plugin"
        assert "plugin" in " ".join(r["message"] for r in verdict["reasons"]).lower()


# ------------------------------------------------------------------ hints: Sec-CH-UA* headers

GREASE = [" Not A;Brand", ";Not A Brand", "Not A(Brand", "Not/A)Brand", "Not;A=Brand", "Not-A.Brand",
          "Not(A:Brand", "(Not(A:Brand", "Not:A-Brand", "Not)A;Brand", "Not=A?Brand", "Not?A_Brand", "Not_A Brand",
          "Not.A/Brand"]


@pytest.mark.parametrize("grease", GREASE)
def test_grease_brands_are_ignored_wherever_they_sit(grease: str) -> None:
    for header in (f'"{grease}";v="99", "Chromium";v="142", "Google Chrome";v="142"',
                   f'"Chromium";v="142", "{grease}";v="8", "Google Chrome";v="142"',
                   f'"Google Chrome";v="142", "Chromium";v="142", "{grease}";v="24"'):
        hints = from_headers({"Sec-CH-UA": header})
        assert hints is not None
        assert len(hints.brands) == 3, header  # the ';', '=', ',' inside the quoted brand split nothing
        assert hints.versions() == {"Chromium": "142", "Google Chrome": "142"}, header


def test_real_chrome_headers_parse_completely() -> None:
    hints = from_headers(CHROME_142_HEADERS)
    assert hints == ClientHints(
        brands=B(("Chromium", "142"), ("Google Chrome", "142"), ("Not_A Brand", "99")),
        full_version_list=B(("Chromium", "142.0.7444.60"), ("Google Chrome", "142.0.7444.60"),
                            ("Not_A Brand", "99.0.0.0")),
        mobile=False, platform="Windows", platform_version="19.0.0")
    assert hints.versions() == {"Chromium": "142.0.7444.60", "Google Chrome": "142.0.7444.60"}


def test_headers_are_read_case_insensitively_from_a_request() -> None:
    headers = Headers([("sec-ch-ua", '"Microsoft Edge";v="142", "Chromium";v="142", "Not_A Brand";v="24"'),
                       ("sec-ch-ua-mobile", "?0"), ("sec-ch-ua-platform", '"Windows"'),
                       ("sec-ch-ua-platform-version", '"15.0.0"')])
    hints = from_headers(headers)
    assert hints is not None and hints.platform == "Windows" and hints.platform_version == "15.0.0"
    assert hints.versions() == {"Microsoft Edge": "142", "Chromium": "142"}


def test_structured_field_spacing_variants() -> None:
    hints = from_headers({"Sec-CH-UA": '"Chromium"; v="142",   "Google Chrome";v="142"  ,"Not_A Brand";v="99"'})
    assert hints is not None
    assert hints.versions() == {"Chromium": "142", "Google Chrome": "142"}


def test_structured_field_string_escapes_are_undone() -> None:
    """RFC 8941 strings escape '"' and '\\' with a backslash; the brand is the unescaped text."""
    hints = from_headers({"Sec-CH-UA": r'"Brand \"Quoted\"";v="1", "Back\\slash";v="2", "Chromium";v="142"'})
    assert hints is not None
    assert [b.brand for b in hints.brands] == ['Brand "Quoted"', "Back\\slash", "Chromium"]
    assert [b.version for b in hints.brands] == ["1", "2", "142"]


def test_platform_and_mobile_headers() -> None:
    assert from_headers({"Sec-CH-UA-Mobile": "?1"}) == ClientHints(mobile=True)
    assert from_headers({"Sec-CH-UA-Mobile": "?0", "Sec-CH-UA-Platform": '"Chrome OS"'}) == ClientHints(
        mobile=False, platform="Chrome OS")
    assert from_headers({"Sec-CH-UA-Platform": '"macOS"', "Sec-CH-UA-Platform-Version": '"15.1.0"'}) == ClientHints(
        platform="macOS", platform_version="15.1.0")
    linux = from_headers({"Sec-CH-UA-Platform": '"Linux"', "Sec-CH-UA-Platform-Version": '""'})
    assert linux is not None and linux.platform_version is None  # "always empty on Linux"
    odd = from_headers({"Sec-CH-UA-Mobile": "yes", "Sec-CH-UA-Platform": '"Windows"'})
    assert odd is not None and odd.mobile is None


def test_no_client_hint_headers_means_no_hints() -> None:
    assert from_headers({}) is None
    assert from_headers({"User-Agent": WIN.format(v=142), "Sec-CH-UA-Platform-Version": '"15.0.0"'}) is None
    assert from_headers({"Sec-CH-UA": ""}) is None


def test_at_most_ten_brands_are_kept() -> None:
    header = ", ".join(f'"Brand{i}";v="{i}"' for i in range(30))
    hints = from_headers({"Sec-CH-UA": header})
    assert hints is not None and len(hints.brands) == 10


# ------------------------------------------------------------------ hints: posted JSON and merge

HIGH_ENTROPY_POST = {  # navigator.userAgentData.getHighEntropyValues([...]) on Chrome 142, Windows 11
    "architecture": "x86", "bitness": "64", "model": "", "wow64": False, "formFactors": ["Desktop"],
    "brands": [{"brand": "Chromium", "version": "142"}, {"brand": "Google Chrome", "version": "142"},
               {"brand": "Not_A Brand", "version": "99"}],
    "fullVersionList": [{"brand": "Chromium", "version": "142.0.7444.60"},
                        {"brand": "Google Chrome", "version": "142.0.7444.60"},
                        {"brand": "Not_A Brand", "version": "99.0.0.0"}],
    "mobile": False, "platform": "Windows", "platformVersion": "19.0.0", "uaFullVersion": "142.0.7444.60",
}


def test_from_json_reads_get_high_entropy_values() -> None:
    hints = from_json(HIGH_ENTROPY_POST)
    assert hints == from_headers(CHROME_142_HEADERS)  # same browser, same facts, either way
    assert hints is not None and hints.touch_mac is False


def test_from_json_tolerates_junk() -> None:
    assert from_json(None) is None
    assert from_json({}) is None
    hints = from_json({"brands": "Chrome", "fullVersionList": [1, None, {"brand": 5}], "mobile": "true",
                       "platform": "", "platformVersion": 15, "touchMac": "yes", "extra": {"x": 1}})
    assert hints == ClientHints(brands=(), full_version_list=(Brand("5", ""),), mobile=None, platform=None,
                                platform_version="15", touch_mac=False)
    long = from_json({"brands": [{"brand": "B" * 500, "version": "9" * 500}] * 50, "platform": "P" * 500})
    assert long is not None and len(long.brands) == 10
    assert len(long.brands[0].brand) == 100 and len(long.brands[0].version) == 40 and len(long.platform or "") == 50


def test_merge_combines_headers_with_the_posted_values() -> None:
    low = from_headers({k: v for k, v in CHROME_142_HEADERS.items()
                        if k in ("Sec-CH-UA", "Sec-CH-UA-Mobile", "Sec-CH-UA-Platform")})
    posted = from_json({"platformVersion": "15.0.0", "touchMac": False,
                        "fullVersionList": HIGH_ENTROPY_POST["fullVersionList"]})
    merged = merge(low, posted)
    assert merged is not None and low is not None
    assert merged.brands == low.brands and merged.platform == "Windows" and merged.mobile is False
    assert merged.platform_version == "15.0.0"
    assert merged.full_version_list == B(("Chromium", "142.0.7444.60"), ("Google Chrome", "142.0.7444.60"),
                                         ("Not_A Brand", "99.0.0.0"))


def test_merge_prefers_the_second_and_keeps_touch_from_either() -> None:
    first = ClientHints(brands=B(("Google Chrome", "141")), mobile=True, platform="Windows",
                        platform_version="10.0.0", touch_mac=True)
    second = ClientHints(brands=B(("Google Chrome", "142")), mobile=False, platform="macOS")
    merged = merge(first, second)
    assert merged == ClientHints(brands=B(("Google Chrome", "142")), mobile=False, platform="macOS",
                                 platform_version="10.0.0", touch_mac=True)
    assert merge(None, second) is second and merge(first, None) is first and merge(None, None) is None


def test_merged_hints_decide_the_verdict(classifier: Classifier) -> None:
    low = from_headers({"Sec-CH-UA": CHROME_142_HEADERS["Sec-CH-UA"], "Sec-CH-UA-Platform": '"Windows"'})
    verdict = classifier.classify(WIN.format(v=142), merge(low, from_json({"platformVersion": "10.0.0"})),
                                  CATALOG).as_dict()
    assert verdict["verdict"] == "supported" and verdict["os"] == {"family": "windows", "version": "10",
                                                                   "supported": True}
