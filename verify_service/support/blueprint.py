"""The support feature on the app: the release catalog it reads, and the client-check and support-matrix API."""

from __future__ import annotations

from flask_openapi3 import OpenAPI

from verify_service.registry import KEY, Registry
from verify_service.support.store import CatalogStore


def register(app: OpenAPI) -> None:
    from verify_service.support.views import api

    registry: Registry = app.extensions[KEY]
    registry.catalogs = CatalogStore(registry.settings)
    app.register_api(api)
