"""Email: a small :class:`Mailer` interface, its SMTP adapter, and how the settings choose one.

``VERIFY_SMTP_URL`` picks the adapter:

* ``smtp://user:password@host:587`` — SMTP with STARTTLS, which is required: a server that does not
  offer it is refused rather than sent the message in clear;
* ``smtps://user:password@host:465`` — SMTP over TLS from the first byte (implicit TLS);
* empty (development, testing) — the :class:`~integrations.sandbox_mail.SandboxMailbox`, which keeps
  every message in the database for the ``/sandbox/mail`` page.

Certificates are verified (the system's trust store, host name included) with either scheme. Every
message is logged with its recipient, subject and purpose, never its text: invitation mails carry
single-use links.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import email.utils
import logging
import smtplib
import ssl
from collections.abc import Callable
from email.message import EmailMessage
from typing import TYPE_CHECKING, Protocol
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from verify_service.settings import Settings

log = logging.getLogger(__name__)

SMTP_TIMEOUT_SECONDS = 10.0  # per socket operation: a hung mail server must not hold a web worker for long
DEFAULT_PORTS = {"smtp": 587, "smtps": 465}


class MailError(Exception):
    """A message could not be handed to the mail server (or the mail settings are unusable)."""


class Mailer(Protocol):
    def send(self, to: str, subject: str, text: str, *, purpose: str = "message") -> None:
        """Send one plain-text message to ``to``.

        ``purpose`` names the kind of message in the log (``staff_invitation``, ``staff_notice`` …).

        Raises:
            MailError: the message was not accepted for delivery.
        """
        ...


@dataclasses.dataclass(frozen=True)
class SmtpTarget:
    host: str
    port: int
    implicit_tls: bool
    username: str = dataclasses.field(default="", repr=False)
    password: str = dataclasses.field(default="", repr=False)


def parse_smtp_url(url: str) -> SmtpTarget:
    """The server ``url`` names (``smtp://user:pass@host:587`` or ``smtps://host:465``).

    Raises:
        MailError: not an smtp:// or smtps:// URL with a host.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise MailError("VERIFY_SMTP_URL is not a valid URL") from exc
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise MailError("VERIFY_SMTP_URL must be smtp://[user:password@]host[:port] (STARTTLS) or "
                        "smtps://[user:password@]host[:port] (implicit TLS)")
    return SmtpTarget(host=parts.hostname, port=port or DEFAULT_PORTS[parts.scheme],
                      implicit_tls=parts.scheme == "smtps", username=unquote(parts.username or ""),
                      password=unquote(parts.password or ""))


def log_sent(backend: str, to: str, subject: str, purpose: str) -> None:
    """The one log line of a sent message: never its text, which may hold a single-use link."""
    log.info("mail sent (%s) to %s: %s [%s]", purpose, to, subject, backend,
             extra={"mail_to": to, "mail_subject": subject, "mail_purpose": purpose, "mail_backend": backend})


def compose(sender: str, to: str, subject: str, text: str) -> EmailMessage:
    """A plain-text message.

    Raises:
        MailError: an address or the subject holds a line break (header injection) or is empty.
    """
    domain = email.utils.parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    message = EmailMessage()
    try:
        # The default policy refuses CR/LF in header values, so no header can be smuggled in.
        message["From"] = sender
        message["To"] = to
        message["Subject"] = subject
    except ValueError as exc:
        raise MailError(f"the message's headers are not valid: {exc}") from exc
    if not to.strip() or "@" not in to:
        raise MailError("the recipient is not an email address")
    message["Date"] = email.utils.formatdate(usegmt=True)
    message["Message-ID"] = email.utils.make_msgid(domain=domain)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies to a robot
    message.set_content(text)
    return message


class SmtpMailer:
    """Sends through an SMTP server: STARTTLS (required) or implicit TLS, certificate verified, with a timeout."""

    def __init__(self, url: str, sender: str, *, timeout: float = SMTP_TIMEOUT_SECONDS,
                 context: ssl.SSLContext | None = None) -> None:
        """Raises: MailError (see :func:`parse_smtp_url`)."""
        self.target = parse_smtp_url(url)
        self.sender = sender
        self.timeout = timeout
        # Tests pass a context that trusts their own certificate authority; production uses the system's.
        self.context = context or ssl.create_default_context()

    def send(self, to: str, subject: str, text: str, *, purpose: str = "message") -> None:
        """Raises: MailError (refused, unreachable, timed out, no STARTTLS, certificate not trusted)."""
        message = compose(self.sender, to, subject, text)
        target = self.target
        try:
            with self._connect() as smtp:
                if target.username:
                    smtp.login(target.username, target.password)
                smtp.send_message(message)
        except (smtplib.SMTPException, OSError) as exc:  # ssl.SSLError and timeouts are OSErrors
            # Fails closed: the caller learns the message is not on its way (and tells the person).
            log.warning("mail NOT sent (%s) to %s: %s: %s", purpose, to, subject, _reason(exc),
                        extra={"mail_to": to, "mail_subject": subject, "mail_purpose": purpose,
                               "smtp_host": target.host, "smtp_port": target.port})
            raise MailError(f"the mail server {target.host}:{target.port} did not take the message: "
                            f"{_reason(exc)}") from exc
        log_sent("smtp", to, subject, purpose)

    def _connect(self) -> smtplib.SMTP:
        target = self.target
        if target.implicit_tls:
            return smtplib.SMTP_SSL(target.host, target.port, timeout=self.timeout, context=self.context)
        smtp = smtplib.SMTP(target.host, target.port, timeout=self.timeout)
        try:
            smtp.ehlo()
            if not smtp.has_extn("starttls"):
                # Never fall back to clear text: the messages carry sign-up links.
                raise smtplib.SMTPNotSupportedError("the server does not offer STARTTLS")
            smtp.starttls(context=self.context)
            smtp.ehlo()
        except BaseException:
            smtp.close()
            raise
        return smtp


def _reason(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        detail = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        return f"{exc.smtp_code} {detail}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def make_mailer(settings: Settings, sessions: sessionmaker[Session], clock: Callable[[], dt.datetime]) -> Mailer:
    """SMTP when ``settings.smtp_url`` is set, else the sandbox mailbox (kept in the database).

    Raises:
        MailError: ``smtp_url`` is malformed.
    """
    if settings.smtp_url:
        return SmtpMailer(settings.smtp_url, settings.mail_from)
    from integrations.sandbox_mail import SandboxMailbox

    return SandboxMailbox(sessions, clock, settings.mail_from)
