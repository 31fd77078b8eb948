"""Launch links: the account-service API that signs a freelancer into the verification pages."""

from __future__ import annotations

from flask import Response, jsonify, url_for
from flask_openapi3 import APIBlueprint, Tag
from pydantic import AwareDatetime, BaseModel

from verify_service.accounts.restrictions import isoformat
from verify_service.accounts.schemas import AccountPath
from verify_service.api.boundary import api_write, authenticate_api_request, check_json_body
from verify_service.api.schemas import PROBLEMS, IdempotencyHeaders, Problem
from verify_service.freelancer import services
from verify_service.ratelimit import account_key, limiter
from verify_service.registry import db_session, registry

ACTOR = "account-service"

api = APIBlueprint("launch_links_api", __name__, url_prefix="/api/v1", abp_tags=[Tag(name="accounts")],
                   abp_security=[{"bearer": []}])
api.before_request(authenticate_api_request)
api.before_request(check_json_body)

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
                        "expires_at": isoformat(issued.expires_at)})
    response.status_code = 201
    response.headers["Cache-Control"] = "no-store"  # a sign-in secret: never cached, kept for replays only sealed
    return response
