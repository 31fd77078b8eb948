"""The ``sandbox_google`` blueprint: the emulated APIs (:mod:`.api`, :mod:`.events_api`), the sandbox pages
(:mod:`.room`), and what their views share: the store, the request's JSON body and who calls."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, render_template, request

from integrations.google_credentials import SANDBOX_TOKEN_PREFIX
from integrations.sandbox_google.errors import CalendarApiError, RoomError, SandboxApiError, invalid
from integrations.sandbox_google.store import SandboxGoogle

KEY = "sandbox_google"

bp = Blueprint("sandbox_google", __name__)


def store() -> SandboxGoogle:
    """The app's emulator state (see :func:`integrations.sandbox_google.register_sandbox`)."""
    sandbox: SandboxGoogle = current_app.extensions[KEY]
    return sandbox


@bp.errorhandler(SandboxApiError)
def _api_error(error: SandboxApiError) -> tuple[Response, int]:
    return jsonify(error.body()), error.code


@bp.errorhandler(RoomError)
def _room_error(error: RoomError) -> tuple[str, int]:
    return render_template("sandbox/error.html", error=error), error.status


def request_body(*, calendar: bool = False) -> dict[str, Any]:
    """The request's JSON object (empty when there is no body).

    Raises:
        SandboxApiError: 400 in the API's own shape when it is not a JSON object.
    """
    raw = request.get_data(cache=True)
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser goes
        body = None
    if isinstance(body, dict):
        return body
    if calendar:
        raise CalendarApiError(400, "parseError", "Parse Error")
    raise invalid("Invalid JSON payload received. Expected an object.")


def list_args() -> tuple[str | None, str | None, str | None]:
    return request.args.get("filter"), request.args.get("pageSize"), request.args.get("pageToken")


def flag(name: str) -> bool:
    """A boolean query parameter (``validateOnly=true``)."""
    return request.args.get(name, "").strip().lower() in ("true", "1")


def caller() -> str | None:
    """The host user the request acts as (``Authorization: Bearer sandbox:<email>``), or ``None`` (anonymous)."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.startswith(SANDBOX_TOKEN_PREFIX):
        return None
    return token.removeprefix(SANDBOX_TOKEN_PREFIX).strip() or None
