"""The daily release catalog refresh (docs/architecture.md, 'Browser and system support')."""

from __future__ import annotations

import logging
import os
import time

from flask import Flask

from integrations.release_sources import SourceClient, SourceURLs, default_fetchers
from verify_service.registry import KEY, Registry
from verify_service.support.catalog import Catalog, CatalogError
from verify_service.support.refresh import refresh_file
from verify_service.support.store import refresh_target

log = logging.getLogger("jobs")


def refresh_release_catalog(app: Flask) -> Catalog | None:
    """Refresh the instance's catalog file from the public sources; None when refused or pinned.

    A refresh that fails its sanity checks is logged and leaves the file as it was; the
    stale-data alert on ``/readyz`` shows it if it keeps failing. A catalog pinned with
    ``VERIFY_RELEASE_CATALOG`` belongs to the operator: the job leaves it alone
    (``verify-service catalog refresh`` refreshes it on request).
    """
    registry: Registry = app.extensions[KEY]
    if registry.settings.release_catalog:
        log.info("job refresh_release_catalog skipped: VERIFY_RELEASE_CATALOG pins %s",
                 registry.settings.release_catalog)
        return None
    started = time.monotonic()
    fetchers = default_fetchers(SourceClient(), SourceURLs.from_environ(os.environ))
    try:
        catalog = refresh_file(refresh_target(registry.settings), fetchers, registry.now())
    except (CatalogError, OSError) as exc:
        log.error("job refresh_release_catalog refused after %.3fs, the catalog is unchanged: %s",
                  time.monotonic() - started, exc)
        return None
    log.info("job refresh_release_catalog done in %.3fs", time.monotonic() - started)
    return catalog
