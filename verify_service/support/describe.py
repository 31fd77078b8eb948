"""The browser and system as the freelancer knows them: "Chromium 156 on Windows", "Safari 17 on iOS 17".

The verdict's ``family`` codes are the API's contract (docs/architecture.md,
'Browser and system support') and say ``other`` for every browser outside the
policy; the pages name the real product instead. Nothing is said where nothing
is known: no version when the user agent freezes it (Windows 10 and 11 both
send ``Windows NT 10.0``; Chrome on Android sends ``Android 10``), no browser
name for an unrecognised one.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from verify_service.support.hints import ClientHints

if TYPE_CHECKING:  # classify.py builds its verdicts with this module's names
    from verify_service.support.classify import Verdict

# ua-parser's family names, as people call the product.
UA_DISPLAY = {"Mobile Safari": "Safari", "Mobile Safari UI/WKWebView": "Safari", "Chrome Mobile": "Chrome",
              "Chrome Mobile iOS": "Chrome", "Firefox Mobile": "Firefox", "Firefox iOS": "Firefox",
              "Edge Mobile": "Edge", "Chrome Mobile WebView": "Android WebView", "Opera Mobile": "Opera",
              "IE": "Internet Explorer", "IE Mobile": "Internet Explorer", "Other": None}
# The verdict's families by name (the classifier's reasons use them too).
BROWSER_NAMES = {"chrome": "Chrome", "edge": "Edge", "firefox": "Firefox", "safari": "Safari", "ie": "Internet Explorer"}
SYSTEM_NAMES = {"windows": "Windows", "macos": "macOS", "chromeos": "ChromeOS", "ubuntu": "Ubuntu",
                "debian": "Debian", "linux": "Linux", "android": "Android", "ios": "iOS"}
NAMES = {**BROWSER_NAMES, **SYSTEM_NAMES}
# What the reviewer reads after the browser line (also the label catalogue's "verdict" kind, verify_service/labels.py).
VERDICT_LABELS = {"supported": "supported", "unverified": "not confirmed, allowed",
                  "unsupported": "not supported", "use_mobile_app": "phone or tablet, Meet app",
                  "plugin_required": "needs Google's video plugin"}
MEET_APP_LINKS = (
    {"label": "Google Meet on Google Play", "url": "https://play.google.com/store/apps/details?id=com.google.android.apps.tachyon"},
    {"label": "Google Meet on the App Store", "url": "https://apps.apple.com/app/google-meet/id1096918571"},
)
STORE_OF = {"android": MEET_APP_LINKS[:1], "ios": MEET_APP_LINKS[1:]}
_FROZEN_ANDROID = "10"  # Chrome's reduced user agent says "Android 10; K" whatever the version


@dataclasses.dataclass(frozen=True)
class ClientName:
    """What to call the browser and the system on a page; None where it is not known."""

    browser: str | None = None
    browser_major: int | None = None
    system: str | None = None
    system_version: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def store_links(os_family: str | None) -> tuple[dict[str, str], ...]:
    """Where to get the Meet app: the phone's own store, or both when the system is not a known phone's."""
    return STORE_OF.get(os_family or "", MEET_APP_LINKS)


def browser_display(shown: str | None) -> str | None:
    """ua-parser's or the classifier's name for a browser, as people call it ("Chrome Mobile" → "Chrome")."""
    if not shown:
        return None
    return UA_DISPLAY.get(shown, shown)


def system_display(family: str, parsed_family: str) -> str | None:
    """The verdict's OS family named; for ``other`` (and plain Linux) the parser's own name when it has one."""
    if family in ("other", "linux") and parsed_family not in ("Other", "Linux", ""):
        return parsed_family
    return SYSTEM_NAMES.get(family)


def phone_system_version(family: str, parsed_major: str | None, hints: ClientHints | None) -> str | None:
    """A phone's OS version: the platform-version hint, else the user agent's unless it is the frozen one."""
    hinted = re.match(r"\s*(\d{1,3})", hints.platform_version or "") if hints else None
    if hinted and family == "android":
        return hinted.group(1)
    if family == "android" and parsed_major == _FROZEN_ANDROID:
        return None
    return parsed_major if parsed_major and parsed_major.isdigit() else None


def summary(client: ClientName) -> str | None:
    """"Chromium 156 on Windows", "Chrome 142", "macOS 15"; None when neither is known."""
    browser = " ".join(str(p) for p in (client.browser, client.browser_major) if p) if client.browser else ""
    system = " ".join(p for p in (client.system, client.system_version) if p) if client.system else ""
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or None


def describe_client(verdict: Verdict) -> str | None:
    """The one line that names the freelancer's browser and system (a :class:`~.classify.Verdict`)."""
    return summary(verdict.client)


def describe_stored(stored: Mapping[str, Any] | None) -> str:
    """A call's stored system check for staff pages: "Chromium 156 on Windows — not supported"."""
    if not stored:
        return "Not recorded"
    named = stored.get("summary")
    if named is None and "summary" not in stored:  # recorded before the summary was kept: name the families
        browser = BROWSER_NAMES.get(str(stored.get("browser")))
        named = summary(ClientName(
            browser=browser, browser_major=stored.get("browser_major") if browser else None,
            system=SYSTEM_NAMES.get(str(stored.get("os"))), system_version=stored.get("os_version")))
    label = VERDICT_LABELS.get(str(stored.get("verdict")))
    device = named or "Unknown browser"
    return f"{device} — {label}" if label else device
