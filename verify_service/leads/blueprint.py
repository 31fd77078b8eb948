"""The leads feature on the app: the lead dashboard under /review/lead."""

from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    from verify_service.leads import account_views, delivery_views, metric_views, reviewer_views, shift_views
    from verify_service.leads.views import bp

    del account_views, delivery_views, metric_views, reviewer_views, shift_views  # their routes are on ``bp``
    app.register_blueprint(bp)
