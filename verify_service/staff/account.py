"""Self-service for a signed-in staff member: change your password, make new recovery codes.

Both need a current TOTP code (and the password change the current password too), checked by
:mod:`.confirm`: a session left open on someone's desk is not enough to take the account over. A code
works once, so the one used to sign in cannot be replayed here. Both mail the owner a notice.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy.orm import Session

from verify_service.audit.services import record
from verify_service.errors import Conflict, InvalidInput
from verify_service.staff.errors import ReviewerNotFound
from verify_service.staff.models import Reviewer, Stage
from verify_service.staff.passwords import check_new_password, set_password
from verify_service.staff import confirm, mail, sessions, two_step
from verify_service.staff.services import SignInStep


class TwoStepNotSetUp(Conflict):
    code = "two_step_not_set_up"
    title = "Two-step verification is not set up"


@dataclasses.dataclass(frozen=True)
class AccountChange:
    refusal: SignInStep | None = None           # wrong password or code, or locked out: nothing changed
    token: str | None = None                    # the new session of this browser (a password change)
    recovery_codes: list[str] = dataclasses.field(default_factory=list, repr=False)  # shown once
    notice: mail.StaffMail | None = None        # to the owner, once committed

    @property
    def ok(self) -> bool:
        return self.refusal is None


def _locked_enrolled(db: Session, reviewer_id: int) -> Reviewer:
    reviewer = two_step.lock_reviewer(db, reviewer_id)
    if reviewer is None:
        raise ReviewerNotFound(f"No staff account with id {reviewer_id}.")
    if reviewer.totp_confirmed_at is None:
        raise TwoStepNotSetUp("Set up two-step verification first: sign out and sign in again.")
    return reviewer


def change_password(db: Session, reviewer_id: int, *, current: str, new: str, confirmation: str, code: str,
                    ip: str | None, now: dt.datetime) -> AccountChange:
    """Set a new password after checking the current one and a fresh TOTP code.

    Every session of the account ends (others may hold the old password); this browser gets a new one,
    whose token is in the result.

    Raises:
        InvalidInput: the new password is too short or too long, or its confirmation differs.
        ReviewerNotFound, TwoStepNotSetUp: no such account, or no two-step verification to confirm with.
        KeysUnavailable: see :mod:`.confirm`.
    """
    check_new_password(new, field="new_password")
    if new != confirmation:
        raise InvalidInput.for_field("confirm", "the two new passwords are not the same")
    reviewer = _locked_enrolled(db, reviewer_id)
    checked = confirm.check_current_password(db, reviewer, current, ip=ip, step="account", now=now)
    if checked.ok:
        checked = confirm.check_code(db, reviewer, code, ip=ip, step="account", now=now)
    if not checked.ok:
        return AccountChange(refusal=checked.refusal)
    set_password(reviewer, new)
    revoked = sessions.revoke_all(db, reviewer.id, now=now)
    token = sessions.open_session(db, reviewer.id, stage=Stage.ACTIVE, ip=ip, now=now)
    record(db, actor=f"reviewer:{reviewer.id}", action="staff.password_changed", now=now,
           subject_type="reviewer", subject_id=str(reviewer.id), details={"sessions_revoked": revoked})
    return AccountChange(token=token, notice=mail.notice(reviewer, mail.Change.PASSWORD_CHANGED, by=mail.YOU,
                                                         now=now))


def regenerate_recovery_codes(db: Session, reviewer_id: int, *, code: str, ip: str | None,
                              now: dt.datetime) -> AccountChange:
    """New recovery codes (returned, to be shown once) after a fresh TOTP code; the old ones stop working.

    Raises:
        ReviewerNotFound, TwoStepNotSetUp: no such account, or no two-step verification.
        KeysUnavailable: see :mod:`.confirm`.
    """
    reviewer = _locked_enrolled(db, reviewer_id)
    checked = confirm.check_code(db, reviewer, code, ip=ip, step="account", now=now)
    if not checked.ok:
        return AccountChange(refusal=checked.refusal)
    codes = two_step.new_recovery_codes(db, reviewer.id, now=now)
    record(db, actor=f"reviewer:{reviewer.id}", action="staff.recovery_codes_regenerated", now=now,
           subject_type="reviewer", subject_id=str(reviewer.id), details={"recovery_codes": len(codes)})
    return AccountChange(recovery_codes=codes,
                         notice=mail.notice(reviewer, mail.Change.RECOVERY_CODES_REGENERATED, by=mail.YOU, now=now))
