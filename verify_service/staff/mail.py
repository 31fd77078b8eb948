"""The emails a staff member gets about their own account: setup links and a notice of every change.

Each one goes to the account's own address and names who made the change
(a colleague's display name, or "you"), so an owner learns at once of a
change they did not make. Messages are built inside the unit of work and
sent by the caller after it commits: a mail must never announce a change
that was rolled back, nor carry a link whose token was never stored.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import logging
from collections.abc import Callable

from integrations.mail import Mailer, MailError
from verify_service.staff.models import InvitationPurpose, Reviewer

log = logging.getLogger(__name__)

YOU = "you"
COMMAND_LINE = "an administrator on the command line"
PRODUCT = "the identity verification dashboard"


@dataclasses.dataclass(frozen=True)
class StaffMail:
    reviewer_id: int
    to: str
    subject: str
    purpose: str
    text: str = dataclasses.field(repr=False)  # may hold a single-use link: never in a log line or a repr


class Change(str, enum.Enum):
    PASSWORD_SET = "password_set"
    PASSWORD_CHANGED = "password_changed"
    TWO_STEP_ENROLLED = "two_step_enrolled"
    RECOVERY_CODES_REGENERATED = "recovery_codes_regenerated"
    ROLE_CHANGED = "role_changed"
    DISABLED = "disabled"
    ENABLED = "enabled"


_NOTICES = {
    Change.PASSWORD_SET: ("Your password was set", "Your password for {product} was set"),
    Change.PASSWORD_CHANGED: ("Your password was changed", "Your password for {product} was changed"),
    Change.TWO_STEP_ENROLLED: ("Two-step verification was set up",
                               "Two-step verification for your account on {product} was set up with a new "
                               "authenticator app"),
    Change.RECOVERY_CODES_REGENERATED: ("New recovery codes were made",
                                        "New two-step recovery codes were made for your account on {product}; "
                                        "the old ones no longer work"),
    Change.ROLE_CHANGED: ("Your role changed", "Your role on {product} is now {role}"),
    Change.DISABLED: ("Your staff account was disabled", "Your staff account on {product} was disabled"),
    Change.ENABLED: ("Your staff account was enabled", "Your staff account on {product} was enabled again"),
}

_LINKS = {
    InvitationPurpose.INVITATION: (
        "Set up your staff account",
        "{by_cap} added you to {product} as {role}.\n\n"
        "Open this link to choose your password and set up two-step verification (you need an "
        "authenticator app on your phone):"),
    InvitationPurpose.PASSWORD_RESET: (
        "Your password was reset",
        "{by_cap} reset your password for {product}. Your old password no longer works.\n\n"
        "Open this link to choose a new one (you also need a code from your authenticator app):"),
    InvitationPurpose.TWO_STEP_RESET: (
        "Your two-step verification was reset",
        "{by_cap} reset the two-step verification of your account on {product}. Your old password and "
        "authenticator no longer work.\n\n"
        "Open this link to choose a new password and set up two-step verification again:"),
}


def who(by: Reviewer | None, target: Reviewer) -> str:
    """How a mail to ``target`` names who acted: "you", a colleague's display name, or the command line."""
    if by is None:
        return COMMAND_LINE
    return YOU if by.id == target.id else by.display_name


def _when(now: dt.datetime) -> str:
    return now.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def notice(target: Reviewer, change: Change, *, by: str, now: dt.datetime) -> StaffMail:
    """The notice of ``change`` to ``target``'s own address, naming ``by`` (see :func:`who`)."""
    subject, what = _NOTICES[change]
    sentence = what.format(product=PRODUCT, role=target.role.value)
    warning = ("" if change is Change.ENABLED else
               "If this was not you, or you did not expect it, tell a lead or an admin at once: someone else "
               "may be using your account.\n")
    text = (f"Hello {target.display_name},\n\n{sentence}, by {by}, on {_when(now)}.\n\n{warning}\n"
            "This is an automatic message about your own account.\n")
    return StaffMail(target.id, target.email, subject, "staff_notice", text)


def setup_link(target: Reviewer, url: str, purpose: InvitationPurpose, expires_at: dt.datetime, *, by: str,
               now: dt.datetime) -> StaffMail:
    """The mail carrying a single-use setup link: it is also the notice of the reset (or invitation)."""
    subject, lead_in = _LINKS[purpose]
    body = lead_in.format(by_cap=by[:1].upper() + by[1:], product=PRODUCT, role=target.role.value)
    text = (f"Hello {target.display_name},\n\n{body}\n\n{url}\n\n"
            f"The link works once, until {_when(expires_at)}. If it has expired, ask a lead to send a new one.\n"
            f"Nobody else can see this link, and nobody will ever ask you for your password.\n\n"
            f"If you did not expect this email (sent on {_when(now)}), tell a lead or an admin at once.\n")
    return StaffMail(target.id, target.email, subject, f"staff_{purpose.value}", text)


def deliver(mail: StaffMail | None, mailer: Callable[[], Mailer]) -> bool:
    """Send ``mail`` (if any) after the change it reports was committed; whether it was handed over.

    Never raises: a mail that cannot be sent fails closed for what it carries (the link is not in anyone's
    hands, and the caller tells the person acting so they can send it again), never for the change itself.
    """
    if mail is None:
        return True
    try:
        mailer().send(mail.to, mail.subject, mail.text, purpose=mail.purpose)
    except MailError as exc:
        log.warning("mail to staff account %s not sent (%s): %s", mail.reviewer_id, mail.purpose, exc,
                    extra={"reviewer_id": mail.reviewer_id, "mail_purpose": mail.purpose})
        return False
    return True
