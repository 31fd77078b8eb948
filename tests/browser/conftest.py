"""Browser tests: Debian's Chromium driven by Playwright against the app on a real loopback HTTP server.

Chromium is the system package (``/usr/bin/chromium``; ``make test`` and
``.ci/run`` install it when missing) — never a downloaded browser. Fake media
devices stand in for the camera and microphone; permissions are granted per
test, so a test that grants nothing sees the "blocked" path. A failing test
leaves a screenshot in ``tests/browser/artifacts/``. With
``VERIFY_SCREENSHOTS=1`` the journey tests also refresh the README's
screenshots in ``tests/browser/screenshots/``.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright
from werkzeug.serving import make_server

from tests.conftest import fresh_sqlite, make_settings
from verify_service import create_app
from verify_service.accounts.domain import RequestReason
from verify_service.accounts.services import Profile, request_verification, upsert_account
from verify_service.db import unit_of_work
from verify_service.freelancer.services import issue_launch_link
from verify_service.registry import KEY, Registry

HERE = Path(__file__).resolve().parent
CHROMIUM = os.environ.get("VERIFY_CHROMIUM", "/usr/bin/chromium")
AXE = HERE / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = HERE / "artifacts"
SCREENSHOTS = HERE / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root
    "--use-fake-device-for-media-stream",  # a test-pattern camera and a beeping microphone
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
    "--disable-quic", "--disable-gpu",
]


class Device:
    """A browser to pretend to be: its User-Agent string and the client hints that go with it (CDP override)."""

    def __init__(self, user_agent: str, platform: str, platform_version: str, mobile: bool, major: int,
                 brands: tuple[str, ...] | None = ("Google Chrome", "Chromium")) -> None:
        """``brands=None``: a browser without client hints (Firefox, Safari)."""
        self.user_agent = user_agent
        self.mobile = mobile
        self.metadata: dict[str, Any] | None = None
        if brands is not None:
            listed = [{"brand": b, "version": str(major)} for b in brands] + [{"brand": "Not_A Brand", "version": "24"}]
            self.metadata = {"brands": listed, "fullVersionList": [{**b, "version": f"{b['version']}.0.7444.59"}
                                                                   for b in listed],
                             "platform": platform, "platformVersion": platform_version, "architecture": "x86",
                             "model": "Pixel 8" if mobile else "", "mobile": mobile}


def chrome_on_windows(major: int) -> Device:
    return Device("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                  f"Chrome/{major}.0.0.0 Safari/537.36", "Windows", "19.0.0", False, major)


def chrome_on_android(major: int) -> Device:
    return Device("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
                  f"Chrome/{major}.0.0.0 Mobile Safari/537.36", "Android", "15.0.0", True, major)


def chrome_on_macos(major: int) -> Device:
    """macOS without its version in the hints: the verdict is ``unverified``."""
    return Device("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
                  f"Chrome/{major}.0.0.0 Safari/537.36", "macOS", "", False, major)


def chromium_on_linux(major: int) -> Device:
    """Debian's Chromium as it is: Chrome's user agent, but only the "Chromium" brand."""
    return Device("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                  f"Chrome/{major}.0.0.0 Safari/537.36", "Linux", "6.1.0", False, major, brands=("Chromium",))


def firefox_on_windows(major: int) -> Device:
    return Device(f"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:{major}.0) Gecko/20100101 Firefox/{major}.0",
                  "Windows", "", False, major, brands=None)


def safari_on_iphone(major: int) -> Device:
    return Device(f"Mozilla/5.0 (iPhone; CPU iPhone OS {major}_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
                  f"Gecko) Version/{major}.4 Mobile/15E148 Safari/604.1", "iOS", "", True, major, brands=None)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every browser test is an end-to-end run of a real Chromium: ``slow`` (``make test-fast`` leaves them out)."""
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.slow)


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package (make test does)")
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `npm ci --prefix tests/browser` (make test does)")
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


class LiveServer:
    """The app (SQLite, sandbox Meet, real clock) served over HTTP on a loopback port."""

    def __init__(self, tmp_path: Path, schema: Path, **settings: Any) -> None:
        url = fresh_sqlite(schema, tmp_path / "browser.sqlite3")
        self._server = make_server("127.0.0.1", 0, Flask(__name__), threaded=True)
        self.base_url = f"http://127.0.0.1:{self._server.server_port}"
        self.app = create_app(make_settings(url, tmp_path, base_url=self.base_url, meet_backend="sandbox",
                                            client_check_rate_limit="1000/second", **settings))
        self._server.app = self.app  # the port was needed first: the app builds absolute URLs with it
        self.registry: Registry = self.app.extensions[KEY]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def now(self) -> dt.datetime:
        return self.registry.now()

    def freelancer(self, account_id: str = "acc-1", *, name: str = "Ana Lima", timezone: str | None = None,
                   place_hold: bool = True, return_url: str | None = None) -> str:
        """An account asked to verify (with the pending hold); returns a fresh launch URL for it."""
        now = self.now()
        with unit_of_work(self.registry.sessions) as session:
            upsert_account(session, account_id, Profile(display_name=name, email=f"{account_id}@example.com",
                                                        country="PT", timezone=timezone), actor="test", now=now)
            request_verification(session, account_id, reason=RequestReason.NEW_ACCOUNT,
                                 deadline=now + dt.timedelta(days=7), place_hold=place_hold, actor="test", now=now)
        return self.launch_url(account_id, return_url=return_url)

    def launch_url(self, account_id: str, *, return_url: str | None = None) -> str:
        with unit_of_work(self.registry.sessions) as session:
            issued = issue_launch_link(session, account_id, actor="test", now=self.now(), return_url=return_url)
        return f"{self.base_url}/verify/launch/{issued.token}"

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=10)
        self.registry.engine.dispose()


@pytest.fixture
def server(tmp_path: Path, sqlite_template: Path) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path, sqlite_template)
    yield live
    live.stop()


@pytest.fixture
def new_page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Callable[..., Page]]:
    """Open a page in a fresh context: ``new_page(device, permissions=[...], viewport=...)``."""
    contexts: list[BrowserContext] = []
    pages: list[Page] = []

    def open_page(device: Device, *, permissions: list[str] | None = None,
                  viewport: dict[str, int] | None = None, timezone_id: str = "Europe/Lisbon") -> Page:
        context = browser.new_context(user_agent=device.user_agent, is_mobile=device.mobile,
                                      has_touch=device.mobile, timezone_id=timezone_id, locale="en-GB",
                                      viewport=viewport or ({"width": 390, "height": 844} if device.mobile
                                                            else {"width": 1280, "height": 900}))
        if permissions:
            context.grant_permissions(permissions)
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        # Headless Chromium calls itself "Chromium" in its client hints; speak as the device instead.
        override: dict[str, Any] = {"userAgent": device.user_agent}
        if device.metadata is not None:  # without it Chromium sends no client hints, as Firefox and Safari do
            override["userAgentMetadata"] = device.metadata
        context.new_cdp_session(page).send("Emulation.setUserAgentOverride", override)
        page.csp_errors = []  # type: ignore[attr-defined]
        page.on("console", lambda message: _note_csp(page, message.text))
        pages.append(page)
        return page

    yield open_page
    failed = getattr(request.node, "report_call", None)
    if failed is not None and failed.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        for number, page in enumerate(pages):
            if not page.is_closed():
                page.screenshot(path=str(ARTIFACTS / f"{request.node.name}-{number}.png"), full_page=True)
    for context in contexts:
        context.close()


def _note_csp(page: Page, text: str) -> None:
    if "Content Security Policy" in text:
        page.csp_errors.append(text)  # type: ignore[attr-defined]


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """Serious or critical WCAG 2.x A/AA violations axe-core finds on the page as it is now."""
    page.evaluate(AXE.read_text(encoding="utf-8"))  # evaluated by the driver, so the page's CSP does not apply
    violations = page.evaluate("""async () => {
        const result = await axe.run(document, {runOnly: {type: "tag",
            values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]}});
        return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                            targets: v.nodes.map(n => n.target.join(" "))}));
    }""")
    return [v for v in violations if v["impact"] in ("serious", "critical")]


def assert_accessible(page: Page) -> None:
    found = axe_violations(page)
    assert not found, "axe-core: " + "; ".join(f"{v['id']} ({v['impact']}): {v['help']} at {v['targets']}"
                                               for v in found)
    assert not page.csp_errors, page.csp_errors  # type: ignore[attr-defined]


def screenshot(page: Page, name: str) -> None:
    """Refresh a README screenshot (only with VERIFY_SCREENSHOTS=1, so test runs leave the tree alone)."""
    if os.environ.get("VERIFY_SCREENSHOTS"):
        SCREENSHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
