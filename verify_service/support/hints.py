"""User-Agent Client Hints: from request headers, and from the page's getHighEntropyValues() post.

Browsers that reduce their User-Agent string (Chrome, Edge) freeze the OS
version in it; the real one only comes through these hints. Pages ask for
the high-entropy ones with ``Accept-CH``/``Critical-CH`` (see
:data:`REQUEST_HEADERS`); the page's script posts the same values from
``navigator.userAgentData.getHighEntropyValues()``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

# What the verification pages ask for (Accept-CH, Critical-CH; Vary on the same).
HIGH_ENTROPY = ("Sec-CH-UA-Platform-Version", "Sec-CH-UA-Full-Version-List")
REQUEST_HEADERS = {
    "Accept-CH": ", ".join(HIGH_ENTROPY),
    "Critical-CH": ", ".join(HIGH_ENTROPY),
    "Vary": ", ".join(("Sec-CH-UA", "Sec-CH-UA-Mobile", "Sec-CH-UA-Platform") + HIGH_ENTROPY),
}

# A structured-header list item: "Brand";v="1.2.3" (RFC 8941 strings, with escapes).
_ITEM = re.compile(r'"((?:[^"\\]|\\.){0,100})"\s*;\s*v\s*=\s*"((?:[^"\\]|\\.){0,40})"')
# GREASE brands are shuffled spellings of "Not A Brand" ("Not_A Brand", "(Not(A:Brand", …).
_GREASE = re.compile(r"not.?a.?brand", re.IGNORECASE)
MAX_BRANDS = 10


@dataclasses.dataclass(frozen=True)
class Brand:
    brand: str
    version: str


@dataclasses.dataclass(frozen=True)
class ClientHints:
    brands: tuple[Brand, ...] = ()
    full_version_list: tuple[Brand, ...] = ()
    mobile: bool | None = None
    platform: str | None = None
    platform_version: str | None = None
    # The page's iPadOS test: a "Macintosh" browser with a touch screen is an iPad in desktop mode.
    touch_mac: bool = False

    def versions(self) -> dict[str, str]:
        """Brand → most precise version known, GREASE entries left out."""
        found: dict[str, str] = {}
        for item in self.brands + self.full_version_list:
            if _GREASE.search(item.brand):
                continue
            if len(item.version) >= len(found.get(item.brand, "")):
                found[item.brand] = item.version
        return found


_ESCAPE = re.compile(r'\\(["\\])')


def _unescape(value: str) -> str:
    """Undo RFC 8941 string escapes (\\" and \\\\) in one pass."""
    return _ESCAPE.sub(r"\1", value)


def _unquote(value: str) -> str:
    """A single structured-field string: drop exactly one pair of outer quotes, then unescape."""
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    return _unescape(value)


def _brand_list(value: str | None) -> tuple[Brand, ...]:
    if not value:
        return ()
    return tuple(Brand(_unescape(b), _unescape(v)) for b, v in _ITEM.findall(value[:2000]))[:MAX_BRANDS]


def _sf_boolean(value: str | None) -> bool | None:
    return {"?1": True, "?0": False}.get((value or "").strip())


def _sf_string(value: str | None, limit: int = 50) -> str | None:
    if value is None:
        return None
    text = _unquote(value)[:limit]
    return text or None


def from_headers(headers: Mapping[str, str]) -> ClientHints | None:
    """The ``Sec-CH-UA*`` request headers, or None when the browser sent none."""
    get = headers.get
    if not any(get(name) for name in ("Sec-CH-UA", "Sec-CH-UA-Mobile", "Sec-CH-UA-Platform")):
        return None
    return ClientHints(
        brands=_brand_list(get("Sec-CH-UA")),
        full_version_list=_brand_list(get("Sec-CH-UA-Full-Version-List")),
        mobile=_sf_boolean(get("Sec-CH-UA-Mobile")),
        platform=_sf_string(get("Sec-CH-UA-Platform")),
        platform_version=_sf_string(get("Sec-CH-UA-Platform-Version")),
    )


def _brands_from_json(items: Any) -> tuple[Brand, ...]:
    if not isinstance(items, list):
        return ()
    return tuple(Brand(str(i.get("brand", ""))[:100], str(i.get("version", ""))[:40])
                 for i in items[:MAX_BRANDS] if isinstance(i, dict))


def from_json(data: Mapping[str, Any] | None) -> ClientHints | None:
    """``getHighEntropyValues()`` output (``brands``, ``fullVersionList``, ``mobile``, ``platform``,
    ``platformVersion``) plus the page's ``touchMac`` flag. Unknown keys are ignored."""
    if not data:
        return None
    mobile = data.get("mobile")
    platform, version = data.get("platform"), data.get("platformVersion")
    return ClientHints(
        brands=_brands_from_json(data.get("brands")),
        full_version_list=_brands_from_json(data.get("fullVersionList")),
        mobile=mobile if isinstance(mobile, bool) else None,
        platform=str(platform)[:50] if platform else None,
        platform_version=str(version)[:50] if version else None,
        touch_mac=data.get("touchMac") is True,
    )


def merge(first: ClientHints | None, second: ClientHints | None) -> ClientHints | None:
    """Combine header hints with posted ones; values from ``second`` win where both have one."""
    if first is None or second is None:
        return second or first
    return ClientHints(
        brands=second.brands or first.brands,
        full_version_list=second.full_version_list or first.full_version_list,
        mobile=second.mobile if second.mobile is not None else first.mobile,
        platform=second.platform or first.platform,
        platform_version=second.platform_version or first.platform_version,
        touch_mac=second.touch_mac or first.touch_mac,
    )
