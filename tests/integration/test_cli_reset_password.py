"""`verify-service reset-password`: the first admin's way back in, run as the real console script (SQLite)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tests.integration.test_cli import (SUBPROCESS, Cli, _execute, _setup_link, cli, migrated,  # noqa: F401
                                        migrated_instance)

PASSWORD = "the admin's old passphrase"
ACTIVE_SESSION = ("INSERT INTO staff_sessions (token_hash, reviewer_id, stage, created_at, last_seen_at, expires_at) "
                  "VALUES ('{hash}', 1, 'active', '2099-01-01 00:00:00', '2099-01-01 00:00:00', "
                  "'2099-01-02 00:00:00')")


def _admin_with_a_session(cli: Cli) -> None:
    made = cli("create-reviewer", "--email", "root@example.com", "--role", "admin", "--password-stdin",
               stdin=PASSWORD + "\n")
    assert made.returncode == 0, made.stderr
    _execute(cli, ACTIVE_SESSION.format(hash="a" * 64))


def _resets(cli: Cli) -> list[tuple[str, dict[str, object]]]:
    return [(str(actor), json.loads(str(details))) for actor, details in cli.query(
        "SELECT actor, details FROM audit_entries WHERE action = 'staff.password_reset' ORDER BY seq")]


@SUBPROCESS
def test_reset_password_prints_a_single_use_link_ends_the_sessions_and_is_audited(migrated: Cli,
                                                                                 tmp_path: Path) -> None:
    _admin_with_a_session(migrated)
    result = migrated("reset-password", "Root@Example.com")
    assert result.returncode == 0, result.stderr
    assert "reset the password of admin root@example.com" in result.stdout and "sessions have ended" in result.stdout
    link, token = _setup_link(result)
    [(stored_hash, totp)] = migrated.query("SELECT password_hash, totp_secret FROM reviewers")
    assert str(stored_hash).startswith("!") and totp is None  # the old password stops working at once
    assert migrated.query("SELECT count(*) FROM staff_sessions WHERE revoked_at IS NULL") == [(0,)]
    [(token_hash, purpose, created_by)] = migrated.query(
        "SELECT token_hash, purpose, created_by FROM staff_invitations WHERE superseded_at IS NULL")
    assert (token_hash, purpose, created_by) == (hashlib.sha256(token.encode()).hexdigest(), "password_reset", "cli")
    assert _resets(migrated) == [("cli", {"sessions_revoked": 1, "two_step_reset": False})]
    # Also mailed to the account's own address (the sandbox mailbox in development), the same link.
    [(recipient, body)] = migrated.query("SELECT recipient, body FROM sandbox_mail")
    assert recipient == "root@example.com" and link in body
    assert "emailed to root@example.com" in result.stdout

    from tests.conftest import make_settings
    from verify_service import create_app
    from verify_service.registry import KEY

    app = create_app(make_settings(f"sqlite:///{migrated.database}", tmp_path / "web"))
    try:
        assert app.test_client().get(link.removeprefix("http://127.0.0.1:8000")).status_code == 200
    finally:
        app.extensions[KEY].engine.dispose()


@SUBPROCESS
def test_reset_password_with_two_step_forces_re_enrolment_and_replaces_the_last_link(migrated: Cli) -> None:
    _admin_with_a_session(migrated)
    _execute(migrated, "UPDATE reviewers SET totp_secret = 'enrolled', totp_confirmed_at = '2026-01-01 00:00:00'")
    first = migrated("reset-password", "root@example.com")
    second = migrated("reset-password", "root@example.com", "--two-step")
    assert second.returncode == 0, second.stderr
    assert "reset the password and two-step verification of admin root@example.com" in second.stdout
    _, token = _setup_link(second)
    assert _setup_link(first)[1] != token
    assert migrated.query("SELECT totp_secret, totp_confirmed_at FROM reviewers") == [(None, None)]
    assert migrated.query("SELECT purpose FROM staff_invitations WHERE superseded_at IS NULL") == [("two_step_reset",)]
    assert migrated.query("SELECT count(*) FROM staff_invitations WHERE superseded_at IS NOT NULL") == [(1,)]
    assert _resets(migrated)[-1] == ("cli", {"sessions_revoked": 0, "two_step_reset": True})
    assert migrated.query("SELECT actor FROM audit_entries WHERE action = 'staff.two_step_reset'") == [("cli",)]
    assert migrated("audit", "verify").returncode == 0  # the resets are on the chain


@SUBPROCESS
def test_reset_password_refuses_an_unknown_email_clearly(migrated: Cli) -> None:
    _admin_with_a_session(migrated)
    before = migrated.query("SELECT count(*) FROM audit_entries")
    result = migrated("reset-password", "nobody@example.com")
    assert result.returncode == 1
    assert "no staff account has the email 'nobody@example.com'" in result.stderr
    assert "Traceback" not in result.stderr and "setup link" not in result.stdout
    assert migrated.query("SELECT count(*) FROM audit_entries") == before
    assert migrated.query("SELECT count(*) FROM staff_sessions WHERE revoked_at IS NULL") == [(1,)]
    [(stored_hash,)] = migrated.query("SELECT password_hash FROM reviewers")
    assert str(stored_hash).startswith("$argon2")
