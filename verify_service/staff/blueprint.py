"""The staff feature on the app: sign-in, two-step setup, setup links and the staff member's own account pages."""

from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    from verify_service.staff import account_views, setup_views, views

    del setup_views  # importing it adds the setup link's page to the sign-in blueprint
    app.register_blueprint(views.bp)
    app.register_blueprint(account_views.bp)
