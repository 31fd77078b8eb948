"""Browser pages that are not part of a feature yet: the landing page, and the favicon browsers ask for."""

from __future__ import annotations

from flask import Blueprint, Response, redirect, render_template, url_for

bp = Blueprint("web", __name__)


@bp.get("/")
def index() -> str:
    return render_template("index.html")


@bp.get("/favicon.ico")
def favicon() -> Response:
    """Browsers ask for /favicon.ico whatever the page links to: send them to the SVG (no 404 on every page)."""
    response = redirect(url_for("static", filename="favicon.svg"), code=301)
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response
