"""The simulations API (README, "Testing your integration end to end"): one thin view over ``services``."""

from __future__ import annotations

from flask import Response, jsonify
from flask_openapi3 import APIBlueprint, Tag

from verify_service.accounts.schemas import AccountPath
from verify_service.api.boundary import api_write, authenticate_api_request, check_json_body
from verify_service.api.schemas import PROBLEMS, IdempotencyHeaders, Problem
from verify_service.calls.state import Outcome
from verify_service.registry import db_session, registry
from verify_service.simulations.schemas import SimulationIn, SimulationOut
from verify_service.simulations.services import simulate_outcome

ACTOR = "account-service"

api = APIBlueprint("simulations_api", __name__, url_prefix="/api/v1", abp_tags=[Tag(name="simulations")],
                   abp_security=[{"bearer": []}])
api.before_request(authenticate_api_request)
api.before_request(check_json_body)


@api.post("/simulations/accounts/<account_id>/outcome",
          responses={201: SimulationOut, 409: Problem, 429: Problem, **PROBLEMS},
          summary="Run a simulated verification call to the given outcome (not in production)")
@api_write
def post_simulated_outcome(path: AccountPath, header: IdempotencyHeaders, body: SimulationIn) -> Response:
    reg = registry()
    reasons = None if body.reasons is None else [reason.value for reason in body.reasons]
    result = simulate_outcome(db_session(write=True), path.account_id, Outcome(body.outcome), reasons,
                              settings=reg.settings, now=reg.now(), actor=ACTOR)
    response = jsonify({"call_session_id": result.call_session_id, "outcome": result.outcome.value,
                        "restrictions_version": result.restrictions_version})
    response.status_code = 201
    return response
