"""Is this browser on this system supported for a verification call?

The verdict's contract: docs/architecture.md, 'Browser and system support'.

Policy: the current and two previous major releases of Chrome, Edge, Firefox
and Safari, on the current and two previous major releases of macOS,
Windows, ChromeOS, Ubuntu and other Debian-based Linux. Phones and tablets
use the Google Meet app; Internet Explorer 11 needs Google's video plugin.

Frozen User-Agent values (``Windows NT 10.0``, ``Mac OS X 10_15_7``, the
ChromeOS build, Firefox's ``10.15`` cap) are *unknown*, never versions: the
OS version then comes from client hints, and without them the verdict is
``unverified`` (allowed, with a notice), never a wrong ``unsupported``.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from typing import Any, NamedTuple

from ua_parser import Domain, load_builtins
from ua_parser.regex import Resolver as RegexResolver

from verify_service.support.catalog import Catalog
from verify_service.support.describe import (MEET_APP_LINKS, NAMES, ClientName, browser_display,
                                             phone_system_version, system_display)
from verify_service.support.hints import ClientHints

USE_INSTEAD = "use Google Chrome, Mozilla Firefox, Apple Safari or Microsoft Edge"
STORES = {"android": "Google Play", "ios": "the App Store"}
PLUGIN_LINK = {"label": "Google Video Support plugin", "url": "https://tools.google.com/dlpage/hangoutplugin"}

UA_BROWSERS = {"Chrome": "chrome", "Edge": "edge", "Firefox": "firefox", "Safari": "safari", "IE": "ie"}
# Client-hint brands, most specific first ("Chromium" alone is not Chrome). In-app web views
# carry a browser brand too, so they are looked for first.
WEBVIEW_BRANDS = {"Microsoft Edge WebView2": "Edge WebView2 (an app's built-in browser)",
                  "Android WebView": "Android WebView (an app's built-in browser)"}
HINT_BROWSERS = (("Microsoft Edge", "edge"), ("Google Chrome", "chrome"))
OTHER_CHROMIUM_BRANDS = {"Opera": "Opera", "Opera GX": "Opera GX", "Brave": "Brave", "YaBrowser": "Yandex Browser",
                         "Yandex": "Yandex Browser", "Samsung Internet": "Samsung Internet", "Vivaldi": "Vivaldi"}
_BOT = re.compile(r"bot|crawl|spider|slurp|headless|preview|monitor|curl|wget|python|java/|go-http", re.IGNORECASE)
MOBILE_TOKENS = ("android", "iphone", "ipad", "ipod", "mobile", "windows phone", "kaios", "blackberry")
LINUX_FAMILIES = {"Linux", "Ubuntu", "Debian", "Fedora", "Red Hat", "SUSE", "openSUSE", "CentOS", "Mint",
                  "Linux Mint", "Arch Linux", "Gentoo", "Slackware", "Mandriva", "Kubuntu", "Xubuntu"}
DOMAINS = Domain.USER_AGENT | Domain.OS
DESKTOP_FAMILIES = frozenset({"Windows", "Mac OS X", "Chrome OS"})
# Windows 7, 8 and 8.1 report platform versions 0.1, 0.2 and 0.3.
OLD_WINDOWS = {1: "7", 2: "8", 3: "8.1"}
KNOWN_UNSUPPORTED_OS = {"FreeBSD", "OpenBSD", "NetBSD", "Solaris", "Windows Phone", "BlackBerry OS", "KaiOS",
                        "Tizen", "webOS"}
MAX_UA = 1024


@dataclasses.dataclass(frozen=True)
class Reason:
    code: str
    message: str


@dataclasses.dataclass(frozen=True)
class Verdict:
    verdict: str
    browser: dict[str, Any]
    os: dict[str, Any]
    mobile: bool
    reasons: tuple[Reason, ...]
    links: tuple[dict[str, str], ...] = ()
    # For the pages only, never in the API's answer: the product and system by their own names.
    client: ClientName = ClientName()

    def as_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "browser": dict(self.browser), "os": dict(self.os), "mobile": self.mobile,
                "reasons": [{"code": r.code, "message": r.message} for r in self.reasons],
                "links": [dict(link) for link in self.links]}


def _number(text: str | None) -> tuple[int, ...] | None:
    """'24.04' → (24, 4); '15' → (15,); anything else → None."""
    if not text or not re.fullmatch(r"\d+(\.\d+)*", text):
        return None
    return tuple(int(part) for part in text.split("."))


@functools.lru_cache(maxsize=256)
def _oldest_ok(catalog: Catalog, product: str) -> tuple[tuple[int, ...], str] | None:
    versions = [(_number(v), v) for v in catalog.supported(product)]
    parsed = [(n, v) for n, v in versions if n is not None]
    return min(parsed) if parsed else None


class Classifier:
    """Built once per process: the parser tables load here, never per request.

    Results are cached (bounded) per user agent, hints and catalog, so
    repeated checks cost a dictionary look-up.
    """

    def __init__(self, cache_size: int = 20_000) -> None:
        self._resolve = RegexResolver(load_builtins())
        # One bounded cache of whole results per (user agent, hints, catalog); a second one of the
        # decision per parsed shape, so new strings that parse alike (build numbers) skip the logic.
        self.classify = functools.lru_cache(maxsize=cache_size)(self._classify)  # type: ignore[method-assign]
        self._decide = functools.lru_cache(maxsize=cache_size)(_decide)

    def parse(self, user_agent: str) -> Any:
        return self._resolve(user_agent, DOMAINS)

    def _classify(self, user_agent: str, hints: ClientHints | None, catalog: Catalog) -> Verdict:
        """Never raises: any input gives a verdict."""
        user_agent = (user_agent or "")[:MAX_UA]
        if not user_agent or user_agent.isspace():
            return _unsupported("other", None, "other", [Reason("no_user_agent", "Your browser did not identify "
                                f"itself, so we cannot check it: {USE_INSTEAD}.")])
        parsed = self.parse(user_agent)
        ua, os_ = parsed.user_agent, parsed.os
        ua_family = ua.family if ua else "Other"
        bot = _bot_family(ua_family) or (ua_family == "Other" and _BOT.search(user_agent) is not None)
        os_family = os_.family if os_ else "Other"
        if os_family in DESKTOP_FAMILIES:
            # ua-parser names phone systems on their own (Windows Phone, iOS…): no token can matter here.
            mobile_token = linux_token = False
        else:
            lowered = user_agent.lower()
            mobile_token = any(token in lowered for token in MOBILE_TOKENS)
            linux_token = "linux" in lowered
        shape = _Shape(ua_family, ua.major if ua else None, os_family, os_.major if os_ else None,
                       os_.minor if os_ else None, bot, mobile_token, linux_token)
        return self._decide(shape, hints, catalog)


@functools.lru_cache(maxsize=4096)
def _bot_family(family: str) -> bool:
    return _BOT.search(family) is not None


class _Shape(NamedTuple):
    """What the verdict depends on in a parsed user agent (build numbers and the rest are not).

    A tuple, not a dataclass: it is built and hashed for every new string (the cold path).
    """

    ua_family: str
    ua_major: str | None
    os_family: str
    os_major: str | None
    os_minor: str | None
    bot: bool
    mobile_token: bool
    linux_token: bool


def _decide(shape: _Shape, hints: ClientHints | None, catalog: Catalog) -> Verdict:
    verdict = _verdict_of(shape, hints, catalog)
    return dataclasses.replace(verdict, client=_client_name(shape, hints, verdict))


def _client_name(shape: _Shape, hints: ClientHints | None, verdict: Verdict) -> ClientName:
    if shape.bot:
        return ClientName()
    _, major, shown = _browser_of(shape, hints)
    family = verdict.os["family"]
    if verdict.mobile:
        if hints is not None and hints.touch_mac:  # an iPad asking for the desktop site: its Mac version is made up
            version, system = None, "iPadOS"
        else:
            version = phone_system_version(family, shape.os_major, hints)
            system = system_display(family, shape.os_family)
    else:
        version, system = verdict.os["version"], system_display(family, shape.os_family)
    name = browser_display(shown)
    return ClientName(browser=name, browser_major=major if name else None, system=system, system_version=version)


def _verdict_of(shape: _Shape, hints: ClientHints | None, catalog: Catalog) -> Verdict:
    if shape.bot:
        return _unsupported("other", None, "other", [Reason(
            "automated_client", f"This looks like an automated client, not a browser: {USE_INSTEAD}.")])
    if _is_mobile(shape, hints):
        return _mobile(shape.os_family, hints)
    browser, major, shown = _browser_of(shape, hints)
    os_part = _os_of(shape, hints, browser, major, catalog)
    if browser == "ie":
        return _internet_explorer(major, os_part)
    return _judge(browser, major, shown, os_part, catalog)


# ---------------------------------------------------------------- pieces

def _is_mobile(shape: _Shape, hints: ClientHints | None) -> bool:
    if hints is not None:
        if hints.mobile or hints.touch_mac or (hints.platform or "").lower() in ("android", "ios"):
            return True
    return shape.os_family in ("Android", "iOS") or shape.mobile_token


def _mobile(os_family: str, hints: ClientHints | None) -> Verdict:
    family = {"Android": "android", "iOS": "ios"}.get(os_family, "other")
    if family == "other" and hints is not None:
        family = {"android": "android", "ios": "ios"}.get((hints.platform or "").lower(), "other")
        if hints.touch_mac:
            family = "ios"
    return Verdict("use_mobile_app", {"family": "other", "major": None, "supported": None, "supported_majors": []},
                   {"family": family, "version": None, "supported": None}, True,
                   (Reason("mobile_device", "On a phone or tablet, join the call with the Google Meet app: "
                                            f"get it from {STORES.get(family, 'Google Play or the App Store')}."),),
                   MEET_APP_LINKS)


def _internet_explorer(major: int | None, system: _OsPart) -> Verdict:
    browser = {"family": "ie", "major": major, "supported": None, "supported_majors": []}
    os_part = {"family": system.family, "version": system.version, "supported": system.supported}
    if major == 11 and system.supported is False and system.reason is not None:
        # The plugin cannot help on a system that is itself out of support.
        return Verdict("unsupported", browser, os_part, False, (system.reason,))
    if major == 11:
        return Verdict("plugin_required", browser, os_part, False, (Reason(
            "plugin_required", "Internet Explorer 11 works only with Google's video plugin: install the latest "
                               "Google Video Support plugin, restart the browser, then start the call. Google Chrome, "
                               "Microsoft Edge or Mozilla Firefox work without it."),), (PLUGIN_LINK,))
    browser["supported"] = False
    return Verdict("unsupported", browser, os_part, False, (Reason(
        "browser_unsupported", f"Internet Explorer {major or ''} cannot join verification calls: {USE_INSTEAD}."
        .replace("  ", " ")),))


def _browser_of(shape: _Shape, hints: ClientHints | None) -> tuple[str, int | None, str]:
    """The product ('chrome', … or 'other'), its major, and the name to show for other browsers."""
    if hints is not None:
        versions = hints.versions()
        for brand, shown in WEBVIEW_BRANDS.items():
            if brand in versions:
                return "other", _major(versions[brand]), shown
        for brand, product in HINT_BROWSERS:
            if brand in versions:
                return product, _major(versions[brand]), NAMES[product]
        for brand, shown in OTHER_CHROMIUM_BRANDS.items():
            if brand in versions:
                return "other", _major(versions[brand]), shown
        if "Chromium" in versions and shape.ua_family in ("Chrome", "Chromium", "Other"):
            return "other", _major(versions["Chromium"]), "Chromium"
    product = UA_BROWSERS.get(shape.ua_family)
    if product is None:
        return "other", _major(shape.ua_major), shape.ua_family
    return product, _major(shape.ua_major), NAMES[product]


def _major(text: str | None) -> int | None:
    match = re.match(r"\s*(\d{1,6})", text or "")
    return int(match.group(1)) if match else None


@dataclasses.dataclass(frozen=True)
class _OsPart:
    family: str
    version: str | None
    supported: bool | None
    reason: Reason | None = None


def _os_of(shape: _Shape, hints: ClientHints | None, browser: str, major: int | None,
           catalog: Catalog) -> _OsPart:
    platform = (hints.platform or "").lower() if hints else ""
    platform_version = hints.platform_version if hints else None
    os_family = shape.os_family
    if os_family == "Windows" or platform == "windows":
        return _windows(shape, platform_version if platform == "windows" else None, catalog)
    if os_family == "Mac OS X" or platform == "macos":
        return _macos(shape, platform_version if platform == "macos" else None, catalog)
    if os_family == "Chrome OS" or platform == "chrome os":
        version = str(major) if browser == "chrome" and major else None
        return _versioned("chromeos", version, catalog)
    if os_family in LINUX_FAMILIES or platform == "linux" or (os_family == "Other" and shape.linux_token):
        family = {"Ubuntu": "ubuntu", "Debian": "debian"}.get(os_family, "linux")
        return _OsPart(family, None, None, Reason("os_unverified", "We cannot tell your Linux distribution and "
                       "version from the browser. Calls are supported on current Ubuntu and other Debian-based "
                       "systems; you can continue."))
    if os_family in KNOWN_UNSUPPORTED_OS:
        return _OsPart("other", None, False, Reason("os_unsupported", f"{os_family} is not supported for "
                       "verification calls: use macOS, Windows, ChromeOS or Ubuntu, or the Google Meet app on a phone."))
    return _OsPart("other", None, None, Reason("os_unverified", "We could not recognise your operating system; "
                                               "you can continue."))


def _windows(shape: _Shape, platform_version: str | None, catalog: Catalog) -> _OsPart:
    hint = _number(platform_version.strip()) if platform_version else None
    if hint is not None and hint[0] >= 1:
        return _versioned("windows", "11" if hint[0] >= 13 else "10", catalog)
    if hint is not None and len(hint) > 1 and hint[1] in OLD_WINDOWS:
        return _versioned("windows", OLD_WINDOWS[hint[1]], catalog)
    if shape.os_major == "10":  # frozen: Windows 10 or 11 (or, with a 0.x hint, something older)
        frozen_ok = hint is None and {"10", "11"} <= set(catalog.supported("windows"))
        reason = None if frozen_ok else Reason("os_unverified", "We could not confirm your Windows version; "
                                                                 "you can continue.")
        return _OsPart("windows", None, True if frozen_ok else None, reason)
    version = f"{shape.os_major}.{shape.os_minor}" if shape.os_major and shape.os_minor else shape.os_major
    return _versioned("windows", version, catalog) if version else _OsPart("windows", None, None, Reason(
        "os_unverified", "We could not confirm your Windows version; you can continue."))


def _macos(shape: _Shape, platform_version: str | None, catalog: Catalog) -> _OsPart:
    parts = _number(platform_version.strip()) if platform_version else None
    if parts:
        version = f"{parts[0]}.{parts[1]}" if parts[0] == 10 and len(parts) > 1 else str(parts[0])
        return _versioned("macos", version, catalog)
    major, minor = shape.os_major, shape.os_minor
    if major == "10" and minor and minor.isdigit() and int(minor) < 15:
        return _versioned("macos", f"10.{minor}", catalog)  # older than the frozen value: a real version
    oldest = _oldest_ok(catalog, "macos")
    hint = f" macOS {oldest[1]} or later is supported." if oldest else ""
    return _OsPart("macos", None, None, Reason("os_unverified", "Your browser does not tell us your macOS "
                                                                f"version, so we cannot confirm it.{hint} You can continue."))


def _versioned(product: str, version: str | None, catalog: Catalog) -> _OsPart:
    name = NAMES[product]
    oldest = _oldest_ok(catalog, product)
    number = _number(version)
    if number is None or oldest is None:
        return _OsPart(product, version, None, Reason("os_unverified", f"We could not confirm your {name} version; "
                                                                       "you can continue."))
    if number >= oldest[0]:
        return _OsPart(product, version, True)
    return _OsPart(product, version, False, Reason(
        "os_outdated", f"{name} {version} is not supported: update to {name} {oldest[1]} or later."))


@functools.lru_cache(maxsize=64)
def _supported_majors(catalog: Catalog, product: str) -> tuple[int, ...]:
    return tuple(sorted((int(m) for m in catalog.supported(product) if m.isdigit()), reverse=True))


def _judge(browser: str, major: int | None, shown: str, os_part: _OsPart, catalog: Catalog) -> Verdict:
    reasons: list[Reason] = []
    supported_majors = list(_supported_majors(catalog, browser))
    if browser in NAMES and supported_majors:
        name = NAMES[browser]
        if major is None:
            browser_ok = None
            reasons.append(Reason("browser_unverified", f"We could not read your {name} version; you can continue."))
        else:
            browser_ok = major >= supported_majors[-1]
            if not browser_ok:
                reasons.append(Reason("browser_outdated", f"{name} {major} is not supported: update to "
                                                          f"{name} {supported_majors[-1]} or later."))
        family = browser
    else:
        browser_ok, family, supported_majors = False, "other", []
        reasons.append(Reason("browser_unsupported", f"{'This browser' if shown == 'Other' else shown} cannot be "
                                                     f"used for verification calls: {USE_INSTEAD}."))
    # With the browser already ruled out, only an OS that is ruled out too is worth saying.
    if os_part.reason is not None and (browser_ok is not False or os_part.supported is False):
        reasons.append(os_part.reason)
    if browser_ok is False or os_part.supported is False:
        verdict = "unsupported"
    elif browser_ok and os_part.supported:
        verdict = "supported"
    else:
        verdict = "unverified"
    return Verdict(verdict, {"family": family, "major": major, "supported": browser_ok,
                             "supported_majors": supported_majors},
                   {"family": os_part.family, "version": os_part.version, "supported": os_part.supported},
                   False, tuple(reasons))


def _unsupported(browser: str, major: int | None, os_family: str, reasons: list[Reason]) -> Verdict:
    return Verdict("unsupported", {"family": browser, "major": major, "supported": False, "supported_majors": []},
                   {"family": os_family, "version": None, "supported": None}, False, tuple(reasons))
