"""The release catalog: its file format, the refresh's sanity checks, atomic replacement and the store."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest

from integrations.release_sources import SourceError
from tests.conftest import make_settings
from verify_service.support import catalog as catalog_module
from verify_service.support.catalog import (
    PRODUCTS,
    SYSTEMS,
    Catalog,
    CatalogError,
    load,
    major_number,
    write_atomically,
)
from verify_service.support.refresh import KEEP_RELEASES, refresh_catalog, refresh_file
from verify_service.support.store import CatalogStore, catalog_alerts

NOW = dt.datetime(2026, 11, 22, 4, 17, tzinfo=dt.timezone.utc)
EARLIER = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
SOURCES = {
    "chrome": [("142", "2026-10-27"), ("141", "2026-09-29"), ("140", "2026-09-01"), ("139", "2026-08-04")],
    "edge": [("142", "2026-10-30"), ("141", "2026-10-02"), ("140", "2026-09-04")],
    "firefox": [("145", "2026-11-10"), ("144", "2026-10-13"), ("143", "2026-09-15")],
    "safari": [("26", "2025-09-15"), ("18", "2024-09-16"), ("17", "2023-09-18")],
    "macos": [("26", "2025-09-15"), ("15", "2024-09-16"), ("14", "2023-09-26")],
    "windows": [("11", "2021-10-04"), ("10", "2015-07-29")],
    "chromeos": [("142", "2026-11-10"), ("141", "2026-10-13"), ("140", "2026-09-15")],
    "ubuntu": [("25.10", "2025-10-09"), ("25.04", "2025-04-17"), ("24.10", "2024-10-10"), ("24.04", "2024-04-25")],
    "debian": [("13", "2025-08-09"), ("12", "2023-06-10"), ("11", "2021-08-14")],
}


def fetchers(**overrides):
    """One fake fetcher per product answering SOURCES; an override is a list of pairs or an exception."""
    def make(name):
        answer = overrides.get(name, SOURCES[name])

        def fetch():
            if isinstance(answer, Exception):
                raise answer
            return list(answer)
        return fetch
    return {name: make(name) for name in PRODUCTS}


def previous() -> Catalog:
    return refresh_catalog(None, fetchers(), now=EARLIER)


# ---------------------------------------------------------------- the file format

def test_the_bundled_snapshot_has_every_product_with_enough_releases() -> None:
    snapshot = load()
    assert set(snapshot.products) == set(PRODUCTS)
    for name, product in snapshot.products.items():
        assert product.kind == ("os" if name in SYSTEMS else "browser")
        # Windows has only two majors in the catalog (10 and 11): both are supported.
        assert len(product.releases) >= (2 if name == "windows" else 3), name
        assert [r.released for r in product.releases] == sorted((r.released for r in product.releases),
                                                                reverse=True)
    # At least what shipped when it was first built (a rebuild from the live sources only goes up).
    floor = {"chrome": "142", "edge": "142", "firefox": "145", "safari": "26", "macos": "26", "windows": "11",
             "chromeos": "142", "ubuntu": "25.10", "debian": "13"}
    for name, major in floor.items():
        assert major_number(name, snapshot.newest(name)) >= major_number(name, major), name
    assert {"10", "11"} <= set(snapshot.supported("windows"))


def test_to_json_and_back_keeps_every_field() -> None:
    catalog = previous()
    again = Catalog.from_json(json.loads(json.dumps(catalog.to_json())))
    assert again.generated_at == catalog.generated_at
    assert {n: (p.kind, p.releases, p.fetched_at) for n, p in again.products.items()} == \
        {n: (p.kind, p.releases, p.fetched_at) for n, p in catalog.products.items()}


def test_a_file_without_fetched_at_still_loads() -> None:
    data = {"generated_at": "2026-11-01T00:00:00Z",
            "products": {"chrome": {"kind": "browser", "releases": [{"major": "142", "released": "2026-10-27"}]}}}
    loaded = Catalog.from_json(data)
    assert loaded.products["chrome"].fetched_at is None
    assert loaded.data_as_of() == EARLIER


# ---------------------------------------------------------------- refreshing

def test_a_refresh_takes_each_product_from_its_source() -> None:
    catalog = refresh_catalog(previous(), fetchers(chrome=[*SOURCES["chrome"], ("143", "2026-11-21")]), now=NOW)
    assert catalog.generated_at == NOW
    assert catalog.supported("chrome") == ("143", "142", "141")
    assert all(p.fetched_at == NOW for p in catalog.products.values())


def test_a_failing_source_keeps_that_products_previous_data() -> None:
    old = previous()
    catalog = refresh_catalog(old, fetchers(macos=SourceError("https://endoflife.date/…: HTTP 503"),
                                            edge=KeyError("a parser bug")), now=NOW)
    assert catalog.products["macos"].releases == old.products["macos"].releases
    assert catalog.products["macos"].fetched_at == EARLIER  # staleness stays visible
    assert catalog.products["edge"].fetched_at == EARLIER
    assert catalog.products["chrome"].fetched_at == NOW


def test_no_source_answering_is_refused() -> None:
    broken = {name: SourceError("offline") for name in PRODUCTS}
    with pytest.raises(CatalogError, match="no release source answered"):
        refresh_catalog(previous(), fetchers(**broken), now=NOW)


def test_a_product_without_source_or_previous_data_is_refused() -> None:
    with pytest.raises(CatalogError, match="^debian: no data"):
        refresh_catalog(None, fetchers(debian=SourceError("offline")), now=NOW)


def test_a_product_that_disappears_is_refused() -> None:
    old = previous()
    extended = Catalog(old.generated_at, {**old.products, "opera": old.products["chrome"]})
    # A product added by hand has no source: it is kept, not dropped.
    assert "opera" in refresh_catalog(extended, fetchers(), now=NOW).products
    shrunk = {name: fetch for name, fetch in fetchers().items() if name != "safari"}
    assert refresh_catalog(old, shrunk, now=NOW).products["safari"] == old.products["safari"]
    with pytest.raises(CatalogError, match="^edge: no data"):
        refresh_catalog(None, {name: f for name, f in fetchers().items() if name != "edge"}, now=NOW)


@pytest.mark.parametrize(("product", "releases", "message"), [
    ("chrome", [("141", "2026-09-29"), ("140", "2026-09-01")], "from 142 to 141"),
    ("ubuntu", [("25.04", "2025-04-17"), ("24.10", "2024-10-10")], "from 25.10 to 25.04"),
    ("safari", [("18", "2025-09-20"), ("17", "2023-09-18")], "from 26 to 18"),
])
def test_the_newest_major_going_down_is_refused(product, releases, message) -> None:
    with pytest.raises(CatalogError, match=f"^{product}: the newest major would go down {message}"):
        refresh_catalog(previous(), fetchers(**{product: releases}), now=NOW)


def test_majors_compare_as_numbers_not_text() -> None:
    old = refresh_catalog(None, fetchers(debian=[("9", "2017-06-17"), ("8", "2015-04-26")]), now=EARLIER)
    # "10" < "9" as text; as a version it is newer, so this is accepted.
    assert refresh_catalog(old, fetchers(debian=[("10", "2019-07-06"), ("9", "2017-06-17")]),
                           now=NOW).newest("debian") == "10"
    with pytest.raises(CatalogError, match="^debian: the newest major would go down from 10 to 9"):
        refresh_catalog(refresh_catalog(None, fetchers(debian=[("10", "2019-07-06")]), now=EARLIER),
                        fetchers(debian=[("9", "2017-06-17")]), now=NOW)


def test_a_date_that_does_not_parse_is_refused_naming_the_product() -> None:
    with pytest.raises(CatalogError, match="^firefox: every release needs .*'2026-13-10'"):
        refresh_catalog(previous(), fetchers(firefox=[("145", "2026-13-10")]), now=NOW)


def test_only_the_newest_releases_are_kept() -> None:
    many = [(str(100 + i), (dt.date(2020, 1, 1) + dt.timedelta(weeks=4 * i)).isoformat()) for i in range(30)]
    catalog = refresh_catalog(None, fetchers(chrome=many), now=NOW)
    assert len(catalog.products["chrome"].releases) == KEEP_RELEASES
    assert catalog.newest("chrome") == "129"


# ---------------------------------------------------------------- the file on disk

def test_a_refused_refresh_leaves_the_file_as_it_was(tmp_path) -> None:
    path = tmp_path / "catalog.json"
    write_atomically(previous(), path)
    before = path.read_bytes()
    with pytest.raises(CatalogError, match="^chrome: the newest major would go down"):
        refresh_file(path, fetchers(chrome=[("120", "2026-01-01")]), NOW)
    with pytest.raises(CatalogError, match="^debian: every release needs"):
        refresh_file(path, fetchers(debian=[("14", "soon")]), NOW)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["catalog.json"]


def test_refresh_file_replaces_the_file(tmp_path) -> None:
    path = tmp_path / "catalog.json"
    write_atomically(previous(), path)
    refresh_file(path, fetchers(chrome=[("143", "2026-11-21"), *SOURCES["chrome"]]), NOW)
    assert load(path).newest("chrome") == "143"
    assert load(path).generated_at == NOW


def test_a_write_that_fails_midway_leaves_the_old_file_whole(tmp_path, monkeypatch) -> None:
    path = tmp_path / "catalog.json"
    write_atomically(previous(), path)
    before = path.read_bytes()

    def dump_half_then_fail(data, handle, **_kwargs):
        handle.write(json.dumps(data)[:100])
        handle.flush()
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(catalog_module.json, "dump", dump_half_then_fail)
    with pytest.raises(OSError, match="No space left"):
        refresh_file(path, fetchers(chrome=[("143", "2026-11-21"), *SOURCES["chrome"]]), NOW)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["catalog.json"]  # no temporary file left behind


def test_a_broken_file_is_refreshed_against_the_bundled_snapshot(tmp_path) -> None:
    path = tmp_path / "catalog.json"
    path.write_text("{ half a catalog", encoding="utf-8")
    with pytest.raises(CatalogError, match="^chrome: the newest major would go down from 142 to 120"):
        refresh_file(path, fetchers(chrome=[("120", "2026-01-01")]), NOW)
    refresh_file(path, fetchers(), NOW)
    assert load(path).newest("chrome") == "142"


# ---------------------------------------------------------------- the store on the request path

class Ticker:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def store_for(tmp_path: Path, **settings) -> tuple[CatalogStore, Ticker]:
    ticker = Ticker()
    return CatalogStore(make_settings("sqlite://", tmp_path, **settings), monotonic=ticker, check_every=5), ticker


def test_the_store_serves_the_bundled_snapshot_until_the_job_writes_a_file(tmp_path) -> None:
    store, ticker = store_for(tmp_path)
    assert store.current().generated_at == load().generated_at and store.active_path() is None
    write_atomically(refresh_catalog(None, fetchers(chrome=[("143", "2026-11-21")]), now=NOW),
                     tmp_path / "instance" / "release_catalog.json")
    assert store.current().newest("chrome") == "142"  # not looked at again within a few seconds
    ticker.now += 5
    assert store.current().newest("chrome") == "143"


def test_the_store_reloads_only_when_the_file_changes(tmp_path, monkeypatch) -> None:
    path = tmp_path / "pinned.json"
    write_atomically(previous(), path)
    store, ticker = store_for(tmp_path, release_catalog=str(path))
    first = store.current()
    loads = []
    monkeypatch.setattr("verify_service.support.store.load", lambda p=None: loads.append(p) or load(p))
    ticker.now += 60
    assert store.current() is first and loads == []  # unchanged: a stat, no parse
    write_atomically(refresh_catalog(first, fetchers(chrome=[("143", "2026-11-21")]), now=NOW), path)
    ticker.now += 60
    assert store.current().newest("chrome") == "143" and loads == [path]


def test_a_broken_file_keeps_the_last_good_catalog_and_is_reported(tmp_path, caplog) -> None:
    path = tmp_path / "pinned.json"
    write_atomically(previous(), path)
    store, ticker = store_for(tmp_path, release_catalog=str(path))
    good = store.current()
    path.write_text('{"generated_at": "2026-11-22T00:00:00Z", "products": {"chrome": {"kind": "browser"', "utf-8")
    ticker.now += 5
    assert store.current() is good
    assert "is broken" in store.problem and "release catalog" in caplog.text
    assert [a["code"] for a in catalog_alerts(store, NOW)] == ["release_catalog_broken"]
    os.remove(path)
    ticker.now += 5
    assert store.current() is good and "cannot be read" in store.problem
    write_atomically(previous(), path)
    ticker.now += 5
    assert store.current() is not good and store.problem is None and catalog_alerts(store, NOW) == []


def test_a_broken_override_at_start_falls_back_to_the_bundled_snapshot(tmp_path) -> None:
    path = tmp_path / "pinned.json"
    path.write_text("not json", encoding="utf-8")
    store, _ = store_for(tmp_path, release_catalog=str(path))
    assert store.current().generated_at == load().generated_at
    assert "not JSON" in store.problem


def test_the_override_wins_over_the_instance_file(tmp_path) -> None:
    write_atomically(refresh_catalog(None, fetchers(chrome=[("150", "2027-01-01")]), now=NOW),
                     tmp_path / "instance" / "release_catalog.json")
    pinned = tmp_path / "pinned.json"
    write_atomically(refresh_catalog(None, fetchers(chrome=[("99", "2022-03-01")]), now=NOW), pinned)
    store, _ = store_for(tmp_path, release_catalog=str(pinned))
    assert store.active_path() == pinned and store.current().newest("chrome") == "99"


def test_stale_data_raises_an_alert_naming_the_products(tmp_path) -> None:
    path = tmp_path / "pinned.json"
    old = previous()  # fetched 2026-11-01
    kept = refresh_catalog(old, fetchers(macos=SourceError("offline")), now=NOW + dt.timedelta(days=45))
    write_atomically(kept, path)
    store, _ = store_for(tmp_path, release_catalog=str(path))
    assert catalog_alerts(store, EARLIER + dt.timedelta(days=60)) == []
    alerts = catalog_alerts(store, EARLIER + dt.timedelta(days=61))
    assert [a["code"] for a in alerts] == ["release_catalog_stale"]
    assert "for macos (the oldest from 2026-11-01)" in alerts[0]["detail"]
