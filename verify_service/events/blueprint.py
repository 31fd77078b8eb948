"""The events feature on the app: ``GET /api/v1/events`` and ``GET /api/v1/events/{event_id}``."""

from __future__ import annotations

from flask_openapi3 import OpenAPI


def register(app: OpenAPI) -> None:
    from verify_service.events.views import api

    app.register_api(api)
