"""The dashboard's sign-in check: every staff view declares the least role it needs.

``@staff_page(Role.LEAD)`` runs the view in the page boundary
(:mod:`verify_service.pages`), loads the live session and its reviewer into
``g.staff`` (a :class:`~verify_service.staff.sessions.Current`) in a read, or
sends the browser to sign in (401 for script requests). A role that is too low
gets 403, and the denial is audited (a refusal kept: ``keep_on_refusal``).
Posts are CSRF-checked by the blueprints.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from flask import Response, current_app, g, make_response, redirect, render_template, request, url_for

from verify_service.audit.services import record
from verify_service.errors import prefers_json
from verify_service.pages import keep_on_refusal, page_unit, short_write, write
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


def signed_in(*, touch: bool) -> sessions.Current | None:
    """This browser's live staff session (any stage) and its reviewer, read in the page's transaction; else None.

    ``touch`` refreshes the session's idle clock when it is due (every ``sessions.TOUCH_EVERY``): inside the
    page's write transaction when the page writes, else in a short write unit of its own
    (:func:`verify_service.pages.short_write`): a read page never takes the write lock for it otherwise.
    """
    now = registry().now()
    found = sessions.current(db_session(), request.cookies.get(cookie_name()), now=now, touch=False)
    if found is not None and touch and sessions.touch_due(found.staff_session, now):
        session_id = found.staff_session.id
        short_write(lambda session: sessions.touch(session, session_id, now=now))
    return found


def staff_page(role: Role = Role.REVIEWER) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The view, for staff with at least ``role``, in the page boundary (:func:`verify_service.pages.page_unit`).

    The sign-in check is a read; background polls (script requests) do not refresh the idle clock. A view
    that changes something calls ``pages.write()`` where its change starts.
    """

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        @page_unit
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            found = signed_in(touch=not prefers_json())
            if found is None or found.staff_session.stage is not Stage.ACTIVE:
                if request.method == "GET" and not prefers_json():
                    return redirect(url_for("staff.sign_in", next=request.full_path.rstrip("?")), code=303)
                return make_response(render_template("review/signed_out.html"), 401)
            if not found.reviewer.role.includes(role):
                reviewer_id, has = found.reviewer.id, found.reviewer.role.value
                keep_on_refusal("access.denied is audited")
                record(write(), actor=f"reviewer:{reviewer_id}", action="access.denied",
                       subject_type="endpoint", subject_id=request.endpoint or request.path,
                       details={"needs": role.value, "has": has}, now=registry().now())
                return make_response(render_template("review/forbidden.html", needs=role), 403)
            g.staff = found
            return view(*args, **kwargs)

        wrapper.required_role = role  # type: ignore[attr-defined]  (the access tests read it)
        return wrapper

    return decorate
