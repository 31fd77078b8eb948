"""The release-source fetchers over real HTTP, against saved responses served on loopback.

The files in tests/fixtures/release_sources/ are in the format of each live source (see
the README there); FixtureServer answers on the same paths, pages and tokens.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from integrations.release_sources import (
    SourceClient,
    SourceError,
    SourceURLs,
    browser_compat_majors,
    chrome_majors,
    chromeos_majors,
    default_fetchers,
    endoflife_cycles,
    firefox_majors,
    windows_majors,
)
from jobs.catalog import refresh_release_catalog
from tests.conftest import make_settings
from tests.fixtures.release_sources.server import HERE, FixtureServer
from verify_service import create_app
from verify_service.cli import main
from verify_service.registry import KEY
from verify_service.support.catalog import PRODUCTS, load, write_atomically
from verify_service.support.refresh import refresh_catalog


EARLIER = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
NOW = dt.datetime(2026, 11, 22, 9, tzinfo=dt.timezone.utc)


@pytest.fixture
def server() -> Iterator[FixtureServer]:
    running = FixtureServer()
    yield running
    running.stop()


@pytest.fixture
def urls(server: FixtureServer) -> SourceURLs:
    return SourceURLs.from_environ(server.environ())


@pytest.fixture
def source_client() -> SourceClient:
    return SourceClient(connect_timeout=2, read_timeout=2)


def test_the_defaults_are_the_live_endpoints() -> None:
    assert SourceURLs.from_environ({}) == SourceURLs(
        versionhistory="https://versionhistory.googleapis.com/v1",
        product_details="https://product-details.mozilla.org/1.0",
        endoflife="https://endoflife.date/api/v1",
        browser_compat="https://raw.githubusercontent.com/mdn/browser-compat-data/main/browsers")


# ---------------------------------------------------------------- each source

def test_chrome_majors_follow_every_page_and_take_the_first_stable_day(server, urls, source_client) -> None:
    pairs = dict(chrome_majors(source_client, urls.versionhistory, ("win",)))
    assert pairs == {"142": "2026-10-27", "141": "2026-09-29", "140": "2026-09-01", "139": "2026-08-04",
                     "138": "2026-06-23", "137": "2026-05-26", "136": "2026-04-28", "135": "2026-03-31"}
    win = [r for r in server.requests if "/platforms/win/" in r]
    assert len(win) == 2 and "pageSize=1000" in win[0] and "pageToken=" in win[1]  # 135-138 are on page 2


def test_chrome_majors_merge_the_desktop_platforms(server, urls, source_client) -> None:
    assert dict(chrome_majors(source_client, urls.versionhistory, ("mac", "linux")))["142"] == "2026-10-27"
    assert sorted(r.split("/")[5] for r in server.requests) == ["linux", "mac"]


def test_a_major_dates_from_its_earliest_release_on_any_platform(tmp_path, source_client) -> None:
    root = copy_fixtures(tmp_path)
    linux = root / "versionhistory/chrome/linux/stable.1.json"
    page = json.loads(linux.read_text())
    page["releases"][-1]["serving"]["startTime"] = "2026-08-02T23:59:59.5Z"  # an early 139 on Linux only
    page["releases"].append({"version": "143.0.7499.4", "fraction": 0,
                             "serving": {"startTime": "2026-11-20T10:00:00Z"}})
    linux.write_text(json.dumps(page))
    running = FixtureServer(root=root)
    try:
        pairs = dict(chrome_majors(source_client, f"{running.url}/versionhistory/v1", ("win", "mac", "linux")))
    finally:
        running.stop()
    assert pairs["139"] == "2026-08-02" and pairs["140"] == "2026-09-01"
    assert "143" not in pairs  # a release served to nobody (fraction 0) is not a release


def test_chromeos_majors_are_chrome_majors(urls, source_client) -> None:
    assert dict(chromeos_majors(source_client, urls.versionhistory)) == {
        "142": "2026-11-10", "141": "2026-10-13", "140": "2026-09-15", "139": "2026-08-18"}


def test_firefox_majors_come_from_the_major_release_history(urls, source_client) -> None:
    pairs = dict(firefox_majors(source_client, urls.product_details))
    assert pairs["145"] == "2026-11-10" and pairs["144"] == "2026-10-13"
    assert pairs["125"] == "2025-04-15"  # listed as "125.0.1": the major shipped as a dot release
    assert pairs["33"] == "2015-10-13"  # "33.0" and "33.1": the first counts
    assert max(pairs, key=int) == "145"


def test_a_current_firefox_missing_from_the_history_dates_from_the_last_release(tmp_path, source_client) -> None:
    root = copy_fixtures(tmp_path)
    history = root / "product-details/1.0/firefox_history_major_releases.json"
    history.write_text(json.dumps({k: v for k, v in json.loads(history.read_text()).items() if k != "145.0"}))
    running = FixtureServer(root=root)
    try:
        pairs = dict(firefox_majors(source_client, f"{running.url}/product-details/1.0"))
    finally:
        running.stop()
    assert pairs["145"] == "2026-11-10"  # LAST_RELEASE_DATE of firefox_versions.json


def test_endoflife_cycles_are_read_from_the_v1_api(urls, source_client) -> None:
    assert endoflife_cycles(source_client, urls.endoflife, "ubuntu")[:3] == [
        ("25.10", "2025-10-09"), ("25.04", "2025-04-17"), ("24.10", "2024-10-10")]
    assert dict(endoflife_cycles(source_client, urls.endoflife, "macos"))["26"] == "2025-09-15"
    assert dict(endoflife_cycles(source_client, urls.endoflife, "debian"))["13"] == "2025-08-09"


def test_windows_cycles_collapse_to_10_and_11(urls, source_client) -> None:
    assert sorted(windows_majors(source_client, urls.endoflife)) == [("10", "2015-07-29"), ("11", "2021-10-04")]


def test_edge_and_safari_majors_come_from_browser_compat_data(urls, source_client) -> None:
    edge = dict(browser_compat_majors(source_client, urls.browser_compat, "edge"))  # releases as a list
    assert max(edge, key=int) == "142" and edge["142"] == "2026-10-30"
    assert "143" not in edge  # beta, nightly and planned have not shipped
    safari = dict(browser_compat_majors(source_client, urls.browser_compat, "safari"))  # releases as an object
    assert safari["26"] == "2025-09-15" and safari["18"] == "2024-09-16"  # "18", not "18.6"
    assert max(safari, key=int) == "26"  # neither the 26.2 beta nor the preview


# ---------------------------------------------------------------- failures are clear

def test_a_source_that_does_not_answer_in_time_is_a_clear_error(server, urls) -> None:
    server.fail("/endoflife/", status=200, body=b"{}", delay=1.5)
    slow = SourceClient(connect_timeout=1, read_timeout=0.3)
    with pytest.raises(SourceError, match=r"/endoflife/api/v1/products/macos/: ReadTimeout"):
        endoflife_cycles(slow, urls.endoflife, "macos")


@pytest.mark.parametrize(("status", "body", "message"), [
    (500, b'{"error": "backend"}', "HTTP 500"),
    (200, b"<html>maintenance</html>", "the answer is not JSON"),
    (200, b'{"releases": "none"}', "expected an object with a 'releases' list"),
])
def test_an_error_answer_is_a_clear_error(server, urls, source_client, status, body, message) -> None:
    server.fail("/versionhistory/", status=status, body=body)
    with pytest.raises(SourceError, match=f"chrome/platforms/win/channels/stable/versions/all/releases.*{message}"):
        chrome_majors(source_client, urls.versionhistory, ("win",))


def test_a_refused_connection_is_a_clear_error(source_client) -> None:
    with pytest.raises(SourceError, match=r"127\.0\.0\.1:9/firefox_versions.json: ConnectionError"):
        firefox_majors(source_client, "http://127.0.0.1:9")


def test_an_unexpected_shape_is_a_clear_error(server, urls, source_client) -> None:
    server.fail("/browser-compat-data/", status=200, body=b'{"browsers": {}}')
    with pytest.raises(SourceError, match="edge.json: expected browsers.edge.releases"):
        browser_compat_majors(source_client, urls.browser_compat, "edge")
    server.fail("/endoflife/", status=200, body=b'{"result": {"releases": []}}')
    with pytest.raises(SourceError, match="windows/: expected result.releases"):
        windows_majors(source_client, urls.endoflife)


# ---------------------------------------------------------------- the whole refresh

def test_a_full_refresh_from_the_saved_responses(urls, source_client) -> None:
    catalog = refresh_catalog(None, default_fetchers(source_client, urls), now=NOW)
    assert {name: catalog.supported(name) for name in PRODUCTS} == {
        "chrome": ("142", "141", "140"), "edge": ("142", "141", "140"), "firefox": ("145", "144", "143"),
        "safari": ("26", "18", "17"), "macos": ("26", "15", "14"), "windows": ("11", "10"),
        "chromeos": ("142", "141", "140"), "ubuntu": ("25.10", "25.04", "24.10"), "debian": ("13", "12", "11")}


def test_one_source_down_keeps_those_products_and_refreshes_the_rest(server, urls, source_client) -> None:
    earlier = refresh_catalog(None, default_fetchers(source_client, urls), now=EARLIER)
    server.fail("/endoflife/", status=503)
    catalog = refresh_catalog(earlier, default_fetchers(source_client, urls), now=NOW)
    for name in ("macos", "windows", "ubuntu", "debian"):
        assert catalog.products[name] == earlier.products[name]
        assert catalog.products[name].fetched_at == EARLIER
    assert catalog.products["chrome"].fetched_at == NOW


# ---------------------------------------------------------------- the command and the job

def seeded(server: FixtureServer, path: Path) -> Path:
    """A catalog file from the saved responses, as an earlier refresh would have left it."""
    fetchers = default_fetchers(SourceClient(), SourceURLs.from_environ(server.environ()))
    write_atomically(refresh_catalog(None, fetchers, now=EARLIER), path)
    server.requests.clear()
    return path


def test_catalog_refresh_command_writes_the_output(server, tmp_path) -> None:
    output = seeded(server, tmp_path / "out" / "catalog.json")
    result = CliRunner().invoke(main, ["catalog", "refresh", "--output", str(output)], env=server.environ())
    assert result.exit_code == 0, result.output
    assert "chrome    supported 142, 141, 140" in result.output
    assert load(output).newest("ubuntu") == "25.10" and load(output).generated_at > EARLIER


def test_catalog_refresh_command_refuses_and_keeps_the_file(server, tmp_path) -> None:
    output = seeded(server, tmp_path / "catalog.json")
    write_atomically(refresh_catalog(load(output), {"chrome": lambda: [("150", "2027-04-01")]}, now=NOW), output)
    before = output.read_bytes()
    result = CliRunner().invoke(main, ["catalog", "refresh", "--output", str(output)], env=server.environ())
    assert result.exit_code == 1
    assert "chrome: the newest major would go down from 150 to 142" in result.output
    assert output.read_bytes() == before


@pytest.fixture
def sourced_app(server, tmp_path, monkeypatch):
    for name, value in server.environ().items():
        monkeypatch.setenv(name, value)
    app = create_app(make_settings(f"sqlite:///{tmp_path / 'jobs.sqlite3'}", tmp_path))
    yield app
    app.extensions[KEY].engine.dispose()


def test_the_job_refreshes_the_instance_catalog_and_the_store_follows(sourced_app, server, tmp_path) -> None:
    written = seeded(server, tmp_path / "instance" / "release_catalog.json")
    registry = sourced_app.extensions[KEY]
    store = registry.catalog_store()
    assert store.active_path() == written and store.current().generated_at == EARLIER
    catalog = refresh_release_catalog(sourced_app)
    assert catalog is not None and catalog.generated_at > EARLIER
    assert load(written).generated_at == catalog.generated_at
    store._checked_at = float("-inf")  # skip the few seconds' wait
    assert store.current().generated_at == catalog.generated_at


def test_the_job_leaves_a_pinned_catalog_alone(server, tmp_path, monkeypatch) -> None:
    pinned = tmp_path / "pinned.json"
    shutil.copy(HERE.parents[2] / "verify_service/support/data/release_catalog.json", pinned)
    before = pinned.read_bytes()
    app = create_app(make_settings(f"sqlite:///{tmp_path / 'p.sqlite3'}", tmp_path, release_catalog=str(pinned)))
    try:
        assert refresh_release_catalog(app) is None
    finally:
        app.extensions[KEY].engine.dispose()
    assert pinned.read_bytes() == before and server.requests == []


def test_the_job_logs_a_refused_refresh_and_changes_nothing(sourced_app, server, tmp_path, caplog) -> None:
    server.fail("/", status=503)
    assert refresh_release_catalog(sourced_app) is None
    assert "refused" in caplog.text and "no release source answered" in caplog.text
    assert not (tmp_path / "instance" / "release_catalog.json").exists()


# ---------------------------------------------------------------- /readyz

def test_readyz_alerts_when_the_catalog_is_stale_or_broken(app, client, clock, tmp_path) -> None:
    codes = lambda: [a["code"] for a in client.get("/readyz").get_json()["alerts"]]  # noqa: E731
    clock.current = load().data_as_of() + dt.timedelta(days=59)  # the bundled snapshot, 59 days on
    assert codes() == []
    clock.advance(days=2)
    assert codes() == ["release_catalog_stale"]
    (tmp_path / "instance").mkdir(exist_ok=True)
    (tmp_path / "instance" / "release_catalog.json").write_text("{", encoding="utf-8")
    app.extensions[KEY].catalog_store()._checked_at = float("-inf")  # skip the few seconds' wait
    assert codes() == ["release_catalog_broken", "release_catalog_stale"]


def copy_fixtures(tmp_path: Path) -> Path:
    root = tmp_path / "fixtures"
    shutil.copytree(HERE, root, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return root
