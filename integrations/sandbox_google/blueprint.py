"""The ``sandbox_google`` blueprint: the emulated APIs (:mod:`.api`) and the sandbox pages (:mod:`.room`)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, render_template

from integrations.sandbox_google.errors import RoomError, SandboxApiError
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
