"""The emulated Workspace Events v1 API, the OpenID userinfo endpoint and the push tokens' certificates.

Served at the paths ``SANDBOX_EVENTS`` names (``verify_service/settings.py``), where the settings'
``meet_events_api_endpoint``, ``meet_userinfo_endpoint`` and ``meet_events_certs_url`` point with the
sandbox. The API and userinfo want the caller's identity (``Authorization: Bearer sandbox:<email>``,
the sandbox credentials); the certificates are public, as Google's are.
"""

from __future__ import annotations

from flask import Response, jsonify, request

from integrations.sandbox_google.blueprint import bp, caller, flag, list_args, request_body, store
from integrations.sandbox_google.errors import MeetApiError, not_found
from integrations.sandbox_google.push import CERTS_MAX_AGE
from integrations.sandbox_google.shapes import user_id
from verify_service.settings import SANDBOX_EVENTS

EVENTS = f"{SANDBOX_EVENTS['api']}v1"


@bp.post(f"{EVENTS}/subscriptions")
def create_subscription() -> Response:
    return jsonify(store().events.create(request_body(), caller(), validate_only=flag("validateOnly")))


@bp.get(f"{EVENTS}/subscriptions")
def list_subscriptions() -> Response:
    return jsonify(store().events.list_subscriptions(*list_args(), caller()))


@bp.get(f"{EVENTS}/subscriptions/<subscription>")
def get_subscription(subscription: str) -> Response:
    return jsonify(store().events.get(subscription, caller()))


@bp.patch(f"{EVENTS}/subscriptions/<subscription>")
def patch_subscription(subscription: str) -> Response:
    return jsonify(store().events.patch(subscription, request_body(), request.args.get("updateMask"), caller(),
                                        validate_only=flag("validateOnly")))


@bp.post(f"{EVENTS}/subscriptions/<subscription>")
def subscription_action(subscription: str) -> Response:
    """``subscriptions/{id}:reactivate`` — the custom method rides on the last path segment."""
    subscription_id, _, verb = subscription.partition(":")
    if verb != "reactivate":
        raise not_found(f"method subscriptions/{subscription}")
    return jsonify(store().events.reactivate(subscription_id, request_body(), caller()))


@bp.delete(f"{EVENTS}/subscriptions/<subscription>")
def delete_subscription(subscription: str) -> Response:
    return jsonify(store().events.delete(subscription, caller(), allow_missing=flag("allowMissing"),
                                         validate_only=flag("validateOnly")))


@bp.get(f"{EVENTS}/operations/<operation>")
def get_operation(operation: str) -> Response:
    return jsonify(store().events.operation(operation, caller()))


@bp.get(SANDBOX_EVENTS["userinfo"])
def userinfo() -> Response:
    """OpenID userinfo: the caller's id (``sub``, the sandbox's ``users/{id}`` without the prefix) and email."""
    email = caller()
    if email is None:
        raise MeetApiError("UNAUTHENTICATED", "Request is missing required authentication credential.")
    return jsonify({"sub": user_id(email).removeprefix("users/"), "email": email, "email_verified": True})


@bp.get(SANDBOX_EVENTS["certs"])
def push_certs() -> Response:
    """The certificates of the sandbox's push-token key, as Google's v1 certs endpoint serves them."""
    response = jsonify(store().push.certs())
    response.headers["Cache-Control"] = f"public, max-age={CERTS_MAX_AGE}"
    return response
