"""The accounts API (docs/architecture.md, 'The API'): thin views over the account services."""

from __future__ import annotations

from flask import Response, jsonify, request, url_for
from flask_openapi3 import APIBlueprint, Tag
from sqlalchemy import Connection

from verify_service.accounts import services
from verify_service.accounts.bulk import read_blocked_page
from verify_service.accounts.restrictions import read_restrictions, read_restrictions_version, request_dict
from verify_service.accounts.models import Account
from verify_service.accounts.schemas import (
    AccountOut,
    AccountPath,
    BlockedPageOut,
    BlockedQuery,
    ProfileIn,
    RestrictionsOut,
    VerificationRequestIn,
    VerificationRequestResult,
)
from verify_service.accounts.restrictions import isoformat
from verify_service.api.boundary import api_write, authenticate_api_request, check_json_body
from verify_service.api.schemas import PROBLEMS, ConditionalHeaders, IdempotencyHeaders, Problem
from verify_service.db import run_read
from verify_service.registry import db_session, registry

ACTOR = "account-service"

api = APIBlueprint("accounts_api", __name__, url_prefix="/api/v1", abp_tags=[Tag(name="accounts")],
                   abp_security=[{"bearer": []}])
api.before_request(authenticate_api_request)
api.before_request(check_json_body)


def _account_json(account: Account) -> dict[str, object]:
    return {
        "account_id": account.id, "name": account.display_name, "email": account.email,
        "country": account.country, "photo_url": account.photo_url, "timezone": account.timezone,
        "locale": account.locale, "verification_status": account.verification_status.value,
        "restrictions_version": account.restrictions_version,
        "created_at": isoformat(account.created_at), "updated_at": isoformat(account.updated_at),
    }


@api.get("/accounts/<account_id>/restrictions",
         responses={200: RestrictionsOut, 304: None, **PROBLEMS},
         summary="What the account may not do right now (the marketplace's hot path)")
def get_restrictions(path: AccountPath, header: ConditionalHeaders) -> Response:
    return run_read(registry().engine, lambda connection: _restrictions_response(connection, path.account_id))


def _restrictions_response(connection: Connection, account_id: str) -> Response:
    if request.if_none_match:
        # A conditional GET needs only the version: one primary-key read.
        version = read_restrictions_version(connection, account_id)
        if request.if_none_match.contains_weak(str(version)):
            return _with_etag(Response(status=304), version)
    snapshot = read_restrictions(connection, account_id)
    return _with_etag(jsonify(snapshot.as_dict()), snapshot.version)


def _with_etag(response: Response, version: int) -> Response:
    response.set_etag(str(version))
    # Cache, but always revalidate: a hold must never be served stale.
    response.headers["Cache-Control"] = "private, no-cache"
    return response


@api.get("/restrictions", responses={200: BlockedPageOut, **PROBLEMS},
         summary="Every account with a block, by account id (to rebuild a derived set, e.g. a search index)")
def get_blocked_accounts(query: BlockedQuery) -> Response:
    page = run_read(registry().engine, lambda connection: read_blocked_page(
        connection, blocked=query.blocked, after=query.after, limit=query.limit))
    return jsonify(page.as_dict())


@api.put("/accounts/<account_id>", responses={200: AccountOut, 201: AccountOut, 409: Problem, **PROBLEMS},
         summary="Create the account or replace its profile snapshot")
@api_write
def put_account(path: AccountPath, body: ProfileIn) -> Response:
    profile = services.Profile(
        display_name=body.name, email=str(body.email), country=body.country,
        photo_url=str(body.photo_url) if body.photo_url else None, timezone=body.timezone, locale=body.locale)
    account, created = services.upsert_account(db_session(write=True), path.account_id, profile,
                                               actor=ACTOR, now=registry().now())
    response = jsonify(_account_json(account))
    if created:
        response.status_code = 201
        response.headers["Location"] = url_for(".get_restrictions", account_id=account.id)
    return response


@api.post("/accounts/<account_id>/verification-requests",
          responses={200: VerificationRequestResult, 201: VerificationRequestResult, 409: Problem, **PROBLEMS},
          summary="Ask the freelancer to verify their identity (optionally placing the pending hold)")
@api_write
def post_verification_request(path: AccountPath, header: IdempotencyHeaders,
                              body: VerificationRequestIn) -> Response:
    request_row, created, snapshot = services.request_verification(
        db_session(write=True), path.account_id, reason=body.reason, deadline=body.deadline,
        place_hold=body.place_hold, actor=ACTOR, now=registry().now())
    response = jsonify({"request": request_dict(request_row), "created": created,
                        "restrictions": snapshot.as_dict()})
    response.status_code = 201 if created else 200
    return response
