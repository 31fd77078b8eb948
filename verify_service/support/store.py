"""The release catalog the request path reads: parsed once, reloaded only when its file changes.

The active file is ``VERIFY_RELEASE_CATALOG`` when set; else the file the refresh job
writes under the instance directory, once it exists; else the snapshot bundled with the
package. A file that cannot be read is logged and reported (``/readyz`` shows it), and the
last good catalog keeps being served: a broken refresh never takes the checks down.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from verify_service.settings import Settings
from verify_service.support.catalog import Catalog, CatalogError, load

log = logging.getLogger(__name__)

INSTANCE_FILE = "release_catalog.json"
CHECK_EVERY = 5.0  # seconds between two looks at the file's mtime
STALE_AFTER = dt.timedelta(days=60)


def refresh_target(settings: Settings) -> Path:
    """The file a refresh writes: ``VERIFY_RELEASE_CATALOG`` if set, else the instance file."""
    return Path(settings.release_catalog) if settings.release_catalog else settings.instance_dir / INSTANCE_FILE


class CatalogStore:
    """Thread-safe; one per app (:meth:`verify_service.registry.Registry.catalog_store`)."""

    def __init__(self, settings: Settings, *, monotonic: Callable[[], float] = time.monotonic,
                 check_every: float = CHECK_EVERY) -> None:
        self._settings = settings
        self._monotonic = monotonic
        self._check_every = check_every
        self._lock = threading.Lock()
        self._catalog: Catalog | None = None
        self._source: tuple[str, int, int, int] | None = None  # (path, inode, mtime_ns, size) last read
        self._checked_at = float("-inf")
        self.problem: str | None = None  # why the active file could not be used, while it cannot

    def active_path(self) -> Path | None:
        """The file in use, or None for the bundled snapshot."""
        if self._settings.release_catalog:
            return Path(self._settings.release_catalog)
        written = self._settings.instance_dir / INSTANCE_FILE
        return written if written.exists() else None

    def current(self) -> Catalog:
        """The catalog to judge with now; a stat at most every few seconds, a parse only after a change."""
        with self._lock:
            now = self._monotonic()
            if self._catalog is not None and now - self._checked_at < self._check_every:
                return self._catalog
            self._checked_at = now
            self._reload_if_changed()
            assert self._catalog is not None
            return self._catalog

    def _reload_if_changed(self) -> None:
        path = self.active_path()
        try:
            source = ("", 0, 0, 0) if path is None else _identity(path)
        except OSError as exc:
            self._keep_last_good(f"release catalog {path} cannot be read: {exc.strerror or exc}", None)
            return
        if source == self._source and self._catalog is not None:
            return
        try:
            catalog = load(path)
        except (CatalogError, OSError) as exc:
            self._keep_last_good(f"release catalog {path} is broken: {exc}", source)
            return
        if self._catalog is not None:
            log.info("release catalog reloaded from %s (generated %s)", path or "the bundled snapshot",
                     catalog.generated_at.isoformat())
        self._catalog, self._source, self.problem = catalog, source, None

    def _keep_last_good(self, problem: str, source: tuple[str, int, int, int] | None) -> None:
        if problem != self.problem:
            log.error("%s; serving the last good catalog", problem)
        self.problem = problem
        self._source = source  # the same broken file is not parsed again until it changes
        if self._catalog is None:
            self._catalog = load()  # nothing good yet: the bundled snapshot


def _identity(path: Path) -> tuple[str, int, int, int]:
    """Changes whenever the file is replaced (new inode) or written in place (mtime, size)."""
    stat = os.stat(path)
    return str(path), stat.st_ino, stat.st_mtime_ns, stat.st_size


def catalog_alerts(store: CatalogStore, now: dt.datetime) -> list[dict[str, str]]:
    """``/readyz`` alerts: the active catalog file is broken, or its data is older than 60 days."""
    catalog = store.current()
    alerts = []
    if store.problem:
        alerts.append({"code": "release_catalog_broken",
                       "detail": f"{store.problem}; client checks use the last good catalog "
                                 f"(generated {catalog.generated_at:%Y-%m-%d})."})
    stale = [name for name, product in sorted(catalog.products.items())
             if now - (product.fetched_at or catalog.generated_at) > STALE_AFTER]
    if stale:
        alerts.append({"code": "release_catalog_stale",
                       "detail": f"release data older than {STALE_AFTER.days} days for {', '.join(stale)} (the "
                                 f"oldest from {catalog.data_as_of():%Y-%m-%d}): check the refresh_release_catalog "
                                 "job's log, or run 'verify-service catalog refresh'."})
    return alerts
