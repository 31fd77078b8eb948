"""The simulations feature on the app: served only while ``VERIFY_SIMULATIONS`` is on.

Off (production's default), the route is not registered at all: it answers the API's ordinary 404 problem,
even without an API key, and the OpenAPI document does not list it.
"""

from __future__ import annotations

from flask_openapi3 import OpenAPI

from verify_service.registry import KEY


def register(app: OpenAPI) -> None:
    if not app.extensions[KEY].settings.simulations:
        return
    from verify_service.simulations.views import api

    app.register_api(api)
