"""Launch links: the account-service API that signs a freelancer into the verification pages."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, url_for
from flask_openapi3 import APIBlueprint, Tag

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from verify_service.accounts.restrictions import isoformat
from verify_service.accounts.schemas import AccountPath
from verify_service.api.boundary import api_write, authenticate_api_request, check_json_body
from verify_service.api.schemas import PROBLEMS, IdempotencyHeaders, Problem
from verify_service.freelancer import services
from verify_service.freelancer.models import RETURN_URL_MAX
from verify_service.freelancer.return_url import check_return_url
from verify_service.ratelimit import account_key, limiter
from verify_service.registry import db_session, registry

ACTOR = "account-service"

api = APIBlueprint("launch_links_api", __name__, url_prefix="/api/v1", abp_tags=[Tag(name="accounts")],
                   abp_security=[{"bearer": []}])
api.before_request(authenticate_api_request)
api.before_request(check_json_body)

class LaunchLinkIn(BaseModel):
    """The optional body: where the pages' "Back to <marketplace>" link points."""

    model_config = ConfigDict(extra="forbid", openapi_extra={"required": False})

    return_url: str | None = Field(
        None, min_length=1, max_length=RETURN_URL_MAX, pattern=r"^[hH][tT][tT][pP][sS]?://[^\s]+$",
        description="An absolute URL on one of the origins in `VERIFY_RETURN_URL_ORIGINS` (https in "
                    "production); any other is refused with 422 and no link is made.")

    @model_validator(mode="before")
    @classmethod
    def _no_body(cls, data: Any) -> Any:
        return {} if data is None else data  # the body is optional: none means no return_url


class LaunchLinkOut(BaseModel):
    url: str
    expires_at: AwareDatetime


@api.post("/accounts/<account_id>/launch-links", responses={201: LaunchLinkOut, 409: Problem, 429: Problem, **PROBLEMS},
          summary="A single-use link (10 minutes) that signs the freelancer into the verification pages")
@limiter.limit(lambda: registry().settings.launch_link_rate_limit, key_func=account_key)
@api_write
def post_launch_link(path: AccountPath, header: IdempotencyHeaders, body: LaunchLinkIn) -> Response:
    return_url = check_return_url(body.return_url, registry().settings) if body.return_url is not None else None
    issued = services.issue_launch_link(db_session(write=True), path.account_id, actor=ACTOR, now=registry().now(),
                                        return_url=return_url)
    base = registry().settings.base_url
    response = jsonify({"url": f"{base}{url_for('freelancer.launch', token=issued.token)}",
                        "expires_at": isoformat(issued.expires_at)})
    response.status_code = 201
    response.headers["Cache-Control"] = "no-store"  # a sign-in secret: never cached, kept for replays only sealed
    return response
