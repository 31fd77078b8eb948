"""Single-use setup links: how a staff member sets their own password (and two-step verification).

A new account, a password reset and a two-step reset all work alike: the
account is left with no usable password, and a link goes to the account's
own address. Only the SHA-256 of the link's token is stored (like launch
links); the link works once, for ``VERIFY_STAFF_INVITE_HOURS``, and a newer
link supersedes it. It is consumed by one conditional ``UPDATE``, so of two
concurrent uses only one sets a password. Whoever opens it chooses the
password; a lead never sees one.

When the account has two-step verification (a password reset), the link
also asks for a current code, so the mailbox alone does not open the
account. Otherwise the link leads into the usual enrolment (QR code, a code
to confirm, recovery codes), and no sign-in completes before it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import hashlib
import secrets

import sqlalchemy as sa
from sqlalchemy.orm import Session

from verify_service.audit.services import record
from verify_service.errors import DomainError, InvalidInput
from verify_service.staff.models import InvitationPurpose, Reviewer, Role, StaffInvitation, Stage
from verify_service.staff.passwords import check_new_password, create_reviewer, set_password
from verify_service.crypto import keyring_of
from verify_service.staff import mail, sessions, throttle, two_step
from verify_service.staff.confirm import check_code
from verify_service.staff.services import SignInStep

SETUP_PATH = "/review/setup/"
MAX_TOKEN_LENGTH = 200


class LinkState(str, enum.Enum):
    UNKNOWN = "unknown"        # never issued (or mistyped)
    USED = "used"              # it already set a password
    EXPIRED = "expired"        # older than VERIFY_STAFF_INVITE_HOURS
    SUPERSEDED = "superseded"  # a newer link was sent to the same account
    DISABLED = "disabled"      # the account was disabled since


class SetupLinkUnusable(DomainError):
    status = 410
    code = "setup_link_unusable"
    title = "This link cannot be used"

    def __init__(self, state: LinkState) -> None:
        super().__init__(f"setup link {state.value}")
        self.state = state
        self.status = {LinkState.UNKNOWN: 404, LinkState.DISABLED: 403}.get(state, 410)


@dataclasses.dataclass(frozen=True)
class LinkPolicy:
    """Where links point and how long they work (from the settings)."""

    base_url: str
    hours: int


@dataclasses.dataclass(frozen=True)
class IssuedLink:
    reviewer_id: int
    purpose: InvitationPurpose
    expires_at: dt.datetime
    token: str = dataclasses.field(repr=False)

    def url(self, base_url: str) -> str:
        return f"{base_url.rstrip('/')}{SETUP_PATH}{self.token}"


@dataclasses.dataclass(frozen=True)
class Invited:
    reviewer: Reviewer
    mail: mail.StaffMail
    link: IssuedLink


@dataclasses.dataclass(frozen=True)
class SetupDone:
    """A completed (or refused) use of a link: the new sign-in step, and the notice to send once committed."""

    step: SignInStep
    notice: mail.StaffMail | None = None


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_link(db: Session, reviewer: Reviewer, *, purpose: InvitationPurpose, actor: str, hours: int,
               now: dt.datetime) -> IssuedLink:
    """A new link for ``reviewer``; every unused older one stops working. Raises nothing."""
    superseded = db.execute(sa.update(StaffInvitation).where(
        StaffInvitation.reviewer_id == reviewer.id, StaffInvitation.used_at.is_(None),
        StaffInvitation.superseded_at.is_(None)).values(superseded_at=now)).rowcount or 0
    token = secrets.token_urlsafe(32)  # 256 bits
    expires_at = now + dt.timedelta(hours=hours)
    db.add(StaffInvitation(token_hash=_hash(token), reviewer_id=reviewer.id, purpose=purpose,
                                created_by=actor[:100], created_at=now, expires_at=expires_at))
    db.flush()
    record(db, actor=actor, action="staff.setup_link_issued", now=now, subject_type="reviewer",
           subject_id=str(reviewer.id), details={"purpose": purpose.value, "hours": hours, "superseded": superseded})
    return IssuedLink(reviewer.id, purpose, expires_at, token)


def link_mail(db: Session, target: Reviewer, *, purpose: InvitationPurpose, by: Reviewer | None, actor: str,
              links: LinkPolicy, now: dt.datetime) -> tuple[IssuedLink, mail.StaffMail]:
    """Issue a link for ``target`` and the mail that carries it (naming ``by``)."""
    link = issue_link(db, target, purpose=purpose, actor=actor, hours=links.hours, now=now)
    return link, mail.setup_link(target, link.url(links.base_url), purpose, link.expires_at,
                                 by=mail.who(by, target), now=now)


def invite_staff(db: Session, *, email: str, display_name: str, role: Role, by: Reviewer | None, actor: str,
                 links: LinkPolicy, now: dt.datetime) -> Invited:
    """Create an account with no usable password and the invitation that lets its owner set one.

    ``by`` is who invites (None: the command line); role rules are the caller's.

    Raises:
        InvalidInput: a bad email. ReviewerExists: the email is taken.
    """
    reviewer = create_reviewer(db, email=email, display_name=display_name, role=role, password=None,
                               actor=actor, now=now)
    link, message = link_mail(db, reviewer, purpose=InvitationPurpose.INVITATION, by=by, actor=actor,
                              links=links, now=now)
    return Invited(reviewer, message, link)


def latest_links(db: Session) -> dict[int, StaffInvitation]:
    """The newest link of each account whose newest link is still unused (pending, or expired unused)."""
    newest = sa.select(sa.func.max(StaffInvitation.id)).group_by(StaffInvitation.reviewer_id).scalar_subquery()
    rows = db.scalars(sa.select(StaffInvitation).where(StaffInvitation.id.in_(newest),
                                                            StaffInvitation.used_at.is_(None)))
    return {row.reviewer_id: row for row in rows}


def open_link(db: Session, token: str, *, now: dt.datetime) -> tuple[StaffInvitation, Reviewer]:
    """The link of ``token`` and its account, if the link can still be used.

    Raises:
        SetupLinkUnusable: unknown, used, expired or superseded, or the account is disabled.
    """
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise SetupLinkUnusable(LinkState.UNKNOWN)
    link = db.scalar(sa.select(StaffInvitation).where(StaffInvitation.token_hash == _hash(token)))
    if link is None:
        raise SetupLinkUnusable(LinkState.UNKNOWN)
    if link.used_at is not None:
        raise SetupLinkUnusable(LinkState.USED)
    if link.superseded_at is not None:
        raise SetupLinkUnusable(LinkState.SUPERSEDED)
    if now >= link.expires_at:
        raise SetupLinkUnusable(LinkState.EXPIRED)
    reviewer = db.get(Reviewer, link.reviewer_id)
    if reviewer is None or not reviewer.active:
        raise SetupLinkUnusable(LinkState.DISABLED)
    return link, reviewer


def needs_code(reviewer: Reviewer) -> bool:
    """Whether using a link also takes a current two-step code (the account still has two-step set up)."""
    return reviewer.totp_confirmed_at is not None


def complete_setup(db: Session, token: str, *, password: str, confirm: str, code: str, ip: str | None,
                   now: dt.datetime) -> SetupDone:
    """Use a link: set the owner's password, end their other sessions, and sign this browser in.

    The new session is ACTIVE when two-step verification is set up (a code was checked here), else
    ENROLLING: the owner sets it up next. A wrong or locked-out code is a refusal in the result (its
    failure is counted, so the caller commits), and the link stays unused.

    Raises:
        SetupLinkUnusable: see :func:`open_link` (also when a concurrent use won).
        InvalidInput: the password is too short or too long, or the confirmation differs.
        KeysUnavailable: no VERIFY_SECRET_KEY / VERIFY_DATA_KEYS (possible only outside production).
    """
    link, reviewer = open_link(db, token, now=now)
    reviewer = two_step.lock_reviewer(db, reviewer.id) or reviewer
    check_new_password(password)
    if password != confirm:
        raise InvalidInput.for_field("confirm", "the two passwords are not the same")
    enrolled = needs_code(reviewer)
    if enrolled:
        checked = check_code(db, reviewer, code, ip=ip, step="setup_link", now=now, recovery_codes=True)
        if checked.refusal is not None:
            return SetupDone(checked.refusal)
    consumed = db.execute(sa.update(StaffInvitation).where(
        StaffInvitation.id == link.id, StaffInvitation.used_at.is_(None), StaffInvitation.superseded_at.is_(None),
        StaffInvitation.expires_at > now).values(used_at=now)).rowcount
    if not consumed:
        raise SetupLinkUnusable(LinkState.USED)
    set_password(reviewer, password)
    revoked = sessions.revoke_all(db, reviewer.id, now=now)
    # The owner proved they hold the mailbox: earlier wrong passwords no longer count against them.
    throttle.clear(db, throttle.account_key(reviewer.email, secret=keyring_of(db).throttle_key()))
    actor = f"reviewer:{reviewer.id}"
    record(db, actor=actor, action="staff.password_set", now=now, subject_type="reviewer",
           subject_id=str(reviewer.id), details={"purpose": link.purpose.value, "sessions_revoked": revoked})
    stage = Stage.ACTIVE if enrolled else Stage.ENROLLING
    if not enrolled:
        # A half-done set-up (a QR code shown at an earlier sign-in, maybe to whoever knew the old password)
        # is discarded: the owner's authenticator gets a secret nobody else has seen.
        reviewer.totp_secret = None
    session_token = sessions.open_session(db, reviewer.id, stage=stage, ip=ip, now=now)
    if enrolled:
        record(db, actor=actor, action="staff.sign_in", now=now, subject_type="reviewer",
               subject_id=str(reviewer.id), details={"method": "setup_link"})
    notice = mail.notice(reviewer, mail.Change.PASSWORD_SET, by=mail.YOU, now=now)
    return SetupDone(SignInStep(stage=stage, token=session_token, reviewer_id=reviewer.id, method="setup_link"),
                     notice)
