"""The freelancer's first pages: the launch link's landing, the status page, the browser check, help and the phone path.

The launch-link API the account service calls is in ``freelancer/api.py``.
"""

from __future__ import annotations

import zoneinfo
from typing import Any

import segno
from flask import Response, g, jsonify, make_response, redirect, render_template, request, url_for
from sqlalchemy.orm import Session

from verify_service.accounts import services as accounts
from verify_service.accounts.domain import HoldKind
from verify_service.accounts.errors import AccountClosed
from verify_service.accounts.restrictions import open_request, restrictions_for
from verify_service.api.boundary import check_json_body
from verify_service.calls.availability import availability
from verify_service.errors import InvalidInput, MalformedRequest, UnsupportedMediaType
from verify_service.freelancer import gate, journey, services
from verify_service.freelancer.auth import account_closed_page, cookie_name, freelancer_page, pages, secure
from verify_service.freelancer.holds_text import hold_context, kind_blocks
from verify_service.freelancer.presenters import availability_text
from verify_service.freelancer.privacy import privacy_facts
from verify_service.freelancer.timezones import full_date, page_zone
from verify_service.pages import page_unit, write
from verify_service.registry import db_session, registry
from verify_service.support import classifier, hints
from verify_service.support.classify import Verdict
from verify_service.support.describe import describe_client, store_links


@pages.get("/launch/<token>")
@page_unit
def launch(token: str) -> Response:
    """Spend the link (a GET that writes: it is the link in the account service's redirect)."""
    if request.method == "HEAD":  # mail scanners probe links with HEAD: never spend the single use on one
        response = make_response("", 200)
        response.headers["Cache-Control"] = "no-store"
        return response
    try:
        opened = services.open_session(write(), token, now=registry().now())
    except AccountClosed:
        g.return_url = services.return_url_of(db_session(), token, link=True)
        return account_closed_page()
    if opened is None:
        g.return_url = services.return_url_of(db_session(), token, link=True)
        return make_response(render_template("freelancer/link_expired.html"), 410)
    response = redirect(url_for("freelancer.status"), code=303)
    response.set_cookie(cookie_name(), opened.token, httponly=True, samesite="Lax", secure=secure(), path="/",
                        max_age=int(services.ABSOLUTE_TIMEOUT.total_seconds()))
    return response


@pages.get("")
@freelancer_page
def status() -> Response:
    db = db_session()
    reg = registry()
    account_id = g.account_id
    request_row = open_request(db, account_id)
    restrictions = restrictions_for(db, account_id)
    zone = page_zone(request.args, accounts.get_account(db, account_id).timezone)
    on = availability(db, now=reg.now(), settings=reg.settings)
    return make_response(render_template(
        "freelancer/status.html", restrictions=restrictions, deadline=request_row.deadline if request_row else None,
        **verdict_context(verdict(None)), active=journey.active_session(db, account_id),
        latest=journey.latest_session(db, account_id), settings=reg.settings, tz=zone.zone, full_date=full_date,
        reviewers_on=on.reviewers_on,
        on_now=availability_text(on, zone=zone.zone, now=reg.now(), settings=reg.settings),
        limit=limit_notice(db, account_id, zone.zone), **hold_context(restrictions)))


def limit_notice(db: Session, account_id: str, zone: zoneinfo.ZoneInfo) -> dict[str, Any] | None:
    """When the daily limit is reached: when it lifts, in the freelancer's time zone (else UTC, said so)."""
    reg = registry()
    lifts_at = journey.limit_lifts_at(db, account_id, settings=reg.settings, now=reg.now())
    if lifts_at is None:
        return None
    return {"at": lifts_at, "local": lifts_at.astimezone(zone), "zone": str(zone), "limit": reg.settings.daily_session_limit}


@pages.post("/check")
@freelancer_page
def check() -> Response:
    """The page's script posts getHighEntropyValues(); the verdict and its fixes come back as HTML."""
    try:
        check_json_body()  # the API's own reading: JSON nested too deep to parse is refused, not a 500
        body = request.get_json(silent=True)
    except (UnsupportedMediaType, MalformedRequest, InvalidInput):
        body = None  # unreadable hints are ignored: the verdict from the request's headers stands
    posted = body.get("client_hints") if isinstance(body, dict) else None
    judged = verdict(hints.from_json(posted) if isinstance(posted, dict) else None)
    context = verdict_context(judged)
    return jsonify({"verdict": judged.verdict, "may_start": context["may_start"],
                    "html": render_template("freelancer/_verdict.html", **context)})


def verdict(posted: hints.ClientHints | None = None) -> Verdict:
    """The verdict on this request's browser: its User-Agent and ``Sec-CH-UA*`` headers, and the page's hints."""
    merged = hints.merge(hints.from_headers(request.headers), posted)
    return classifier().classify(request.user_agent.string, merged, registry().catalog_store().current())


def verdict_context(judged: Verdict) -> dict[str, Any]:
    """What the pages show of a verdict: the verdict itself, its one-line summary, its links, and whether a
    call may start from this browser (the camera aside: the page tests that)."""
    links = store_links(judged.os["family"]) if judged.verdict == "use_mobile_app" else judged.links
    return {"verdict": judged.as_dict(), "client": describe_client(judged), "links": list(links),
            "may_start": gate.refusal(judged, None) is None}


@pages.get("/help")
@page_unit
def help_page() -> str:
    # Public: people look for help when they cannot get in.
    reg = registry()
    return render_template("freelancer/help.html", matrix=reg.catalog_store().current(),
                           privacy=privacy_facts(reg.settings), four_eyes=reg.settings.four_eyes_on_fail,
                           failed_hold=kind_blocks(HoldKind.VERIFICATION_FAILED))


@pages.get("/mobile")
@freelancer_page
def mobile() -> str:
    """The phone and tablet path: the Meet app, the call link, and on a computer a QR code to move the call."""
    db = db_session()
    active = journey.active_session(db, g.account_id)
    meet_uri = active.meet_uri if active is not None and active.meet_uri else None
    judged = verdict(None)
    on_phone = judged.verdict == "use_mobile_app"
    qr = None
    if meet_uri and not on_phone:
        qr = segno.make(meet_uri, error="m").svg_inline(scale=5, title="QR code of your call link", border=2)
    return render_template("freelancer/mobile.html", active=active, meet_uri=meet_uri, on_phone=on_phone, qr=qr,
                           links=store_links(judged.os["family"] if on_phone else None))
