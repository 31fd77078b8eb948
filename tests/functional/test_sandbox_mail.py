"""/sandbox/mail: the mail the sandbox mailbox kept (development and testing); absent in production."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from integrations.mail import SmtpMailer
from integrations.sandbox_mail import SandboxMailbox
from tests.conftest import make_settings
from tests.support.mail import mailbox
from tests.support.sandbox import development_and_production
from verify_service import create_app
from verify_service.registry import KEY, Registry


def test_the_mailbox_page_lists_messages_with_their_links(app: Flask, registry: Registry) -> None:
    mailer = registry.mailer()
    assert isinstance(mailer, SandboxMailbox)  # VERIFY_SMTP_URL is empty in tests
    assert "No mail yet" in app.test_client().get("/sandbox/mail").get_data(as_text=True)
    mailer.send("nia@example.com", "Set up your staff account",
                "Open https://verify.example/review/setup/abc123 <now>", purpose="staff_invitation")
    mailer.send("tess@example.com", "Your role changed", "Your role is now lead.", purpose="staff_notice")
    page = app.test_client().get("/sandbox/mail")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert 'href="https://verify.example/review/setup/abc123"' in html and "&lt;now&gt;" in html
    assert html.index("Your role changed") < html.index("Set up your staff account")  # newest first
    assert "no email was sent" in html and "<script" not in html
    assert [m.recipient for m in mailbox(registry)] == ["nia@example.com", "tess@example.com"]


def test_other_processes_see_the_same_mailbox(app: Flask, registry: Registry, database_url: str,
                                              tmp_path: Path) -> None:
    """The mailbox is in the database: a second app (another worker, the CLI) lists the first one's mail."""
    registry.mailer().send("nia@example.com", "Hello", "text")
    other = create_app(make_settings(database_url, tmp_path / "other"))
    try:
        assert "nia@example.com" in other.test_client().get("/sandbox/mail").get_data(as_text=True)
    finally:
        other.extensions[KEY].engine.dispose()


def test_development_serves_it_and_production_does_not(database_url: str, tmp_path: Path) -> None:
    with development_and_production(database_url, tmp_path) as (development, production):
        assert development.test_client().get("/sandbox/mail").status_code == 200
        assert production.test_client().get("/sandbox/mail").status_code == 404
        assert not any(rule.rule.startswith("/sandbox") for rule in production.url_map.iter_rules())
        assert isinstance(production.extensions[KEY].mailer(), SmtpMailer)
