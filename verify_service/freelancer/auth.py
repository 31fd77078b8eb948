"""The freelancer pages' blueprint, their session cookie and the sign-in check every page makes."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, g, make_response, render_template, request

from verify_service.accounts.services import AccountClosed
from verify_service.csrf import protect_posts
from verify_service.freelancer import services
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
    (or, once the account is closed, the page that says so)."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        session = db_session(write=True)  # the idle clock is refreshed as the freelancer uses the pages
        try:
            account_id = services.current_account(session, request.cookies.get(cookie_name()), now=registry().now())
        except AccountClosed:
            return account_closed_page()
        if account_id is None:
            return make_response(render_template("freelancer/signed_out.html"), 401)
        session.commit()
        g.account_id = account_id
        return view(*args, **kwargs)

    return wrapper


def account_closed_page() -> Response:
    """What a closed account's pages and links show (410: they are gone for good).

    The cookie stays: its revoked session is how every later page of that browser knows to say so too.
    """
    return make_response(render_template("freelancer/account_closed.html"), 410)
