"""Launch links (API) and the freelancer's first pages."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, make_response, redirect, render_template, request, url_for
from flask_openapi3 import APIBlueprint, Tag
from pydantic import AwareDatetime, BaseModel

from verify_service.accounts import services as accounts
from verify_service.accounts.schemas import AccountPath
from verify_service.api.boundary import api_write, authenticate_api_request, check_json_body
from verify_service.api.schemas import PROBLEMS, IdempotencyHeaders, Problem
from verify_service.freelancer import services
from verify_service.registry import db_session, registry

ACTOR = "account-service"

api = APIBlueprint("launch_links_api", __name__, url_prefix="/api/v1", abp_tags=[Tag(name="accounts")],
                   abp_security=[{"bearer": []}])
api.before_request(authenticate_api_request)
api.before_request(check_json_body)

pages = Blueprint("freelancer", __name__, url_prefix="/verify")

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


@api.post("/accounts/<account_id>/launch-links", responses={201: LaunchLinkOut, 409: Problem, **PROBLEMS},
          summary="A single-use link (10 minutes) that signs the freelancer into the verification pages")
@api_write
def post_launch_link(path: AccountPath, header: IdempotencyHeaders) -> Response:
    issued = services.issue_launch_link(db_session(write=True), path.account_id, actor=ACTOR, now=registry().now())
    base = registry().settings.base_url
    response = jsonify({"url": f"{base}{url_for('freelancer.launch', token=issued.token)}",
                        "expires_at": accounts.isoformat(issued.expires_at)})
    response.status_code = 201
    return response


def cookie_name() -> str:
    # The __Host- prefix needs Secure, so it is used wherever the service is served over https.
    return "__Host-verify_session" if _secure() else "verify_session"


def _secure() -> bool:
    return registry().settings.base_url.startswith("https://")


@pages.after_request
def _private(response: Response) -> Response:
    # Launch tokens are in these URLs: never leak them in a Referer, never cache the pages.
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


@pages.get("/launch/<token>")
def launch(token: str) -> Response:
    session = db_session(write=True)
    opened = services.open_session(session, token, now=registry().now())
    if opened is None:
        return make_response(render_template("freelancer/link_expired.html"), 410)
    session.commit()
    response = redirect(url_for("freelancer.status"), code=303)
    response.set_cookie(cookie_name(), opened.token, httponly=True, samesite="Lax", secure=_secure(), path="/",
                        max_age=int(services.ABSOLUTE_TIMEOUT.total_seconds()))
    return response


@pages.get("")
def status() -> Response:
    session = db_session(write=True)  # the idle clock is refreshed as the freelancer uses the pages
    now = registry().now()
    account_id = services.current_account(session, request.cookies.get(cookie_name()), now=now)
    if account_id is None:
        return make_response(render_template("freelancer/signed_out.html"), 401)
    session.commit()
    request_row = accounts.open_request(session, account_id)
    return make_response(render_template(
        "freelancer/status.html", restrictions=accounts.restrictions_for(session, account_id),
        capability_text=CAPABILITY_TEXT, deadline=request_row.deadline if request_row else None))
