"""The accounts feature on the app: the accounts API (profiles, verification requests, holds, restrictions)."""

from __future__ import annotations

from flask_openapi3 import OpenAPI


def register(app: OpenAPI) -> None:
    from verify_service.accounts.views import api

    app.register_api(api)
