"""The dashboard's sign-in check: every staff view declares the least role it needs.

``@staff_page(Role.LEAD)`` loads the live session and its reviewer into
``g.staff`` (a :class:`~verify_service.staff.sessions.Current`), or sends the
browser to sign in (401 for script requests). A role that is too low gets
403, and the denial is audited. Posts are CSRF-checked by the blueprints.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from flask import Response, current_app, g, make_response, redirect, render_template, request, url_for

from verify_service.audit.services import record
from verify_service.errors import prefers_json
from verify_service.registry import db_session, registry
from verify_service.staff.models import Role, Stage
from verify_service.staff import sessions


def cookie_name() -> str:
    return "__Host-verify_staff" if secure() else "verify_staff"


def secure() -> bool:
    return registry().settings.base_url.startswith("https://")


def set_session_cookie(response: Response, token: str) -> Response:
    response.set_cookie(cookie_name(), token, httponly=True, samesite="Lax", secure=secure(), path="/",
                        max_age=int(sessions.ABSOLUTE_TIMEOUT.total_seconds()))
    return response


def clear_session_cookie(response: Response) -> Response:
    response.delete_cookie(cookie_name(), path="/", secure=secure(), httponly=True, samesite="Lax")
    return response


def private(response: Response) -> Response:
    """after_request of the staff blueprints: the pages show personal data; never cache them or leak URLs."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def client_ip() -> str:
    return request.remote_addr or "unknown"  # ProxyFix (VERIFY_TRUSTED_PROXIES) has already chosen the client


def safe_next(value: str | None) -> str | None:
    """``value`` if it is a path on this site (``/review/queue?x=1``), else None: never an open redirect."""
    if not value or len(value) > 2000 or not value.startswith("/") or value.startswith("//"):
        return None
    if "\\" in value or any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in value):
        return None  # browsers take a backslash for a slash ("/\evil.example"); control characters hide tricks
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return None
    return value


def destination(target: str | None) -> str:
    """Where a completed sign-in goes: the safe ``next``, else the queue (when it exists), else home."""
    if target:
        return target
    return url_for("review.queue") if "review.queue" in current_app.view_functions else "/"


def actor() -> str:
    """How the audit log names the signed-in staff member."""
    return f"reviewer:{g.staff.reviewer.id}"


def staff_page(role: Role = Role.REVIEWER) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            session = db_session(write=True)
            now = registry().now()
            found = sessions.current(session, request.cookies.get(cookie_name()), now=now, touch=not prefers_json())
            if found is None or found.session.stage is not Stage.ACTIVE:
                session.commit()
                if request.method == "GET" and not prefers_json():
                    return redirect(url_for("staff.sign_in", next=request.full_path.rstrip("?")), code=303)
                return make_response(render_template("review/signed_out.html"), 401)
            if not found.reviewer.role.includes(role):
                record(session, actor=f"reviewer:{found.reviewer.id}", action="access.denied",
                       subject_type="endpoint", subject_id=request.endpoint or request.path,
                       details={"needs": role.value, "has": found.reviewer.role.value}, now=now)
                session.commit()
                return make_response(render_template("review/forbidden.html", needs=role), 403)
            session.commit()
            g.staff = found
            return view(*args, **kwargs)

        wrapper.required_role = role  # type: ignore[attr-defined]  (the access tests read it)
        return wrapper

    return decorate
