"""The freelancer pages' blueprint, their session cookie and the sign-in check every page makes."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, g, make_response, render_template, request
from flask_limiter.util import get_remote_address

from verify_service.accounts.errors import AccountClosed
from verify_service.csrf import protect_posts
from verify_service.freelancer import services
from verify_service.pages import page_unit, short_write
from verify_service.registry import db_session, registry
from verify_service.support import hints

pages = Blueprint("freelancer", __name__, url_prefix="/verify")
pages.before_request(protect_posts)


def cookie_name() -> str:
    # The __Host- prefix needs Secure, so it is used wherever the service is served over https.
    return "__Host-verify_session" if secure() else "verify_session"


def secure() -> bool:
    return registry().settings.base_url.startswith("https://")


@pages.after_request
def _private(response: Response) -> Response:
    # Launch tokens are in these URLs: never leak them in a Referer, never cache the pages.
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    # Ask Chromium browsers for the hints that tell the real OS version (the check reads them).
    response.headers.update(hints.REQUEST_HEADERS)
    if request.endpoint == "freelancer.launch":
        # Critical-CH makes the browser send the request again with the hints: that would spend the
        # single-use link twice. Accept-CH alone is enough, as the redirect's target gets them.
        del response.headers["Critical-CH"]
    return response


def freelancer_page(view: Callable[..., Any]) -> Callable[..., Any]:
    """Only for a live freelancer session: ``g.account_id`` is the signed-in account; else the signed-out page
    (or, once the account is closed, the page that says so).

    The page runs in the page boundary (:func:`verify_service.pages.page_unit`) and starts as a read: the
    session is checked without the write lock, and its idle clock, when due, is refreshed in a short write
    unit of its own (the waiting room's status poll refreshes it too: the freelancer is waiting there).
    """

    @functools.wraps(view)
    @page_unit
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        now = registry().now()
        token = request.cookies.get(cookie_name())
        try:
            live = services.current_session(db_session(), token, now=now)
        except AccountClosed:
            g.return_url = services.return_url_of(db_session(), token)
            return account_closed_page()
        if live is None:
            return make_response(render_template("freelancer/signed_out.html"), 401)
        if services.touch_due(live, now):
            session_id = live.id
            short_write(lambda db: services.touch(db, session_id, now=now))
        g.account_id, g.return_url = live.account_id, live.return_url
        return view(*args, **kwargs)

    return wrapper


@pages.app_context_processor
def _way_back() -> dict[str, Any]:
    """``back``: the "Back to <marketplace>" link of the freelancer's pages (None without a return_url), and
    ``marketplace``: its name (``VERIFY_MARKETPLACE_NAME``).

    ``g.return_url`` is set by :func:`freelancer_page` (and the launch link's pages); an app-wide processor,
    so the error pages of a freelancer's request show it too.
    """
    url, name = g.get("return_url"), registry().settings.marketplace_name
    return {"back": {"url": url, "name": name} if url else None, "marketplace": name}


def account_closed_page() -> Response:
    """What a closed account's pages and links show (410: they are gone for good).

    The cookie stays: its revoked session is how every later page of that browser knows to say so too.
    """
    return make_response(render_template("freelancer/account_closed.html"), 410)


def freelancer_key() -> str:
    """The freelancer's session cookie (hashed: no token goes to the storage), else the client IP."""
    token = request.cookies.get(cookie_name())
    if token:
        return "freelancer:" + hashlib.sha256(token.encode()).hexdigest()[:32]
    return "ip:" + get_remote_address()
