"""Launch links (API) and the freelancer's first pages."""

from __future__ import annotations

import segno
from flask import Response, g, jsonify, make_response, redirect, render_template, request, url_for
from flask_openapi3 import APIBlueprint, Tag
from pydantic import AwareDatetime, BaseModel

from verify_service.accounts import services as accounts
from verify_service.accounts.schemas import AccountPath
from verify_service.api.boundary import api_write, authenticate_api_request, check_json_body
from verify_service.api.schemas import PROBLEMS, IdempotencyHeaders, Problem
from verify_service.errors import InvalidInput, MalformedRequest, UnsupportedMediaType
from verify_service.freelancer import journey, services
from verify_service.freelancer.auth import account_closed_page, cookie_name, freelancer_page, pages, secure
from verify_service.ratelimit import account_key, limiter
from verify_service.registry import db_session, registry
from verify_service.support import classifier, hints
from verify_service.support.classify import MEET_APP_LINKS, Verdict

ACTOR = "account-service"

api = APIBlueprint("launch_links_api", __name__, url_prefix="/api/v1", abp_tags=[Tag(name="accounts")],
                   abp_security=[{"bearer": []}])
api.before_request(authenticate_api_request)
api.before_request(check_json_body)

# What each capability means to a freelancer, in plain words.
CAPABILITY_TEXT = {
    "submit_proposals": "send new proposals to jobs",
    "withdraw_earnings": "withdraw your earnings",
    "accept_direct_hires": "accept direct offers from clients",
    "appear_in_search": "appear in freelancer search results",
    "change_profile_photo": "change your profile photo",
}


class LaunchLinkOut(BaseModel):
    url: str
    expires_at: AwareDatetime


@api.post("/accounts/<account_id>/launch-links", responses={201: LaunchLinkOut, 409: Problem, 429: Problem, **PROBLEMS},
          summary="A single-use link (10 minutes) that signs the freelancer into the verification pages")
@limiter.limit(lambda: registry().settings.launch_link_rate_limit, key_func=account_key)
@api_write
def post_launch_link(path: AccountPath, header: IdempotencyHeaders) -> Response:
    issued = services.issue_launch_link(db_session(write=True), path.account_id, actor=ACTOR, now=registry().now())
    base = registry().settings.base_url
    response = jsonify({"url": f"{base}{url_for('freelancer.launch', token=issued.token)}",
                        "expires_at": accounts.isoformat(issued.expires_at)})
    response.status_code = 201
    response.headers["Cache-Control"] = "no-store"  # a sign-in secret: never cached, kept for replays only sealed
    return response


@pages.get("/launch/<token>")
def launch(token: str) -> Response:
    if request.method == "HEAD":  # mail scanners probe links with HEAD: never spend the single use on one
        response = make_response("", 200)
        response.headers["Cache-Control"] = "no-store"
        return response
    session = db_session(write=True)
    try:
        opened = services.open_session(session, token, now=registry().now())
    except accounts.AccountClosed:
        return account_closed_page()
    if opened is None:
        return make_response(render_template("freelancer/link_expired.html"), 410)
    session.commit()
    response = redirect(url_for("freelancer.status"), code=303)
    response.set_cookie(cookie_name(), opened.token, httponly=True, samesite="Lax", secure=secure(), path="/",
                        max_age=int(services.ABSOLUTE_TIMEOUT.total_seconds()))
    return response


@pages.get("")
@freelancer_page
def status() -> Response:
    session = db_session()
    account_id = g.account_id
    request_row = accounts.open_request(session, account_id)
    return make_response(render_template(
        "freelancer/status.html", restrictions=accounts.restrictions_for(session, account_id),
        capability_text=CAPABILITY_TEXT, deadline=request_row.deadline if request_row else None,
        verdict=verdict(None), active=journey.active_session(session, account_id),
        latest=journey.latest_session(session, account_id), settings=registry().settings))


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
    return jsonify({"verdict": judged.verdict,
                    "html": render_template("freelancer/_verdict.html", verdict=judged.as_dict())})


def verdict(posted: hints.ClientHints | None = None) -> Verdict:
    merged = hints.merge(hints.from_headers(request.headers), posted)
    return classifier().classify(request.user_agent.string, merged, registry().catalog_store().current())


@pages.get("/help")
def help_page() -> str:
    # Public: people look for help when they cannot get in.
    return render_template("freelancer/help.html", matrix=registry().catalog_store().current())


@pages.get("/mobile")
@freelancer_page
def mobile() -> str:
    """The phone and tablet path: the Meet app, the call link, and on a computer a QR code to move the call."""
    session = db_session()
    active = journey.active_session(session, g.account_id)
    meet_uri = active.meet_uri if active is not None and active.meet_uri else None
    on_phone = verdict(None).verdict == "use_mobile_app"
    qr = None
    if meet_uri and not on_phone:
        qr = segno.make(meet_uri, error="m").svg_inline(scale=5, title="QR code of your call link", border=2)
    return render_template("freelancer/mobile.html", active=active, meet_uri=meet_uri, on_phone=on_phone, qr=qr,
                           links=MEET_APP_LINKS)
