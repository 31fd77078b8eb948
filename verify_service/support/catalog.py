"""The release catalog: which majors of each browser and OS exist, and when they shipped.

Supported means the newest release and the two before it, by release date
("current plus two previous major releases"). A bundled snapshot ships with
the package (``data/release_catalog.json``); ``VERIFY_RELEASE_CATALOG``
points at another file; a daily job refreshes it from public sources
(:mod:`integrations.release_sources`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import tempfile
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Literal

BROWSERS = ("chrome", "edge", "firefox", "safari")
SYSTEMS = ("macos", "windows", "chromeos", "ubuntu", "debian")
PRODUCTS = BROWSERS + SYSTEMS
SUPPORTED_COUNT = 3  # the current major and the two before it
BUNDLED = "release_catalog.json"


class CatalogError(ValueError):
    """A catalog file is malformed or fails a sanity check; the message says which product and why."""


@dataclasses.dataclass(frozen=True)
class Release:
    major: str
    released: dt.date


@dataclasses.dataclass(frozen=True)
class Product:
    kind: Literal["browser", "os"]
    releases: tuple[Release, ...]  # newest first
    # When this product's data last came from its source (a refresh keeps the old
    # data, and this time, when the source fails); None in hand-written files.
    fetched_at: dt.datetime | None = None

    def supported(self) -> tuple[str, ...]:
        """The supported majors, newest first."""
        return tuple(r.major for r in self.releases[:SUPPORTED_COUNT])


@dataclasses.dataclass(frozen=True, eq=False)  # compared and hashed by identity: results are cached per catalog
class Catalog:
    generated_at: dt.datetime
    products: Mapping[str, Product]

    def data_as_of(self) -> dt.datetime:
        """The oldest moment any product's data came from its source (``generated_at`` where unknown)."""
        return min([self.generated_at] + [p.fetched_at for p in self.products.values() if p.fetched_at])

    def supported(self, product: str) -> tuple[str, ...]:
        entry = self.products.get(product)
        return entry.supported() if entry else ()

    def newest(self, product: str) -> str | None:
        supported = self.supported(product)
        return supported[0] if supported else None

    def to_json(self) -> dict[str, Any]:
        return {
            "generated_at": _timestamp(self.generated_at),
            "products": {name: _product_json(product) for name, product in sorted(self.products.items())},
        }

    @classmethod
    def from_json(cls, data: Any) -> Catalog:
        """Raises: CatalogError, naming the product or field that is wrong."""
        if not isinstance(data, dict) or not isinstance(data.get("products"), dict):
            raise CatalogError("a catalog is an object with 'generated_at' and 'products'")
        try:
            generated = dt.datetime.fromisoformat(str(data["generated_at"]).replace("Z", "+00:00"))
        except (KeyError, ValueError) as exc:
            raise CatalogError("generated_at must be an ISO 8601 time") from exc
        if generated.tzinfo is None:
            raise CatalogError("generated_at needs a time zone")
        products = {name: parse_product(name, entry) for name, entry in data["products"].items()}
        return cls(generated, products)


def _timestamp(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _product_json(product: Product) -> dict[str, Any]:
    entry: dict[str, Any] = {"kind": product.kind}
    if product.fetched_at is not None:
        entry["fetched_at"] = _timestamp(product.fetched_at)
    entry["releases"] = [{"major": r.major, "released": r.released.isoformat()} for r in product.releases]
    return entry


def _fetched_at(name: str, value: Any) -> dt.datetime | None:
    if value is None:
        return None
    try:
        fetched = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise CatalogError(f"{name}: fetched_at must be an ISO 8601 time") from exc
    if fetched.tzinfo is None:
        raise CatalogError(f"{name}: fetched_at needs a time zone")
    return fetched


def major_number(product: str, major: str) -> tuple[int, ...]:
    """A major as numbers, for comparing ("25.10" > "25.04", "26" > "18"). Raises: CatalogError."""
    try:
        return tuple(int(part) for part in major.split("."))
    except ValueError:
        raise CatalogError(f"{product}: major {major!r} is not a version number") from None


def parse_product(name: str, entry: Any) -> Product:
    """One product entry of the file format (releases sorted newest first). Raises: CatalogError."""
    if not isinstance(entry, dict) or entry.get("kind") not in ("browser", "os"):
        raise CatalogError(f"{name}: kind must be 'browser' or 'os'")
    releases = []
    for item in entry.get("releases") or []:
        try:
            major, released = str(item["major"]).strip(), dt.date.fromisoformat(str(item["released"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise CatalogError(f"{name}: every release needs a major and a released date (YYYY-MM-DD), "
                               f"not {item!r}") from exc
        if not major:
            raise CatalogError(f"{name}: empty major")
        releases.append(Release(major, released))
    if not releases:
        raise CatalogError(f"{name}: no releases")
    if len({r.major for r in releases}) != len(releases):
        raise CatalogError(f"{name}: a major is listed twice")
    releases.sort(key=lambda r: r.released, reverse=True)
    return Product(entry["kind"], tuple(releases), _fetched_at(name, entry.get("fetched_at")))


def load(path: str | os.PathLike[str] | None = None) -> Catalog:
    """The catalog at ``path``, or the bundled snapshot. Raises: CatalogError, OSError."""
    if path:
        text = Path(path).read_text(encoding="utf-8")
    else:
        text = resources.files("verify_service.support").joinpath("data", BUNDLED).read_text(encoding="utf-8")
    try:
        return Catalog.from_json(json.loads(text))
    except json.JSONDecodeError as exc:
        raise CatalogError(f"not JSON: {exc}") from exc


def write_atomically(catalog: Catalog, path: str | os.PathLike[str]) -> None:
    """Replace the file at ``path`` in one step: readers see the old catalog or the new one, never half."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".catalog-", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(catalog.to_json(), handle, indent=2)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
