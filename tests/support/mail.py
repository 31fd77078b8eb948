"""Reading the mail the app sent: the sandbox mailbox (the default in tests) and mailers that fail."""

from __future__ import annotations

import re

import sqlalchemy as sa

from integrations.mail import MailError
from integrations.sandbox_mail import SandboxMail
from verify_service.registry import Registry

SETUP_LINK = re.compile(r"https?://\S+?(/review/setup/([A-Za-z0-9_-]+))(?=\s|$)")


def mailbox(registry: Registry, to: str | None = None) -> list[SandboxMail]:
    """The messages the sandbox mailbox kept, oldest first (only those to ``to`` when given)."""
    with registry.sessions() as session:
        stmt = sa.select(SandboxMail).order_by(SandboxMail.id)
        if to is not None:
            stmt = stmt.where(SandboxMail.recipient == to)
        rows = list(session.scalars(stmt))
        session.expunge_all()
        return rows


def setup_path(text: str) -> str:
    """The path (``/review/setup/<token>``) of the one setup link in a message's text."""
    found = SETUP_LINK.findall(text)
    assert len(found) == 1, f"expected one setup link, found {len(found)}"
    return found[0][0]


def latest_setup_path(registry: Registry, to: str) -> str:
    """The setup link of the newest message to ``to`` that carries one."""
    for message in reversed(mailbox(registry, to)):
        if SETUP_LINK.search(message.body):
            return setup_path(message.body)
    raise AssertionError(f"no setup link was mailed to {to}")


class FailingMailer:
    """A mail server that refuses everything (as SmtpMailer reports it)."""

    def __init__(self) -> None:
        self.attempts: list[str] = []

    def send(self, to: str, subject: str, text: str, *, purpose: str = "message") -> None:
        self.attempts.append(to)
        raise MailError("the mail server smtp.test:587 did not take the message: 421 try later")
