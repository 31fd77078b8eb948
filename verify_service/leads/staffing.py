"""Managing staff accounts from the lead pages: create, disable/enable, change role, and who may do what.

Rules (DESIGN §3.5 and the dashboard issue): leads and admins manage staff;
nobody disables, demotes or resets themselves here; only an admin grants or
removes the admin role, or touches an admin's account at all (a lead who
could disable an admin could remove the admin role in effect). Disabling
ends the account's sessions at once and gives the calls it had claimed back
to the queue.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session

from verify_service.audit.services import record
from verify_service.db import for_update
from verify_service.errors import DomainError, InvalidInput, NotFound
from verify_service.review.claims import release_claims_of
from verify_service.review.models import Reviewer, Role
from verify_service.review.services import create_reviewer
from verify_service.staff.sessions import revoke_all

TEMPORARY_PASSWORD_BYTES = 15  # 20 URL-safe characters


class NotAllowed(DomainError):
    status = 403
    code = "not_allowed"
    title = "Not allowed"


class StaffNotFound(NotFound):
    code = "reviewer_not_found"
    title = "No such staff account"


def staff_list(session: Session) -> Sequence[Reviewer]:
    return session.scalars(sa.select(Reviewer).order_by(Reviewer.active.desc(), Reviewer.display_name,
                                                        Reviewer.id)).all()


def parse_role(value: str) -> Role:
    """Raises: InvalidInput (not a role)."""
    try:
        return Role(value)
    except ValueError as exc:
        raise InvalidInput.for_field("role", "choose reviewer, lead or admin") from exc


def check_may_manage(by: Reviewer, target: Reviewer, *, what: str) -> None:
    """Raises: NotAllowed — ``by`` acting on themselves, or a non-admin on an admin's account."""
    if by.id == target.id:
        raise NotAllowed(f"you cannot {what} your own account; ask another lead or an admin")
    if target.role is Role.ADMIN and by.role is not Role.ADMIN:
        raise NotAllowed(f"only an admin may {what} an admin's account")


def locked_staff(session: Session, reviewer_id: int) -> Reviewer:
    """The staff account, its row locked for the transaction. Raises: StaffNotFound."""
    reviewer = session.execute(for_update(session, sa.select(Reviewer).where(Reviewer.id == reviewer_id))
                               .execution_options(populate_existing=True)).scalar_one_or_none()
    if reviewer is None:
        raise StaffNotFound(f"no staff account with id {reviewer_id}")
    return reviewer


def create_staff(session: Session, *, email: str, display_name: str, role: Role, by: Reviewer, actor: str,
                 now: dt.datetime) -> tuple[Reviewer, str]:
    """Create a staff account with a random temporary password; returns it and the password (shown once).

    Raises:
        NotAllowed: a lead creating an admin.
        InvalidInput: a bad email; ReviewerExists: the email is taken.
    """
    if role is Role.ADMIN and by.role is not Role.ADMIN:
        raise NotAllowed("only an admin may create an admin account")
    password = secrets.token_urlsafe(TEMPORARY_PASSWORD_BYTES)
    reviewer = create_reviewer(session, email=email, display_name=display_name, role=role, password=password,
                               actor=actor, now=now)
    return reviewer, password


def set_active(session: Session, reviewer_id: int, *, active: bool, by: Reviewer, actor: str,
               now: dt.datetime) -> bool:
    """Disable (ending every session at once, releasing every claimed call) or enable a staff account.

    Returns whether anything changed.

    Raises: StaffNotFound, NotAllowed (see :func:`check_may_manage`).
    """
    target = locked_staff(session, reviewer_id)
    check_may_manage(by, target, what="enable" if active else "disable")
    if target.active == active:
        return False
    target.active = active
    revoked = 0 if active else revoke_all(session, target.id, now=now)
    released = [] if active else release_claims_of(session, target.id, actor=actor, now=now)
    session.flush()
    record(session, actor=actor, action="reviewer.enabled" if active else "reviewer.disabled",
           subject_type="reviewer", subject_id=str(target.id),
           details={} if active else {"sessions_revoked": revoked, "calls_released": len(released)}, now=now)
    return True


def change_role(session: Session, reviewer_id: int, *, role: Role, by: Reviewer, actor: str,
                now: dt.datetime) -> bool:
    """Give a staff account another role (it applies from their next page). Returns whether it changed.

    Raises: StaffNotFound; NotAllowed (their own role, or admin granted/removed by a non-admin).
    """
    target = locked_staff(session, reviewer_id)
    check_may_manage(by, target, what="change the role of")
    if role is Role.ADMIN and by.role is not Role.ADMIN:
        raise NotAllowed("only an admin may grant the admin role")
    if target.role is role:
        return False
    before = target.role
    target.role = role
    session.flush()
    record(session, actor=actor, action="reviewer.role_changed", subject_type="reviewer",
           subject_id=str(target.id), details={"from": before.value, "to": role.value}, now=now)
    return True
