"""The sandbox mailbox: where mail goes when ``VERIFY_SMTP_URL`` is empty (development, testing).

Nothing leaves the machine. Each message is kept in the ``sandbox_mail``
table, so every process of the app (web workers, the scheduler, the CLI)
sees the same mailbox, and ``/sandbox/mail`` lists the newest messages with
their links. Production requires ``VERIFY_SMTP_URL``, so there neither the
mailbox nor its page exists (:func:`register_sandbox_mail` is never called).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence

import sqlalchemy as sa
from flask import Blueprint, Flask, Response, current_app, make_response, render_template
from markupsafe import Markup, escape
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from integrations.mail import MailError, compose, log_sent
from verify_service.db import Base, UTCDateTime, unit_of_work

PAGE_SIZE = 50
_LINK = re.compile(r"https?://[^\s<>\"']+")

bp = Blueprint("sandbox_mail", __name__)
SESSIONS_KEY = "sandbox_mail.sessions"  # app.extensions: the sessionmaker the mailbox page reads with


class SandboxMail(Base):
    """A message the sandbox mailbox received instead of a mail server (development and testing only)."""

    __tablename__ = "sandbox_mail"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    recipient: Mapped[str] = mapped_column(sa.String(320))
    subject: Mapped[str] = mapped_column(sa.String(300))
    body: Mapped[str] = mapped_column(sa.Text())
    purpose: Mapped[str] = mapped_column(sa.String(50))
    sent_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class SandboxMailbox:
    """A :class:`~integrations.mail.Mailer` that keeps each message in the database, in its own transaction.

    Callers send after committing their own unit of work (a mail must never announce a change that was
    rolled back), so on SQLite no write lock is held while this one writes.
    """

    def __init__(self, sessions: sessionmaker[Session], clock: Callable[[], dt.datetime],
                 sender: str = "verify-service <no-reply@verify-service.invalid>") -> None:
        self.sessions = sessions
        self.clock = clock
        self.sender = sender

    def send(self, to: str, subject: str, text: str, *, purpose: str = "message") -> None:
        """Raises: MailError (bad headers, as SMTP would refuse them; or the database refused the row)."""
        compose(self.sender, to, subject, text)  # the same checks as the SMTP adapter
        try:
            with unit_of_work(self.sessions) as db:
                db.add(SandboxMail(recipient=to[:320], subject=subject[:300], body=text,
                                        purpose=purpose[:50], sent_at=self.clock()))
        except sa.exc.SQLAlchemyError as exc:
            raise MailError(f"the sandbox mailbox could not keep the message: {type(exc).__name__}") from exc
        log_sent("sandbox", to, subject, purpose)


def messages(db: Session, *, to: str | None = None, limit: int = PAGE_SIZE) -> Sequence[SandboxMail]:
    """The newest messages first (only those to ``to`` when given)."""
    stmt = sa.select(SandboxMail).order_by(SandboxMail.id.desc()).limit(limit)
    if to is not None:
        stmt = stmt.where(SandboxMail.recipient == to)
    return db.scalars(stmt).all()


def with_links(text: str) -> Markup:
    """``text``, escaped, with every http(s) URL made a link."""
    out, last = [], 0
    for match in _LINK.finditer(text):
        url = match.group(0)
        out += [escape(text[last:match.start()]), Markup('<a href="{0}">{0}</a>').format(url)]
        last = match.end()
    out.append(escape(text[last:]))
    return Markup("").join(out)


@bp.get("/sandbox/mail")
def mailbox_page() -> Response:
    sessions: sessionmaker[Session] = current_app.extensions[SESSIONS_KEY]
    with sessions() as db:
        found = messages(db)
    response = make_response(render_template("sandbox/mail.html", messages=found, with_links=with_links))
    # The messages hold single-use links: never cache the page or send it as a Referer.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def register_sandbox_mail(app: Flask, sessions: sessionmaker[Session]) -> None:
    """Serve ``/sandbox/mail`` from ``app`` (only when the sandbox mailbox is the app's mailer), reading ``sessions``."""
    app.extensions[SESSIONS_KEY] = sessions
    app.register_blueprint(bp)
