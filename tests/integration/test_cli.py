"""The real ``verify-service`` console script, run as a subprocess (SQLite, development mode)."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from jobs import MEET_EVENT_SCHEDULES
from tests.integration.test_jobs import EXPECTED_JOBS
from verify_service.migrate import head_revision

HEAD = head_revision()

SCRIPT = Path(sys.executable).with_name("verify-service")
if not SCRIPT.exists():  # fall back to the project's venv
    SCRIPT = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "verify-service"

# Each of these runs the console script (a few seconds a process): slow, for make test-fast.
SUBPROCESS = pytest.mark.slow

PRODUCTION = {
    "VERIFY_ENV": "production",
    "VERIFY_SECRET_KEY": "k" * 48,
    "VERIFY_API_KEYS": "a" * 40,
    "VERIFY_INBOUND_WEBHOOK_SECRETS": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "VERIFY_ACCOUNT_SERVICE_WEBHOOK_URL": "https://x.example/hook",
    "VERIFY_ACCOUNT_SERVICE_WEBHOOK_SECRET": "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
    "VERIFY_IDENTITY_PEPPER": "pepper-" + "q" * 40,
    "VERIFY_DATA_KEYS": "HQfKzPv7wS2m4fJ1O0a8cXq9pE3rTbYuNdLkGhViW5U=",
    "VERIFY_AUDIT_CHECKPOINT_KEY": "checkpoint-" + "r" * 40,
    "VERIFY_SMTP_URL": "smtp://mailer:secret@smtp.corp.example:587",
    "VERIFY_BASE_URL": "https://verify.example",
    "VERIFY_GOOGLE_SERVICE_ACCOUNT_FILE": "/run/secrets/google-key.json",
    "VERIFY_MEET_HOST_USERS": "verify-host-1@corp.example",
}
SECRET_NAMES = ("VERIFY_SECRET_KEY", "VERIFY_API_KEYS", "VERIFY_INBOUND_WEBHOOK_SECRETS",
                "VERIFY_ACCOUNT_SERVICE_WEBHOOK_URL", "VERIFY_ACCOUNT_SERVICE_WEBHOOK_SECRET",
                "VERIFY_IDENTITY_PEPPER", "VERIFY_DATA_KEYS", "VERIFY_AUDIT_CHECKPOINT_KEY", "VERIFY_SMTP_URL")


class Cli:
    def __init__(self, tmp_path: Path) -> None:
        self.cwd = tmp_path
        self.instance = tmp_path / "instance"
        self.database = self.instance / "verify-service.sqlite3"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("VERIFY_")}
        self.env.update(VERIFY_ENV="development", VERIFY_INSTANCE_DIR=str(self.instance))

    def __call__(self, *args: str, stdin: str | None = None, timeout: float = 60,
                 **env: str) -> subprocess.CompletedProcess[str]:
        """Run the command in its own process group; kill the whole group if it hangs."""
        process = subprocess.Popen([str(SCRIPT), *args], cwd=self.cwd, env={**self.env, **env}, text=True,
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   start_new_session=True)
        try:
            out, err = process.communicate(stdin, timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            pytest.fail(f"verify-service {' '.join(args)} did not finish in {timeout}s")
        return subprocess.CompletedProcess(process.args, process.returncode, out, err)

    def query(self, sql: str) -> list[tuple[object, ...]]:
        connection = sqlite3.connect(self.database)
        try:
            return connection.execute(sql).fetchall()
        finally:
            connection.close()


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


@pytest.fixture(scope="module")
def migrated_instance(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An instance directory migrated by the real ``db upgrade``, made once for the module."""
    cli = Cli(tmp_path_factory.mktemp("migrated"))
    result = cli("db", "upgrade")
    assert result.returncode == 0, result.stderr
    return cli.instance


@pytest.fixture
def migrated(cli: Cli, migrated_instance: Path) -> Cli:
    """A copy of the migrated instance, without a `db upgrade` process per test (the command has its own test)."""
    shutil.copytree(migrated_instance, cli.instance)
    return cli


@SUBPROCESS
def test_db_upgrade_creates_the_database_and_prints_the_revision(cli: Cli) -> None:
    assert not cli.database.exists()
    result = cli("db", "upgrade")
    assert result.returncode == 0, result.stderr
    assert f"database at revision {HEAD}" in result.stdout
    assert cli.database.exists()
    assert cli.query("SELECT version_num FROM alembic_version") == [(HEAD,)]
    again = cli("db", "upgrade")
    assert again.returncode == 0 and f"database at revision {HEAD}" in again.stdout


@SUBPROCESS
def test_seed_demo_is_idempotent(migrated: Cli) -> None:
    first = migrated("seed-demo")
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == ("demo data: account created, reviewer created, lead created, "
                                    "open verification request created")
    second = migrated("seed-demo")
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == ("demo data: account present, reviewer present, lead present, "
                                     "open verification request present")
    assert migrated.query("SELECT email, role FROM reviewers ORDER BY id") == [
        ("demo.reviewer@example.com", "reviewer"), ("demo.lead@example.com", "lead")]
    assert migrated.query("SELECT count(*) FROM accounts") == [(1,)]
    # The README's curl examples find the demo account waiting for its verification, with its hold.
    assert migrated.query("SELECT account_id, status FROM verification_requests") == [("demo-freelancer", "open")]
    assert migrated.query("SELECT account_id, kind FROM holds WHERE lifted_at IS NULL") == [
        ("demo-freelancer", "verification_pending")]
    # Decided since (or canceled): a later seed does not open another.
    _execute(migrated, "UPDATE verification_requests SET status = 'canceled'")
    assert "open verification request present" in migrated("seed-demo").stdout
    assert migrated.query("SELECT count(*) FROM verification_requests") == [(1,)]


def _execute(cli: Cli, statement: str) -> None:
    connection = sqlite3.connect(cli.database)
    with connection:
        connection.execute(statement)
    connection.close()


SETUP_LINE = re.compile(r"^setup link \(works once, until (\S+ \S+) UTC\): (http://127\.0\.0\.1:8000/review/setup/"
                        r"([A-Za-z0-9_-]{40,}))$", re.MULTILINE)


def _setup_link(result: subprocess.CompletedProcess[str]) -> tuple[str, str]:
    """(the link, its token) from the one setup-link line the command printed."""
    found = SETUP_LINE.findall(result.stdout)
    assert len(found) == 1, result.stdout
    return found[0][1], found[0][2]


@SUBPROCESS
def test_create_reviewer_without_a_password_prints_a_setup_link(migrated: Cli) -> None:
    result = migrated("create-reviewer", "--email", "lead@example.com", "--role", "lead")
    assert result.returncode == 0, result.stderr
    assert "created lead lead@example.com" in result.stdout and "no password is set" in result.stdout
    assert "password (shown once)" not in result.stdout
    link, token = _setup_link(result)
    assert migrated.query("SELECT email, role FROM reviewers") == [("lead@example.com", "lead")]
    [(stored_hash,)] = migrated.query("SELECT password_hash FROM reviewers")
    assert str(stored_hash).startswith("!")  # no usable password until its owner sets one
    # Development has no mail server: the sandbox mailbox has the same link, for the owner's address only.
    assert migrated.query("SELECT recipient FROM sandbox_mail") == [("lead@example.com",)]
    assert link in migrated.query("SELECT body FROM sandbox_mail")[0][0]
    assert "emailed to lead@example.com" in result.stdout


@SUBPROCESS
def test_create_admin_prints_a_one_time_setup_link(migrated: Cli, tmp_path: Path) -> None:
    result = migrated("create-admin", "Root@Example.com", "--name", "Root")
    assert result.returncode == 0, result.stderr
    assert "created admin root@example.com" in result.stdout
    link, token = _setup_link(result)
    assert "password" not in result.stdout.replace("no password is set", "")
    [(role, name, stored_hash)] = migrated.query("SELECT role, display_name, password_hash FROM reviewers")
    assert (role, name) == ("admin", "Root") and str(stored_hash).startswith("!")
    [(token_hash, purpose, used_at, created, expires)] = migrated.query(
        "SELECT token_hash, purpose, used_at, created_at, expires_at FROM staff_invitations")
    assert token_hash == hashlib.sha256(token.encode()).hexdigest() and token not in str(token_hash)
    assert (purpose, used_at) == ("invitation", None)
    assert dt.datetime.fromisoformat(str(expires)) - dt.datetime.fromisoformat(str(created)) == dt.timedelta(hours=48)
    again = migrated("create-admin", "root@example.com")
    assert again.returncode != 0 and "already has a staff account" in again.stderr

    # The link works, once: its owner chooses the password, then sets up two-step verification.
    from tests.conftest import make_settings
    from verify_service import create_app
    from verify_service.registry import KEY

    app = create_app(make_settings(f"sqlite:///{migrated.database}", tmp_path / "web"))
    try:
        browser = app.test_client()
        path = link.removeprefix("http://127.0.0.1:8000")
        form = browser.get(path).get_data(as_text=True)
        assert "Set up your staff account" in form and "root@example.com" in form
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
        chosen = browser.post(path, data={"csrf_token": csrf, "password": "the admin's own passphrase",
                                          "confirm": "the admin's own passphrase"})
        assert chosen.status_code == 303 and chosen.headers["Location"].startswith("/review/sign-in/enrol")
        assert app.test_client().get(path).status_code == 410
    finally:
        app.extensions[KEY].engine.dispose()


@SUBPROCESS
def test_create_reviewer_twice_fails_clearly(migrated: Cli) -> None:
    assert migrated("create-reviewer", "--email", "lead@example.com", "--role", "lead").returncode == 0
    again = migrated("create-reviewer", "--email", "Lead@Example.com", "--role", "lead")
    assert again.returncode != 0
    assert "lead@example.com already has a staff account" in again.stderr
    assert "Traceback" not in again.stderr
    assert migrated.query("SELECT count(*) FROM reviewers") == [(1,)]


@SUBPROCESS
def test_create_reviewer_with_a_short_password_fails_clearly(migrated: Cli) -> None:
    result = migrated("create-reviewer", "--email", "r@example.com", "--password-stdin", stdin="too-short\n")
    assert result.returncode != 0
    assert "password: must be at least 12 characters" in result.stderr
    assert "Traceback" not in result.stderr
    assert migrated.query("SELECT count(*) FROM reviewers") == [(0,)]


@SUBPROCESS
def test_create_reviewer_with_a_password_from_stdin(migrated: Cli) -> None:
    result = migrated("create-reviewer", "--email", "r@example.com", "--password-stdin",
                      stdin="a-long-enough-password\n")
    assert result.returncode == 0, result.stderr
    assert "password (shown once)" not in result.stdout
    assert "a-long-enough-password" not in result.stdout
    assert "setup link" not in result.stdout and migrated.query("SELECT count(*) FROM staff_invitations") == [(0,)]


@SUBPROCESS
def test_audit_verify_detects_tampering(migrated: Cli) -> None:
    assert migrated("seed-demo").returncode == 0
    assert migrated("create-reviewer", "--email", "lead@example.com", "--role", "lead").returncode == 0
    entries = migrated.query("SELECT count(*) FROM audit_entries")[0][0]
    assert isinstance(entries, int) and entries >= 2

    intact = migrated("audit", "verify")
    assert intact.returncode == 0, intact.stderr
    assert f"audit chain intact: {entries} entries verified" in intact.stdout

    connection = sqlite3.connect(migrated.database)
    try:
        with connection:
            connection.execute("DROP TRIGGER audit_entries_no_update")
            connection.execute("UPDATE audit_entries SET actor = 'mallory' WHERE seq = 2")
    finally:
        connection.close()

    broken = migrated("audit", "verify")
    assert broken.returncode == 1
    assert "audit chain BROKEN at entry 2" in broken.stderr
    assert "entry 2 was altered" in broken.stderr
    assert "intact" not in broken.stdout


@SUBPROCESS
def test_audit_update_is_refused_while_the_trigger_is_in_place(migrated: Cli) -> None:
    assert migrated("seed-demo").returncode == 0
    connection = sqlite3.connect(migrated.database)
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"), connection:
            connection.execute("UPDATE audit_entries SET actor = 'mallory' WHERE seq = 1")
    finally:
        connection.close()
    assert migrated("audit", "verify").returncode == 0


@SUBPROCESS
def test_seed_demo_refuses_in_production(cli: Cli) -> None:
    result = cli("seed-demo", **PRODUCTION)
    assert result.returncode != 0
    assert "seed-demo only runs with VERIFY_ENV=development" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (cli.instance / "dev-secrets.json").exists()


@SUBPROCESS
def test_run_in_production_without_secrets_fails_before_serving(cli: Cli) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in PRODUCTION.items() if k not in SECRET_NAMES}
    result = cli("run", "--port", str(port), timeout=30, **env)
    assert result.returncode != 0
    for name in SECRET_NAMES:
        assert f"{name} is not set" in result.stderr
    assert "is running" not in result.stdout
    assert "Traceback" not in result.stderr
    assert not (cli.instance / "dev-secrets.json").exists()


def test_banner_never_shows_configured_secrets(tmp_path) -> None:
    """Only generated development secrets are printed; a configured key or DB password never is."""
    from tests.conftest import make_settings
    from verify_service import create_app
    from verify_service.cli.processes import banner

    configured = make_settings("postgresql+psycopg://svc:hunter2secret@db.internal/verify", tmp_path)
    text = banner(create_app(configured), "127.0.0.1", 8000)
    assert "hunter2secret" not in text
    assert not any(key in text for key in configured.api_keys)
    assert "2 configured in VERIFY_API_KEYS" in text

    generated = make_settings(f"sqlite:///{tmp_path / 'b.sqlite3'}", tmp_path, api_keys=(),
                              env="development")
    app = create_app(generated)
    from verify_service.registry import KEY

    key = app.extensions[KEY].settings.api_keys[0]
    text = banner(app, "127.0.0.1", 8000)
    assert key.startswith("dev_") and key in text
    # Where staff sign in, and the demo staff's sign-in details (generated for development only).
    assert "Review         http://127.0.0.1:8000/review" in text
    assert re.search(r"^  Demo reviewer  demo\.reviewer@example\.com / \S{12,}$", text, re.MULTILINE)
    assert re.search(r"^  Demo lead      demo\.lead@example\.com / \S{12,}$", text, re.MULTILINE)
    assert "Webhooks       nowhere: VERIFY_ACCOUNT_SERVICE_WEBHOOK_URL is not set" in text
    sandboxed = create_app(generated.replace(
        account_service_webhook_url="http://127.0.0.1:8000/sandbox/account-service"))
    assert ("Webhooks       http://127.0.0.1:8000/sandbox/account-service   (the built-in sandbox account service"
            in banner(sandboxed, "127.0.0.1", 8000))
    assert "Demo lead" not in banner(create_app(configured), "127.0.0.1", 8000)
    for made in (app, sandboxed):
        made.extensions[KEY].engine.dispose()


@SUBPROCESS
def test_scheduler_runs_its_jobs_and_stops_on_sigterm(migrated: Cli) -> None:
    """`verify-service scheduler` on its own: registers the jobs, then exits cleanly on SIGTERM."""
    import time

    log = migrated.cwd / "scheduler.log"
    with log.open("w") as out:
        process = subprocess.Popen([str(SCRIPT), "scheduler"], cwd=migrated.cwd, env=migrated.env, text=True,
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    # Development with the sandbox turns Meet's events on: their two jobs run too.
    starting = f"scheduler starting with {len(EXPECTED_JOBS) + len(MEET_EVENT_SCHEDULES)} jobs"
    try:
        deadline = time.monotonic() + 30
        while starting not in log.read_text() and time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            time.sleep(0.1)
        assert starting in log.read_text()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0, log.read_text()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.mark.parametrize(("host", "port", "expected"), [
    ("127.0.0.1", 8000, "http://127.0.0.1:8000"),
    ("0.0.0.0", 9001, "http://127.0.0.1:9001"),
    ("::", 8080, "http://[::1]:8080"),
    ("verify.local", 80, "http://verify.local:80"),
])
def test_run_derives_the_base_url_from_where_it_listens(host: str, port: int, expected: str) -> None:
    from verify_service.cli.processes import local_base_url

    assert local_base_url(host, port) == expected
