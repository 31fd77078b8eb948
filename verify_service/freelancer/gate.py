"""May a call be started from this browser? The one rule the verification page and the start request share.

The policy (README, 'Supported browsers and systems', *The gate*): an
``unsupported`` browser or system, or Internet Explorer without its plugin,
cannot start a call here: the freelancer is shown the fix and the phone path
instead. ``unverified`` may
start (with its notice), and so may a phone: its call happens in the Meet app.
A camera the page found blocked or missing refuses the start too; a page
without a camera report (JavaScript off, or the test not run yet) may start,
because Google Meet tests the camera itself when the call opens.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from typing import Any

from verify_service.support import hints
from verify_service.support.classify import Verdict

BLOCKING_VERDICTS = frozenset({"unsupported", "plugin_required"})
# What the page's camera test reports (static/check.js sets the form's "camera" field).
CAMERA_STATES = frozenset({"ok", "denied", "missing", "busy", "unavailable"})
BLOCKING_CAMERA = frozenset({"denied", "missing"})
MAX_POSTED_HINTS = 4000


class Blocker(enum.Enum):
    BROWSER = "browser"
    CAMERA = "camera"


@dataclasses.dataclass(frozen=True)
class Refusal:
    """Why a start is refused: the browser or system, or the camera (``denied`` or ``missing``)."""

    blocker: Blocker
    camera: str | None = None


def camera_report(value: str | None) -> str | None:
    """The page's camera state, or None for no report (anything unknown counts as none)."""
    return value if value in CAMERA_STATES else None


def posted_hints(value: str | None) -> hints.ClientHints | None:
    """The client hints the page posted with the start form (a JSON object); unreadable ones are ignored."""
    if not value or len(value) > MAX_POSTED_HINTS:
        return None
    try:
        data: Any = json.loads(value)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser goes
        return None
    return hints.from_json(data) if isinstance(data, dict) else None


def refusal(verdict: Verdict, camera: str | None) -> Refusal | None:
    """None when a call may start from this browser; else what stands in the way."""
    if verdict.verdict in BLOCKING_VERDICTS:
        return Refusal(Blocker.BROWSER)
    if not verdict.mobile and camera in BLOCKING_CAMERA:  # a phone's call is in the Meet app, not this page
        return Refusal(Blocker.CAMERA, camera)
    return None
