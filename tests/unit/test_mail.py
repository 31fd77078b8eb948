"""The mail settings and the SMTP URL (no server: see tests/integration/test_mail.py for the real one)."""

from __future__ import annotations

from pathlib import Path

import pytest

from integrations.mail import MailError, SmtpMailer, compose, make_mailer, parse_smtp_url
from integrations.sandbox_mail import SandboxMailbox, with_links
from tests.unit.test_settings import production
from verify_service.settings import ConfigurationError, load_settings


def test_smtp_urls_name_starttls_or_implicit_tls_with_default_ports() -> None:
    plain = parse_smtp_url("smtp://mailer:p%40ss%2Fword@smtp.corp.example")
    assert (plain.host, plain.port, plain.implicit_tls) == ("smtp.corp.example", 587, False)
    assert (plain.username, plain.password) == ("mailer", "p@ss/word")
    tls = parse_smtp_url("smtps://smtp.corp.example")
    assert (tls.port, tls.implicit_tls, tls.username) == (465, True, "")
    assert parse_smtp_url("SMTP://relay:2525").port == 2525
    assert "p@ss" not in repr(plain)  # the password never shows up in a repr (or a log of one)
    for bad in ("http://smtp.corp.example", "smtp://", "smtp.corp.example:587", "smtp://host:port", ""):
        with pytest.raises(MailError):
            parse_smtp_url(bad)


def test_settings_refuse_an_smtp_url_of_another_kind(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="VERIFY_SMTP_URL must be smtp://"):
        load_settings(production(tmp_path, VERIFY_SMTP_URL="http://mail.corp.example"))
    with pytest.raises(ConfigurationError, match="VERIFY_SMTP_URL is not set"):
        load_settings(production(tmp_path, VERIFY_SMTP_URL=""))
    settings = load_settings(production(tmp_path, VERIFY_MAIL_FROM="Verify <verify@corp.example>",
                                        VERIFY_STAFF_INVITE_HOURS="24"))
    assert (settings.mail_from, settings.staff_invite_hours) == ("Verify <verify@corp.example>", 24)


def test_the_settings_choose_smtp_or_the_sandbox(tmp_path: Path) -> None:
    settings = load_settings(production(tmp_path))
    assert isinstance(make_mailer(settings, None, None), SmtpMailer)  # type: ignore[arg-type]
    testing = settings.replace(env="testing", smtp_url="")
    assert isinstance(make_mailer(testing, None, None), SandboxMailbox)  # type: ignore[arg-type]


def test_messages_refuse_header_injection() -> None:
    message = compose("verify <no-reply@verify.example>", "nia@example.com", "Hello", "text")
    assert message["Message-ID"].endswith("@verify.example>")
    for to, subject in (("nia@example.com", "Hi\r\nBcc: eve@example.com"), ("nia@example.com\nBcc: e@x", "Hi"),
                        ("not an address", "Hi")):
        with pytest.raises(MailError):
            compose("verify <no-reply@verify.example>", to, subject, "text")


def test_the_sandbox_page_links_urls_and_escapes_the_rest() -> None:
    html = str(with_links('Open <b>this</b>: https://verify.example/review/setup/abc\nthen "done"'))
    assert '<a href="https://verify.example/review/setup/abc">https://verify.example/review/setup/abc</a>' in html
    assert "&lt;b&gt;this&lt;/b&gt;" in html and "&#34;done&#34;" in html


def test_logs_scrub_setup_link_tokens_from_paths() -> None:
    from verify_service.observability.logging import scrub

    line = "GET /review/setup/3Ws4752MnxmKKWN8qHoDz5OWCTMp8b5ttXkgHxgUuds HTTP/1.1 200"
    assert scrub(line) == "GET /review/setup/[redacted] HTTP/1.1 200"
