"""Managing staff accounts from the lead pages: invite, disable/enable, change role, resets, and who may do what.

Rules (the roles: docs/architecture.md, 'Actors'): leads and admins manage staff;
nobody disables, demotes or resets themselves here; only an admin grants or
removes the admin role, or touches an admin's account at all (a lead who
could disable an admin could remove the admin role in effect). Disabling
ends the account's sessions at once and gives the calls it had claimed back
to the queue.

Credentials are their owner's alone. A new account has no usable password:
its owner gets a single-use link by email (:mod:`verify_service.staff.invitations`).
A reset of the password, or of two-step verification, makes the old password
stop working at once, ends the account's sessions and sends a new link to the
account's own address, never to the lead. Every change (role, status,
resets) mails the owner a notice naming who made it. The functions return
that mail; the caller sends it after committing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session

from verify_service.audit.services import record
from verify_service.db import for_update
from verify_service.errors import Conflict, Forbidden, InvalidInput
from verify_service.review.claims import release_claims_of
from verify_service.staff.errors import ReviewerNotFound
from verify_service.staff.models import HUMAN, InvitationPurpose, Reviewer, Role, StaffInvitation
from verify_service.staff.passwords import clear_password, find_reviewer
from verify_service.staff import mail, two_step
from verify_service.staff.invitations import Invited, IssuedLink, LinkPolicy, invite_staff, latest_links, link_mail
from verify_service.staff.mail import StaffMail
from verify_service.staff.sessions import revoke_all


class NoPendingSetup(Conflict):
    code = "no_pending_setup"
    title = "This account has no setup link to send again"


def staff_list(db: Session) -> Sequence[Reviewer]:
    # The built-in identities (simulations) are not staff a lead manages: they are not listed.
    return db.scalars(sa.select(Reviewer).where(HUMAN).order_by(Reviewer.active.desc(), Reviewer.display_name,
                                                        Reviewer.id)).all()


def parse_role(value: str) -> Role:
    """Raises: InvalidInput (not a role)."""
    try:
        return Role(value)
    except ValueError as exc:
        raise InvalidInput.for_field("role", "choose reviewer, lead or admin") from exc


def check_may_manage(by: Reviewer, target: Reviewer, *, what: str) -> None:
    """Raises: Forbidden — ``by`` acting on themselves, or a non-admin on an admin's account."""
    if by.id == target.id:
        raise Forbidden(f"you cannot {what} your own account; ask another lead or an admin")
    if target.role is Role.ADMIN and by.role is not Role.ADMIN:
        raise Forbidden(f"only an admin may {what} an admin's account")


def locked_staff(db: Session, reviewer_id: int) -> Reviewer:
    """The staff account, its row locked for the transaction. Raises: ReviewerNotFound (also for a built-in one:
    nobody edits, disables or resets the simulations' identities)."""
    reviewer = db.execute(for_update(db, sa.select(Reviewer).where(Reviewer.id == reviewer_id, HUMAN))
                               .execution_options(populate_existing=True)).scalar_one_or_none()
    if reviewer is None:
        raise ReviewerNotFound(f"no staff account with id {reviewer_id}")
    return reviewer


def pending_setups(db: Session) -> dict[int, StaffInvitation]:
    """By staff id: the setup link still waiting to be used (or expired unused), for the staff list."""
    return latest_links(db)


def create_staff(db: Session, *, email: str, display_name: str, role: Role, by: Reviewer, actor: str,
                 links: LinkPolicy, now: dt.datetime) -> Invited:
    """Create a staff account with no usable password, and the invitation mail to its own address.

    Nobody sees a password: the owner chooses one through the link. Raises:
        Forbidden: a lead creating an admin.
        InvalidInput: a bad email; ReviewerExists: the email is taken.
    """
    if role is Role.ADMIN and by.role is not Role.ADMIN:
        raise Forbidden("only an admin may create an admin account")
    return invite_staff(db, email=email, display_name=display_name, role=role, by=by, actor=actor,
                        links=links, now=now)


def reset_password(db: Session, reviewer_id: int, *, by: Reviewer, actor: str, links: LinkPolicy,
                   now: dt.datetime) -> StaffMail:
    """The password stops working and every session ends at once; returns the mail with the owner's new link.

    Two-step verification stays: using the link takes a current code too.

    Raises: ReviewerNotFound, Forbidden (see :func:`check_may_manage`).
    """
    target = locked_staff(db, reviewer_id)
    check_may_manage(by, target, what="reset the password of")
    return _reset(db, target, two_step_too=False, by=by, actor=actor, links=links, now=now)[1]


def reset_two_step(db: Session, reviewer_id: int, *, by: Reviewer, actor: str, links: LinkPolicy,
                   now: dt.datetime) -> StaffMail:
    """Clear two-step verification and the password, end every session; returns the mail with the new link.

    The password goes too: whoever knew it must not be the one who sets two-step verification up again
    (a lead holding it could otherwise enrol their own phone and act as this account).

    Raises: ReviewerNotFound, Forbidden (see :func:`check_may_manage`).
    """
    target = locked_staff(db, reviewer_id)
    check_may_manage(by, target, what="reset two-step verification of")
    return _reset(db, target, two_step_too=True, by=by, actor=actor, links=links, now=now)[1]


def reset_from_command_line(db: Session, email: str, *, two_step_too: bool, actor: str, links: LinkPolicy,
                            now: dt.datetime) -> tuple[Reviewer, IssuedLink, StaffMail]:
    """``verify-service reset-password``: the reset a lead would make, for whoever runs the server.

    The first admin has nobody to ask, so no role rule applies: the command line is trusted as it is for
    ``create-admin``. Returns the account, its new link (printed) and the mail that carries it.

    Raises: ReviewerNotFound (no staff account has this email).
    """
    found = find_reviewer(db, email)
    if found is None:
        raise ReviewerNotFound(f"no staff account has the email {email.strip()!r}")
    target = locked_staff(db, found.id)
    link, message = _reset(db, target, two_step_too=two_step_too, by=None, actor=actor, links=links, now=now)
    return target, link, message


def _reset(db: Session, target: Reviewer, *, two_step_too: bool, by: Reviewer | None, actor: str,
           links: LinkPolicy, now: dt.datetime) -> tuple[IssuedLink, StaffMail]:
    """Clear the password (and two-step verification too, when asked), end every session, audit, issue a link."""
    if two_step_too:
        # TOTP, recovery codes and sessions go, audited on their own (its row lock refreshes ``target`` in place).
        two_step.reset_two_step(db, target.id, actor=actor, now=now)
    clear_password(target)
    revoked = 0 if two_step_too else revoke_all(db, target.id, now=now)
    record(db, actor=actor, action="staff.password_reset", subject_type="reviewer", subject_id=str(target.id),
           details={"sessions_revoked": revoked, "two_step_reset": two_step_too}, now=now)
    purpose = InvitationPurpose.TWO_STEP_RESET if two_step_too else InvitationPurpose.PASSWORD_RESET
    return link_mail(db, target, purpose=purpose, by=by, actor=actor, links=links, now=now)


def resend_setup_link(db: Session, reviewer_id: int, *, by: Reviewer, actor: str, links: LinkPolicy,
                      now: dt.datetime) -> StaffMail:
    """A new link in place of the pending (or expired) one, which stops working; returns its mail.

    Raises: ReviewerNotFound, Forbidden (see :func:`check_may_manage`); NoPendingSetup (the account set up its
    credentials already: a reset is what sends a link then).
    """
    target = locked_staff(db, reviewer_id)
    check_may_manage(by, target, what="send a setup link to")
    pending = latest_links(db).get(target.id)
    if pending is None:
        raise NoPendingSetup(f"{target.display_name} has no setup link waiting; to send one, reset their password")
    _, message = link_mail(db, target, purpose=pending.purpose, by=by, actor=actor, links=links, now=now)
    return message


def set_active(db: Session, reviewer_id: int, *, active: bool, by: Reviewer, actor: str,
               now: dt.datetime) -> StaffMail | None:
    """Disable (ending every session at once, releasing every claimed call) or enable a staff account.

    Returns the notice to the owner, or None when nothing changed.

    Raises: ReviewerNotFound, Forbidden (see :func:`check_may_manage`).
    """
    target = locked_staff(db, reviewer_id)
    check_may_manage(by, target, what="enable" if active else "disable")
    if target.active == active:
        return None
    target.active = active
    revoked = 0 if active else revoke_all(db, target.id, now=now)
    released = [] if active else release_claims_of(db, target.id, actor=actor, now=now)
    db.flush()
    record(db, actor=actor, action="reviewer.enabled" if active else "reviewer.disabled",
           subject_type="reviewer", subject_id=str(target.id),
           details={} if active else {"sessions_revoked": revoked, "calls_released": len(released)}, now=now)
    return mail.notice(target, mail.Change.ENABLED if active else mail.Change.DISABLED, by=mail.who(by, target),
                       now=now)


def change_role(db: Session, reviewer_id: int, *, role: Role, by: Reviewer, actor: str,
                now: dt.datetime) -> StaffMail | None:
    """Give a staff account another role (it applies from their next page).

    Returns the notice to the owner, or None when the role was already ``role``.

    Raises: ReviewerNotFound; Forbidden (their own role, or admin granted/removed by a non-admin).
    """
    target = locked_staff(db, reviewer_id)
    check_may_manage(by, target, what="change the role of")
    if role is Role.ADMIN and by.role is not Role.ADMIN:
        raise Forbidden("only an admin may grant the admin role")
    if target.role is role:
        return None
    before = target.role
    target.role = role
    db.flush()
    record(db, actor=actor, action="reviewer.role_changed", subject_type="reviewer",
           subject_id=str(target.id), details={"from": before.value, "to": role.value}, now=now)
    return mail.notice(target, mail.Change.ROLE_CHANGED, by=mail.who(by, target), now=now)
