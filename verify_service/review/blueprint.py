"""The review feature on the app: the reviewer's queue, call pages and decisions under /review."""

from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    from verify_service.review.views import bp

    app.register_blueprint(bp)
