"""The SMTP adapter against a real SMTP server on loopback (aiosmtpd), and an invitation sent through it.

The server's certificate is made by the test (tests/support/smtp.py) and the mailer trusts only that CA,
so the same code path as production runs: STARTTLS required, certificate and host name verified, AUTH
only after TLS, a timeout on every socket operation.
"""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from flask import Flask

from integrations.mail import MailError, SmtpMailer
from tests.functional.test_staff_sign_in import TOKEN
from tests.support.mail import setup_path
from tests.support.smtp import Certificates, SmtpServer, make_certificates
from tests.support.staff import csrf_token, signed_in
from verify_service.registry import Registry
from verify_service.staff.models import Role

SENDER = "verify-service <no-reply@verify.example>"
LINK = "https://verify.example/review/setup/tok3n-0f-the-l1nk"


@pytest.fixture
def certificates(tmp_path: Path) -> Certificates:
    return make_certificates(tmp_path / "tls")


@pytest.fixture
def smtp(certificates: Certificates) -> Iterator[SmtpServer]:
    """A real SMTP server on loopback that requires STARTTLS and AUTH."""
    server = SmtpServer(certificates, mode="starttls")
    yield server
    server.stop()


def mailer(url: str, certificates: Certificates, **kwargs: object) -> SmtpMailer:
    return SmtpMailer(url, SENDER, context=certificates.client_context(), **kwargs)  # type: ignore[arg-type]


def test_starttls_delivers_the_message_and_the_log_keeps_no_link(smtp: SmtpServer, certificates: Certificates,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="integrations.mail")
    mailer(smtp.url(), certificates).send("nia@example.com", "Set up your staff account",
                                          f"Hello Nia,\n\nOpen this link:\n\n{LINK}\n", purpose="staff_invitation")
    [received] = smtp.received
    assert received.tls and received.login == "mailer"  # STARTTLS first, then AUTH with the URL's user
    assert received.rcpt_tos == ["nia@example.com"] and received.mail_from == "no-reply@verify.example"
    assert received.message["Subject"] == "Set up your staff account" and received.message["To"] == "nia@example.com"
    assert received.message["Auto-Submitted"] == "auto-generated" and received.message["Message-ID"]
    assert LINK in received.text
    [line] = [r for r in caplog.records if r.name == "integrations.mail"]
    logged = line.getMessage() + " " + " ".join(f"{k}={v}" for k, v in vars(line).items())
    assert "nia@example.com" in logged and "Set up your staff account" in logged and "staff_invitation" in logged
    assert "tok3n" not in logged and "/review/setup/" not in logged and "s3cret" not in logged


# aiosmtpd warns that AUTH does not require TLS: it does not count the implicit mode's TLS socket as TLS.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_implicit_tls_delivers(certificates: Certificates) -> None:
    server = SmtpServer(certificates, mode="implicit")
    try:
        mailer(server.url("smtps"), certificates).send("nia@example.com", "Hi", "text")
    finally:
        server.stop()
    [received] = server.received
    assert received.tls and received.login == "mailer" and received.text.strip() == "text"


def test_a_server_without_starttls_gets_nothing(certificates: Certificates,
                                                caplog: pytest.LogCaptureFixture) -> None:
    server = SmtpServer(certificates, mode="plain")
    try:
        with pytest.raises(MailError, match="STARTTLS"):
            mailer(server.url(), certificates).send("nia@example.com", "Hi", f"link {LINK}", purpose="staff_notice")
    finally:
        server.stop()
    assert server.received == []  # never in clear, the password neither
    assert any("mail NOT sent (staff_notice) to nia@example.com" in r.getMessage() for r in caplog.records)
    assert "tok3n" not in caplog.text


def test_an_untrusted_or_misnamed_certificate_is_refused(smtp: SmtpServer, certificates: Certificates,
                                                         tmp_path: Path) -> None:
    with pytest.raises(MailError, match="CERTIFICATE_VERIFY_FAILED"):
        SmtpMailer(smtp.url(), SENDER).send("nia@example.com", "Hi", "text")  # the system's CAs: not ours
    other = make_certificates(tmp_path / "other", names=("mail.elsewhere.example",))
    named = SmtpServer(other, mode="starttls")
    try:
        with pytest.raises(MailError, match="CERTIFICATE_VERIFY_FAILED|match"):
            mailer(named.url(), other).send("nia@example.com", "Hi", "text")  # trusted CA, wrong host name
    finally:
        named.stop()
    assert smtp.received == [] and named.received == []


def test_wrong_credentials_and_bad_headers_fail_closed(smtp: SmtpServer, certificates: Certificates) -> None:
    with pytest.raises(MailError, match="535"):
        mailer(smtp.url(password="wrong"), certificates).send("nia@example.com", "Hi", "text")
    with pytest.raises(MailError, match="headers"):
        mailer(smtp.url(), certificates).send("nia@example.com", "Hi\r\nBcc: eve@example.com", "text")
    with pytest.raises(MailError):
        mailer(smtp.url(), certificates).send("nia@example.com\nBcc: eve@example.com", "Hi", "text")
    assert smtp.received == []


def test_an_unreachable_or_silent_server_fails_within_the_timeout(certificates: Certificates) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with pytest.raises(MailError, match="ConnectionRefused"):
        mailer(f"smtp://127.0.0.1:{port}", certificates).send("nia@example.com", "Hi", "text")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: list[socket.socket] = []
    thread = threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True)
    thread.start()
    started = time.monotonic()
    try:
        with pytest.raises(MailError, match="timed out|Timeout"):  # it accepts, and never says a word
            mailer(f"smtp://127.0.0.1:{listener.getsockname()[1]}", certificates, timeout=0.5).send(
                "nia@example.com", "Hi", "text")
    finally:
        for connection in accepted:
            connection.close()
        listener.close()
    assert time.monotonic() - started < 5


def test_a_lead_invites_and_the_link_arrives_over_smtp(app: Flask, registry: Registry, clock,
                                                         smtp: SmtpServer, certificates: Certificates,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    """The whole path over real SMTP: the lead adds an account, the owner reads the link from the message."""
    caplog.set_level(logging.INFO)
    registry.mail = mailer(smtp.url(), certificates)
    lead = app.test_client()
    signed_in(lead, registry, role=Role.LEAD)
    token = csrf_token(lead, "/review/lead/reviewers")
    added = lead.post("/review/lead/reviewers", data={"csrf_token": token, "email": "nia@example.com",
                                                      "display_name": "Nia", "role": "reviewer"})
    assert added.status_code == 303
    [received] = smtp.received
    assert received.tls and received.rcpt_tos == ["nia@example.com"]
    path = setup_path(received.text)
    secret_part = path.rsplit("/", 1)[1]
    assert secret_part not in caplog.text and secret_part not in lead.get("/review/lead/reviewers").get_data(True)
    # Nia opens the link from her mailbox, chooses a password and sets up two-step verification.
    nia = app.test_client()
    form = nia.get(path).get_data(as_text=True)
    chosen = nia.post(path, data={"csrf_token": TOKEN.search(form).group(1), "password": "nias own passphrase",
                                  "confirm": "nias own passphrase"})
    assert chosen.status_code == 303 and chosen.headers["Location"].startswith("/review/sign-in/enrol")
    enrol = nia.get("/review/sign-in/enrol").get_data(as_text=True)
    secret = re.sub(r"\s", "", re.search(r'id="totp-secret">([^<]+)<', enrol).group(1))
    done = nia.post("/review/sign-in/enrol", data={"csrf_token": TOKEN.search(enrol).group(1), "secret": secret,
                                                   "code": pyotp.TOTP(secret).at(clock())})
    assert done.status_code == 200 and len(re.findall(r"<li><code>", done.get_data(as_text=True))) == 10
    # Each change was announced over SMTP too: the password she set, then her two-step set-up.
    assert [m.message["Subject"] for m in smtp.received[1:]] == ["Your password was set",
                                                                 "Two-step verification was set up"]
    assert all(m.rcpt_tos == ["nia@example.com"] for m in smtp.received)
