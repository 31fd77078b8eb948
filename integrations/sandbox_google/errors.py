"""Errors the emulator answers with, in the two shapes Google uses.

Meet (a One Platform API) answers ``{"error": {"code", "message", "status"}}``;
Calendar (an older API) answers ``{"error": {"errors": [{"domain", "reason",
"message"}], "code", "message"}}``. ``googleapiclient`` turns both into an
``HttpError`` whose ``status_code``, ``reason`` and ``error_details`` the real
gateway reads, so the shapes matter.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

_HTTP_FOR_STATUS = {
    "INVALID_ARGUMENT": 400, "FAILED_PRECONDITION": 400, "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409, "PERMISSION_DENIED": 403, "UNAUTHENTICATED": 401,
}


class SandboxApiError(Exception):
    """An emulated API answered with an error; :meth:`body` is what Google would send."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def body(self) -> dict[str, Any]:
        raise NotImplementedError


class MeetApiError(SandboxApiError):
    """A One Platform error (Meet v2, Workspace Events v1): ``status`` is the canonical code
    (``NOT_FOUND``, ``INVALID_ARGUMENT``…), ``details`` the typed details (a ``google.rpc.ErrorInfo``…)."""

    def __init__(self, status: str, message: str, details: Sequence[dict[str, Any]] = ()) -> None:
        super().__init__(_HTTP_FOR_STATUS[status], message)
        self.status = status
        self.details = list(details)

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message, "status": self.status}
        if self.details:
            error["details"] = self.details
        return {"error": error}


class CalendarApiError(SandboxApiError):
    """A Calendar v3 error: ``reason`` is Google's (``notFound``, ``deleted``, ``duplicate``…)."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(code, message)
        self.reason = reason

    def body(self) -> dict[str, Any]:
        return {"error": {"errors": [{"domain": "global", "reason": self.reason, "message": self.message}],
                          "code": self.code, "message": self.message}}


class RoomError(Exception):
    """A sandbox page cannot be served (unknown meeting, bad form); shown as a sandbox HTML page."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail


def not_found(what: str) -> MeetApiError:
    return MeetApiError("NOT_FOUND", f"Requested entity was not found. ({what})")


def invalid(message: str) -> MeetApiError:
    return MeetApiError("INVALID_ARGUMENT", message)
