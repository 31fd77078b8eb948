"""Errors about call sessions that several features raise."""

from __future__ import annotations

from verify_service.errors import NotFound


class CallSessionNotFound(NotFound):
    code = "call_session_not_found"
    title = "We cannot find that call"
