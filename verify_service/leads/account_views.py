"""Lead pages: finding an account, its story, placing a manual hold, lifting any hold."""

from __future__ import annotations

from typing import Any

from flask import Response, redirect, render_template, request, url_for

from verify_service.accounts import services as account_services
from verify_service.accounts.errors import HoldNotFound
from verify_service.accounts.domain import CAPABILITY_ORDER, HoldKind
from verify_service.errors import DomainError
from verify_service.leads.accounts import account_story, find_accounts, hold_of_account
from verify_service.leads.views import bp, done, required_text
from verify_service.pages import refused, write
from verify_service.registry import db_session, registry
from verify_service.staff.models import Role
from verify_service.staff.auth import actor, staff_page


@bp.get("/accounts")
@staff_page(Role.LEAD)
def accounts() -> str | Response:
    query = request.args.get("q", "").strip()[:64]
    found = find_accounts(db_session(), query)
    if query and any(a.id == query for a in found):
        return redirect(url_for("leads.account", account_id=query), code=303)
    return render_template("review/lead/accounts.html", query=query, accounts=found)


def _account_page(account_id: str, *, error: DomainError | None = None, form: dict[str, Any] | None = None) -> str:
    story = account_story(db_session(), account_id)
    return render_template("review/lead/account.html", story=story, capabilities=CAPABILITY_ORDER,
                           error=error, form=form or {})


@bp.get("/accounts/<account_id>")
@staff_page(Role.LEAD)
def account(account_id: str) -> str:
    return _account_page(account_id)


@bp.post("/accounts/<account_id>/holds")
@staff_page(Role.LEAD)
def place_hold(account_id: str) -> Response | tuple[str, int]:
    session = write()
    account_services.get_account(session, account_id)  # an unknown account is a 404, not a form problem
    form = {"blocks": request.form.getlist("blocks"), "reason": request.form.get("reason", "")}
    try:
        reason = required_text(form["reason"], "reason", "a reason")
        account_services.place_hold(session, account_id, kind=HoldKind.MANUAL, blocks=form["blocks"], reason=reason,
                            actor=actor(), now=registry().now())
    except DomainError as exc:
        return refused(exc, lambda **kw: _account_page(account_id, **kw), form=form)
    return done("Manual hold placed.", "leads.account", account_id=account_id)


@bp.post("/accounts/<account_id>/holds/<hold_id>/lift")
@staff_page(Role.LEAD)
def lift_hold(account_id: str, hold_id: str) -> Response | tuple[str, int]:
    session = write()
    if hold_of_account(session, account_id, hold_id) is None:
        raise HoldNotFound(f"account {account_id!r} has no hold with id {hold_id!r}")
    try:
        reason = required_text(request.form.get("reason"), "reason", "a reason for lifting")
        account_services.lift_hold(session, hold_id, reason=reason, actor=actor(), now=registry().now())
    except DomainError as exc:
        return refused(exc, lambda **kw: _account_page(account_id, **kw))
    return done("Hold lifted.", "leads.account", account_id=account_id)
