"""Proving it is still you: a current password, or a fresh two-step code, before a credential changes.

Used when a signed-in staff member changes their password or makes new
recovery codes, and when a reset link is used on an account that keeps its
two-step verification. The checks count on the sign-in throttle's keys (a
wrong password on the account's key, a wrong code on its second-factor key,
both on the client address's), so these forms give no more guesses than the
sign-in does. A TOTP code is accepted once: its time step is remembered
(``totp_last_step``), so the code just used to sign in cannot be replayed.
Refusals are returned, not raised: their counts must be committed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy.orm import Session

from verify_service.audit.services import record
from verify_service.crypto import keyring_of
from verify_service.staff.models import Reviewer
from verify_service.staff.passwords import MAX_PASSWORD_LENGTH, check_password
from verify_service.staff import throttle, two_step
from verify_service.staff.services import ANONYMOUS, Refusal, SignInStep


@dataclasses.dataclass(frozen=True)
class Confirmed:
    method: str | None = None          # "totp" or "recovery_code" when the code was right
    refusal: SignInStep | None = None  # INVALID_CREDENTIALS, INVALID_CODE or LOCKED otherwise

    @property
    def ok(self) -> bool:
        return self.refusal is None


def check_code(db: Session, reviewer: Reviewer, code: str, *, ip: str | None, step: str, now: dt.datetime,
               recovery_codes: bool = False) -> Confirmed:
    """Check a current TOTP code of ``reviewer`` (locked by the caller); a recovery code too if allowed.

    ``step`` names the form in the audit log. Raises: KeysUnavailable, Unreadable (see two_step).
    """
    secret = keyring_of(db).throttle_key()
    keys = [throttle.second_factor_key(reviewer.id, secret=secret), throttle.ip_key(ip, secret=secret)]
    lock = throttle.begin_attempt(db, keys, now=now)
    if lock is not None:
        _failed(db, reviewer, "locked", step, now)
        return Confirmed(refusal=SignInStep(refusal=Refusal.LOCKED, retry_at=lock.until))
    method = None
    if two_step.accept_totp(reviewer, code, now=now):
        method = "totp"
    elif recovery_codes and two_step.use_recovery_code(db, reviewer, code, now=now):
        method = "recovery_code"
    if method is None:
        return _refuse(db, reviewer, keys, "wrong_code", Refusal.INVALID_CODE, step, now)
    throttle.clear(db, keys[0])
    return Confirmed(method=method)


def check_current_password(db: Session, reviewer: Reviewer, password: str, *, ip: str | None, step: str,
                           now: dt.datetime) -> Confirmed:
    """Check that ``password`` is ``reviewer``'s current one. Raises: KeysUnavailable."""
    secret = keyring_of(db).throttle_key()
    keys = [throttle.account_key(reviewer.email, secret=secret), throttle.ip_key(ip, secret=secret)]
    lock = throttle.begin_attempt(db, keys, now=now)
    if lock is not None:
        _failed(db, reviewer, "locked", step, now)
        return Confirmed(refusal=SignInStep(refusal=Refusal.LOCKED, retry_at=lock.until))
    if len(password) > MAX_PASSWORD_LENGTH or not check_password(reviewer, password):
        return _refuse(db, reviewer, keys, "wrong_password", Refusal.INVALID_CREDENTIALS, step, now)
    throttle.clear(db, keys[0])
    return Confirmed(method="password")


def _refuse(db: Session, reviewer: Reviewer, keys: list[throttle.Key], reason: str, refusal: Refusal,
            step: str, now: dt.datetime) -> Confirmed:
    _failed(db, reviewer, reason, step, now)
    locks = [lock for lock in (throttle.note_failure(db, key, now=now) for key in keys) if lock]
    for lock in locks:
        record(db, actor=ANONYMOUS, action="staff.locked_out", now=now, subject_type="reviewer",
               subject_id=str(reviewer.id), details={"key": lock.kind.value, "failures": lock.failures,
                                                     "minutes": int((lock.until - now).total_seconds() // 60)})
    if locks:
        return Confirmed(refusal=SignInStep(refusal=Refusal.LOCKED, retry_at=max(lock.until for lock in locks)))
    return Confirmed(refusal=SignInStep(refusal=refusal))


def _failed(db: Session, reviewer: Reviewer, reason: str, step: str, now: dt.datetime) -> None:
    record(db, actor=f"reviewer:{reviewer.id}" if step == "account" else ANONYMOUS,
           action="staff.confirmation_failed", now=now, subject_type="reviewer", subject_id=str(reviewer.id),
           details={"reason": reason, "step": step})
