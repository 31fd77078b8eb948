"""``POST /api/v1/client-checks`` and ``GET /api/v1/support-matrix`` (public, rate limited per IP)."""

from __future__ import annotations

from flask import Response, jsonify
from flask_openapi3 import APIBlueprint, Tag

from verify_service.accounts.restrictions import isoformat
from verify_service.api.boundary import check_json_body
from verify_service.api.schemas import Problem
from verify_service.ratelimit import limiter
from verify_service.registry import registry
from verify_service.support import classifier, hints
from verify_service.support.catalog import BROWSERS, SYSTEMS
from verify_service.support.classify import NAMES
from verify_service.support.schemas import ClientCheckIn, SupportMatrixOut, VerdictOut

api = APIBlueprint("support_api", __name__, url_prefix="/api/v1", abp_tags=[Tag(name="support")])
api.before_request(check_json_body)

PUBLIC_PROBLEMS = {400: Problem, 415: Problem, 422: Problem, 429: Problem}


@api.post("/client-checks", responses={200: VerdictOut, **PUBLIC_PROBLEMS},
          summary="Can this browser and system take a verification call? (no API key; rate limited per IP)")
@limiter.limit(lambda: registry().settings.client_check_rate_limit)
def post_client_check(body: ClientCheckIn) -> Response:
    client_hints = hints.from_json(body.client_hints.model_dump()) if body.client_hints else None
    verdict = classifier().classify(body.user_agent, client_hints, registry().catalog_store().current())
    return jsonify(verdict.as_dict())


@api.get("/support-matrix", responses={200: SupportMatrixOut, 429: Problem},
         summary="The browser and system majors supported right now")
@limiter.limit(lambda: registry().settings.client_check_rate_limit)
def get_support_matrix() -> Response:
    catalog = registry().catalog_store().current()

    def products(names: tuple[str, ...]) -> dict[str, dict[str, object]]:
        return {n: {"name": NAMES[n], "supported_majors": list(catalog.supported(n))} for n in names}

    response = jsonify({
        "generated_at": isoformat(catalog.generated_at),
        "browsers": products(BROWSERS), "systems": products(SYSTEMS),
        "mobile": "On phones and tablets, use the Google Meet app.",
        "internet_explorer": "Internet Explorer 11 works only with Google's video plugin.",
    })
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response
