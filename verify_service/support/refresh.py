"""Refreshing the release catalog from its public sources.

Each product comes from its own fetcher (:mod:`integrations.release_sources`). A fetcher
that fails keeps that product's last good data, so one source being down never empties
the catalog. The result must pass sanity checks against the previous catalog before it
replaces the file, in one atomic step: no product disappears, no product's newest major
goes down, every date parses. A refresh that fails them raises and the old file stays.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path

from integrations.release_sources import SourceError
from verify_service.support.catalog import (
    BROWSERS,
    PRODUCTS,
    Catalog,
    CatalogError,
    Product,
    load,
    major_number,
    parse_product,
    write_atomically,
)

log = logging.getLogger(__name__)

KEEP_RELEASES = 12  # newest majors kept per product; the catalog needs three


def refresh_catalog(previous: Catalog | None, fetchers: Mapping[str, Callable[[], list[tuple[str, str]]]], *,
                    now: dt.datetime) -> Catalog:
    """A new catalog: every product from its fetcher, or its previous data when the fetcher fails.

    Raises:
        CatalogError: naming the product, when a source gives a date that does not parse,
            when the result fails a sanity check against ``previous``, or when no source answered.
    """
    now = now.replace(microsecond=0)  # the file keeps whole seconds: the same catalog in memory and on disk
    products: dict[str, Product] = {}
    fresh = 0
    extra = [name for name in (previous.products if previous else {}) if name not in PRODUCTS]
    for name in (*PRODUCTS, *extra):  # a product added by hand to the file has no source: it is kept
        product = _fetch(name, fetchers.get(name), now)
        if product is not None:
            products[name] = product
            fresh += 1
        elif previous is not None and name in previous.products:
            products[name] = _as_of(previous.products[name], previous.generated_at)
    if fresh == 0:
        raise CatalogError("no release source answered; the catalog is unchanged")
    new = Catalog(now, products)
    check_refresh(previous, new)
    return new


def _fetch(name: str, fetcher: Callable[[], list[tuple[str, str]]] | None, now: dt.datetime) -> Product | None:
    """The product from its fetcher; None (logged) when the fetcher fails. Raises: CatalogError (bad dates)."""
    if fetcher is None:
        if name in PRODUCTS:
            log.warning("release catalog: no source for %s; keeping its previous data", name)
        return None
    try:
        pairs = fetcher()
    except Exception as exc:  # any source failure (SourceError, or a parser bug): keep the last good data
        log.warning("release catalog: %s source failed, keeping its previous data: %s", name, exc,
                    exc_info=not isinstance(exc, SourceError))
        return None
    entry = {"kind": "browser" if name in BROWSERS else "os",
             "releases": [{"major": major, "released": day} for major, day in pairs]}
    product = parse_product(name, entry)  # raises CatalogError naming the product on a bad date
    return Product(product.kind, product.releases[:KEEP_RELEASES], now)


def _as_of(product: Product, generated_at: dt.datetime) -> Product:
    """A kept product remembers when its data was fetched, so staleness stays visible."""
    return product if product.fetched_at else Product(product.kind, product.releases, generated_at)


def check_refresh(previous: Catalog | None, new: Catalog) -> None:
    """Refuse a catalog that looks wrong.

    Raises:
        CatalogError: a product is missing (or disappeared), or its newest major went down.
    """
    for name in PRODUCTS:
        if name not in new.products:
            raise CatalogError(f"{name}: no data (its source failed and there is no previous catalog)")
    if previous is None:
        return
    for name, old in previous.products.items():
        if name not in new.products:
            raise CatalogError(f"{name}: the product would disappear")
        old_newest, new_newest = old.releases[0].major, new.products[name].releases[0].major
        if major_number(name, new_newest) < major_number(name, old_newest):
            raise CatalogError(f"{name}: the newest major would go down from {old_newest} to {new_newest}")


def load_previous(path: Path) -> Catalog | None:
    """The catalog a refresh of ``path`` is checked against: the file, else the bundled snapshot."""
    if path.exists():
        try:
            return load(path)
        except (CatalogError, OSError) as exc:
            log.error("release catalog %s is unreadable (%s); checking the refresh against the bundled "
                      "snapshot", path, exc)
    try:
        return load()
    except (CatalogError, OSError):
        return None  # building the bundled snapshot itself


def refresh_file(path: str | os.PathLike[str], fetchers: Mapping[str, Callable[[], list[tuple[str, str]]]],
                 now: dt.datetime) -> Catalog:
    """Refresh the catalog file at ``path`` in place, atomically.

    Raises:
        CatalogError: the refresh was refused; the file at ``path`` is unchanged.
        OSError: the new file could not be written; the old one is unchanged.
    """
    target = Path(path)
    catalog = refresh_catalog(load_previous(target), fetchers, now=now)
    write_atomically(catalog, target)
    log.info("release catalog %s refreshed: %s", target,
             ", ".join(f"{name} {catalog.newest(name)}" for name in PRODUCTS))
    return catalog
