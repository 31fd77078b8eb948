"""The freelancer feature on the app: launch links (API) and the freelancer's pages under /verify."""

from __future__ import annotations

from flask_openapi3 import OpenAPI


def register(app: OpenAPI) -> None:
    from verify_service.freelancer import api, booking_views, call_views, views
    from verify_service.freelancer.auth import pages

    del booking_views, call_views, views  # importing them adds their routes to the pages blueprint
    app.register_api(api.api)
    app.register_blueprint(pages)
