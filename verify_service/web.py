"""Browser pages that are not part of a feature yet: the landing page."""

from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("web", __name__)


@bp.get("/")
def index() -> str:
    return render_template("index.html")
