"""Public release data for the release catalog: which majors shipped, and when.

Sources (base URLs are the live endpoints; tests and the snapshot build point them at a
local server with the ``VERIFY_RELEASE_SOURCE_*`` variables, see :class:`SourceURLs`):

* Chrome and ChromeOS — Google's VersionHistory API, stable channel, per platform
  (``/v1/chrome/platforms/{platform}/channels/stable/versions/all/releases``, paged with
  ``pageToken``). A major's date is the earliest ``serving.startTime`` of any of its releases
  on the platforms asked for; ChromeOS's majors are the Chrome majors it ships.
* Firefox — Mozilla's product-details (``firefox_history_major_releases.json`` for the date
  of each major, ``firefox_versions.json`` for the current one).
* macOS, Windows, Ubuntu, Debian — the endoflife.date API v1 (``/products/{product}/``).
* Edge and Safari — MDN's browser-compat-data browser files (``browsers/{edge,safari}.json``),
  which carry each version's first release date and whether it has shipped.

Every fetcher returns ``[(major, "YYYY-MM-DD"), …]``, unsorted; dates are passed through as the
source wrote them when they do not parse, so the refresh's sanity check refuses them by name.

Failure mode: **fails closed per product.** Any network error, timeout, HTTP error or
unexpected answer raises :class:`SourceError` naming the URL; the refresh then keeps that
product's last good data (:func:`verify_service.support.refresh.refresh_catalog`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import requests

log = logging.getLogger(__name__)

USER_AGENT = "verify-service-release-catalog/1"
MAX_PAGES = 50  # VersionHistory pages; far above the real count, stops a token loop
PAGE_SIZE = 1000

Pairs = list[tuple[str, str]]
Fetcher = Callable[[], Pairs]


class SourceError(RuntimeError):
    """A source could not be read, or did not answer in its documented format; the message names the URL."""


@dataclasses.dataclass(frozen=True)
class SourceURLs:
    versionhistory: str = "https://versionhistory.googleapis.com/v1"
    product_details: str = "https://product-details.mozilla.org/1.0"
    endoflife: str = "https://endoflife.date/api/v1"
    browser_compat: str = "https://raw.githubusercontent.com/mdn/browser-compat-data/main/browsers"

    ENV = {"versionhistory": "VERIFY_RELEASE_SOURCE_CHROME", "product_details": "VERIFY_RELEASE_SOURCE_FIREFOX",
           "endoflife": "VERIFY_RELEASE_SOURCE_ENDOFLIFE", "browser_compat": "VERIFY_RELEASE_SOURCE_BROWSER_COMPAT"}

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> SourceURLs:
        """The live endpoints, each replaced by its ``VERIFY_RELEASE_SOURCE_*`` variable when set."""
        values = {field: environ[name].rstrip("/") for field, name in cls.ENV.items() if environ.get(name)}
        return cls(**values)


class SourceClient:
    """GETs JSON with connect and read timeouts; one session (the refresh runs on one thread)."""

    def __init__(self, *, connect_timeout: float = 3.05, read_timeout: float = 20.0) -> None:
        self._timeout = (connect_timeout, read_timeout)
        self._session = requests.Session()
        self._session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})

    def get_json(self, url: str, params: Mapping[str, str | int] | None = None) -> Any:
        """The decoded JSON body of a 200 answer. Raises: SourceError."""
        try:
            response = self._session.get(url, params=params, timeout=self._timeout)
        except requests.RequestException as exc:
            log.warning("release source %s failed: %s", url, type(exc).__name__)
            raise SourceError(f"{url}: {type(exc).__name__}: {exc}") from exc
        with response:
            if response.status_code != 200:
                log.warning("release source %s answered %d", url, response.status_code)
                raise SourceError(f"{url}: HTTP {response.status_code}: {response.text[:200]}")
            try:
                return response.json()
            except ValueError as exc:
                raise SourceError(f"{url}: the answer is not JSON") from exc


def _day(value: Any) -> str:
    """An RFC 3339 time or a date as its UTC day; an unreadable value is returned as it came."""
    text = str(value)
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    if when.tzinfo is not None:
        when = when.astimezone(dt.timezone.utc)
    return when.date().isoformat()


def _earliest(pairs: Iterable[tuple[str, str]]) -> Pairs:
    """One entry per major: its earliest date (an unreadable date wins, so the refresh refuses it)."""
    firsts: dict[str, str] = {}
    for major, day in pairs:
        known = firsts.get(major)
        if known is None or not _is_date(day) or (_is_date(known) and day < known):
            firsts[major] = day
    return list(firsts.items())


def _is_date(value: str) -> bool:
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return len(value) == 10


def _leading_number(version: str) -> str | None:
    head = version.split(".", 1)[0].strip()
    return str(int(head)) if head.isdigit() else None


def _need(condition: bool, url: str, what: str) -> None:
    if not condition:
        raise SourceError(f"{url}: {what}")


# ---------------------------------------------------------------- Chrome VersionHistory

def _stable_releases(client: SourceClient, base: str, platform: str) -> Iterator[dict[str, Any]]:
    url = f"{base}/chrome/platforms/{platform}/channels/stable/versions/all/releases"
    params: dict[str, str | int] = {"pageSize": PAGE_SIZE}
    for _ in range(MAX_PAGES):
        body = client.get_json(url, params)
        _need(isinstance(body, dict) and isinstance(body.get("releases", []), list), url,
              "expected an object with a 'releases' list")
        yield from (item for item in body.get("releases", []) if isinstance(item, dict))
        token = body.get("nextPageToken")
        if not token:
            return
        params = {"pageSize": PAGE_SIZE, "pageToken": str(token)}
    raise SourceError(f"{url}: more than {MAX_PAGES} pages")


def chrome_majors(client: SourceClient, base: str, platforms: tuple[str, ...]) -> Pairs:
    """Each Chrome major with the day its first stable release started serving on any of ``platforms``."""
    seen: list[tuple[str, str]] = []
    for platform in platforms:
        for release in _stable_releases(client, base, platform):
            major = _leading_number(str(release.get("version", "")))
            start = (release.get("serving") or {}).get("startTime")
            if major is None or not start or release.get("fraction") == 0:
                continue  # malformed or never served: not a release
            seen.append((major, _day(start)))
    _need(bool(seen), f"{base}/chrome/platforms/{','.join(platforms)}", "no stable releases")
    return _earliest(seen)


def chromeos_majors(client: SourceClient, base: str) -> Pairs:
    """The Chrome majors ChromeOS shipped (its version is the Chrome major it runs)."""
    pairs = chrome_majors(client, base, ("chromeos",))
    # Guard against the platform ever reporting ChromeOS platform versions (16xxx.…) instead.
    _need(all(int(major) < 1000 for major, _ in pairs), f"{base}/chrome/platforms/chromeos",
          "versions are not Chrome versions")
    return pairs


# ---------------------------------------------------------------- Firefox product-details

def firefox_majors(client: SourceClient, base: str) -> Pairs:
    """Firefox majors from the history of major releases, checked against the current version."""
    versions_url, history_url = f"{base}/firefox_versions.json", f"{base}/firefox_history_major_releases.json"
    versions, history = client.get_json(versions_url), client.get_json(history_url)
    _need(isinstance(versions, dict) and bool(versions.get("LATEST_FIREFOX_VERSION")), versions_url,
          "no LATEST_FIREFOX_VERSION")
    _need(isinstance(history, dict) and bool(history), history_url, "expected an object of version: date")
    current = _leading_number(str(versions["LATEST_FIREFOX_VERSION"]))
    _need(current is not None, versions_url, "LATEST_FIREFOX_VERSION is not a version")
    # Keys are "145.0", but also "33.1" or "125.0.1" (a major that shipped as a dot release).
    pairs = [(major, str(day)) for version, day in history.items()
             if (major := _leading_number(version)) is not None and int(major) <= int(str(current))]
    firsts = _earliest(pairs)
    if current not in dict(firsts):
        # The history lags the release by hours at most; the release day stands in until it catches up.
        day = versions.get("LAST_RELEASE_DATE")
        _need(bool(day), versions_url, f"Firefox {current} is current but has no release date")
        firsts.append((str(current), str(day)))
    return firsts


# ---------------------------------------------------------------- endoflife.date

def endoflife_cycles(client: SourceClient, base: str, product: str) -> Pairs:
    """``(cycle name, releaseDate)`` of every release cycle of an endoflife.date product."""
    url = f"{base}/products/{product}/"
    body = client.get_json(url)
    releases = (body.get("result") or {}).get("releases") if isinstance(body, dict) else None
    _need(isinstance(releases, list) and bool(releases), url, "expected result.releases")
    pairs = [(str(r["name"]), str(r["releaseDate"])) for r in releases
             if isinstance(r, dict) and r.get("name") and r.get("releaseDate")]
    _need(bool(pairs), url, "no release has a name and a releaseDate")
    return pairs


def windows_majors(client: SourceClient, base: str) -> Pairs:
    """Windows 10 and 11: cycles like ``11-24h2-w`` collapse to their major, dated by the earliest."""
    cycles = endoflife_cycles(client, base, "windows")
    pairs = [(name.split("-", 1)[0], day) for name, day in cycles if name.split("-", 1)[0] in ("10", "11")]
    _need(bool(pairs), f"{base}/products/windows/", "no Windows 10 or 11 cycle")
    return _earliest(pairs)


# ---------------------------------------------------------------- MDN browser-compat-data

def browser_compat_majors(client: SourceClient, base: str, browser: str) -> Pairs:
    """Majors of a browser that have shipped (status current or retired), dated by their first version."""
    url = f"{base}/{browser}.json"
    body = client.get_json(url)
    try:
        releases = body["browsers"][browser]["releases"]
    except (KeyError, TypeError) as exc:
        raise SourceError(f"{url}: expected browsers.{browser}.releases") from exc
    # The releases are an object keyed by version, or (newer files) a list with a "version" field.
    items = releases.items() if isinstance(releases, dict) else (
        (r.get("version"), r) for r in releases if isinstance(r, dict))
    pairs = [(major, str(info["release_date"])) for version, info in items
             if isinstance(info, dict) and info.get("status") in ("current", "retired") and info.get("release_date")
             and (major := _leading_number(str(version))) is not None]
    _need(bool(pairs), url, "no shipped release")
    return _earliest(pairs)


# ---------------------------------------------------------------- the set the refresh uses

def default_fetchers(client: SourceClient, urls: SourceURLs) -> dict[str, Fetcher]:
    """One fetcher per catalog product (the keys of ``catalog.PRODUCTS``)."""
    def cycles(product: str) -> Fetcher:
        return lambda: endoflife_cycles(client, urls.endoflife, product)

    return {
        "chrome": lambda: chrome_majors(client, urls.versionhistory, ("win", "mac", "linux")),
        "edge": lambda: browser_compat_majors(client, urls.browser_compat, "edge"),
        "firefox": lambda: firefox_majors(client, urls.product_details),
        "safari": lambda: browser_compat_majors(client, urls.browser_compat, "safari"),
        "macos": cycles("macos"),
        "windows": lambda: windows_majors(client, urls.endoflife),
        "chromeos": lambda: chromeos_majors(client, urls.versionhistory),
        "ubuntu": cycles("ubuntu"),
        "debian": cycles("debian"),
    }
