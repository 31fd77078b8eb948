"""The ``verify-service`` command.

``run | scheduler | db upgrade | db current | create-admin EMAIL | create-reviewer | seed-demo |
audit verify [--checkpoints FILE] | audit checkpoint | keys rotate | outbox deliver --once |
outbox redeliver ID|--dead | outbox enable | outbox status |
catalog refresh [--output PATH]``
"""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path
from typing import Any

import click
from flask import Flask

from verify_service.settings import ConfigurationError, development_secret

log = logging.getLogger("verify_service")


def _app() -> Flask:
    from verify_service import create_app

    try:
        return create_app()
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from exc


def _registry(app: Flask) -> Any:
    from verify_service.registry import KEY

    return app.extensions[KEY]


@click.group()
def main() -> None:
    """verify-service: video identity verification for the marketplace."""
    from verify_service.observability.logging import configure_logging, log_format_from_environ

    # Settings are not loaded yet; create_app reconfigures with settings.log_format.
    configure_logging(log_format_from_environ())


# ---------------------------------------------------------------- database

@main.group()
def db() -> None:
    """Database schema (Alembic migrations)."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Create or migrate the database schema."""
    from verify_service import migrate

    app = _app()
    reg = _registry(app)
    if reg.settings.database_is_sqlite:
        reg.settings.instance_dir.mkdir(parents=True, exist_ok=True)
    migrate.upgrade(reg.engine, revision)
    click.echo(f"database at revision {migrate.current_revision(reg.engine)}")


@db.command("current")
def db_current() -> None:
    """Show the database's revision and the code's head."""
    from verify_service import migrate

    reg = _registry(_app())
    click.echo(f"current: {migrate.current_revision(reg.engine)}  head: {migrate.head_revision()}")


# ---------------------------------------------------------------- staff and demo

@main.command("create-reviewer")
@click.option("--email", required=True)
@click.option("--name", "display_name", default="", help="Display name (defaults to the email).")
@click.option("--role", type=click.Choice(["reviewer", "lead", "admin"]), default="reviewer", show_default=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def create_reviewer_command(email: str, display_name: str, role: str, password_stdin: bool) -> None:
    """Create a staff account. Without --password-stdin it gets no password: a one-time setup link is
    printed (and emailed to EMAIL), where its owner chooses one and sets up two-step verification."""
    from verify_service.db import unit_of_work
    from verify_service.errors import DomainError
    from verify_service.staff.models import Role
    from verify_service.staff.passwords import create_reviewer

    if not password_stdin:
        _invite_from_command_line(email, display_name, role)
        return
    password = sys.stdin.readline().rstrip("\n")
    reg = _registry(_app())
    try:
        with unit_of_work(reg.sessions) as session:
            reviewer = create_reviewer(session, email=email, display_name=display_name, role=Role(role),
                                       password=password, actor="cli", now=reg.now())
    except DomainError as exc:
        raise click.ClickException(exc.detail) from exc
    click.echo(f"created {reviewer.role.value} {reviewer.email} (id {reviewer.id})")


@main.command("create-admin")
@click.argument("email")
@click.option("--name", "display_name", default="", help="Display name (defaults to the email).")
def create_admin_command(email: str, display_name: str) -> None:
    """Create an admin account (the first one, say) and print its one-time setup link; it is emailed too.

    No password is made or shown: whoever opens the link chooses it and sets up two-step verification.
    """
    _invite_from_command_line(email, display_name, "admin")


def _invite_from_command_line(email: str, display_name: str, role: str) -> None:
    """Create an account with no usable password, print its setup link, and email it to its address."""
    from verify_service.db import unit_of_work
    from verify_service.errors import DomainError
    from verify_service.staff.models import Role
    from verify_service.staff.invitations import LinkPolicy, invite_staff
    from verify_service.staff.mail import deliver

    reg = _registry(_app())
    links = LinkPolicy(base_url=reg.settings.base_url, hours=reg.settings.staff_invite_hours)
    try:
        with unit_of_work(reg.sessions) as session:
            invited = invite_staff(session, email=email, display_name=display_name, role=Role(role), by=None,
                                   actor="cli", links=links, now=reg.now())
    except DomainError as exc:
        raise click.ClickException(exc.detail) from exc
    person = invited.reviewer
    click.echo(f"created {person.role.value} {person.email} (id {person.id}); no password is set")
    # The link is printed for whoever runs this (the first admin has no one to email it for them); it works once.
    click.echo(f"setup link (works once, until {invited.link.expires_at:%Y-%m-%d %H:%M} UTC): "
               f"{invited.link.url(links.base_url)}")
    if deliver(invited.mail, reg.mailer):
        click.echo(f"the link was also emailed to {person.email}")
    else:
        click.echo(f"the link could not be emailed to {person.email} (see the log); give it to them yourself",
                   err=True)


@main.command("seed-demo")
def seed_demo_command() -> None:
    """Create the demo account and reviewer (idempotent; development only)."""
    from verify_service.db import unit_of_work
    from verify_service.demo import seed_demo

    reg = _registry(_app())
    if reg.settings.env != "development":
        raise click.ClickException("seed-demo only runs with VERIFY_ENV=development")
    password = development_secret(reg.settings, "demo_reviewer_password")
    assert password is not None  # development settings always generate it
    with unit_of_work(reg.sessions) as session:
        result = seed_demo(session, reviewer_password=password, now=reg.now())
    click.echo(f"demo data: account {'created' if result.account_created else 'present'}, "
               f"reviewer {'created' if result.reviewer_created else 'present'}")


# ---------------------------------------------------------------- audit

@main.group()
def audit() -> None:
    """The hash-chained audit log."""


@audit.command("verify")
@click.option("--checkpoints", "checkpoint_file", type=click.File("r", encoding="utf-8"), default=None,
              help="Also check these signed checkpoints (JSON lines: exported log lines or audit.checkpoint "
                   "events; '-' reads standard input).")
def audit_verify(checkpoint_file: Any) -> None:
    """Recompute the chain; exit 1 and name the first broken link if it was tampered with.

    With --checkpoints, also check that each checkpoint's signature holds and that the entry it names
    still has its hash: that finds a chain rewritten and recomputed by someone with database access.
    """
    from verify_service.audit.checkpoints import verify_checkpoints
    from verify_service.audit.services import verify_chain
    from verify_service.crypto import KeysUnavailable
    from verify_service.db import unit_of_work

    reg = _registry(_app())
    loaded = _read_checkpoints(checkpoint_file) if checkpoint_file is not None else None
    try:
        key = reg.keyring.checkpoint_key() if loaded is not None else b""
    except KeysUnavailable as exc:
        raise click.ClickException(str(exc)) from exc
    with unit_of_work(reg.sessions, write=False) as session:
        report = verify_chain(session)
        held = verify_checkpoints(session, loaded, key=key) if loaded is not None and report.ok else None
    if not report.ok:
        click.echo(f"audit chain BROKEN at entry {report.broken_at}: {report.problem} "
                   f"({report.checked} entries before it verified)", err=True)
        sys.exit(1)
    if held is None:
        click.echo(f"audit chain intact: {report.checked} entries verified")
        return
    if held.forged:
        click.echo(f"checkpoints REFUSED: {held.problem}", err=True)
        sys.exit(1)
    if not held.ok:
        click.echo(f"audit chain REWRITTEN at entry {held.broken_at}: {held.problem}; its own hashes agree "
                   f"({report.checked} entries), so they were recomputed after the change", err=True)
        sys.exit(1)
    click.echo(f"audit chain intact: {report.checked} entries verified; all {held.checked} checkpoints hold "
               f"(the latest at entry {held.intact_up_to})")


def _read_checkpoints(lines: Any) -> list[Any]:
    """``(line number, checkpoint)`` of every non-blank line. Raises: ClickException naming a bad line."""
    from verify_service.audit.checkpoints import MalformedCheckpoint, parse_line

    found = []
    for number, line in enumerate(lines, start=1):
        try:
            checkpoint = parse_line(line)
        except MalformedCheckpoint as exc:
            raise click.ClickException(f"{lines.name}, line {number}: {exc}") from exc
        if checkpoint is not None:
            found.append((number, checkpoint))
    if not found:
        # Never "all checkpoints hold" for an export that holds none (a wrong file, an empty log).
        raise click.ClickException(f"{lines.name} holds no checkpoint")
    return found


@audit.command("checkpoint")
def audit_checkpoint() -> None:
    """Sign the chain's head now: log it, send it as an audit.checkpoint event, and print it (one JSON line)."""
    from verify_service.audit.checkpoints import ChainRewritten, log_line, write_checkpoint
    from verify_service.crypto import KeysUnavailable
    from verify_service.db import unit_of_work

    reg = _registry(_app())
    try:
        key = reg.keyring.checkpoint_key()
        with unit_of_work(reg.sessions) as session:
            checkpoint = write_checkpoint(session, key=key, now=reg.now(), force=True)
    except (KeysUnavailable, ChainRewritten) as exc:
        raise click.ClickException(str(exc)) from exc
    if checkpoint is None:
        click.echo("the audit chain is empty: nothing to checkpoint yet", err=True)
        return
    log.info("%s", log_line(checkpoint), extra={"checkpoint": checkpoint.as_dict()})
    click.echo(checkpoint.to_json())


# ---------------------------------------------------------------- keys of secrets at rest

@main.group()
def keys() -> None:
    """The data keys that seal secrets at rest (VERIFY_DATA_KEYS)."""


@keys.command("rotate")
def keys_rotate() -> None:
    """Seal every secret at rest again under the newest data key (the first in VERIFY_DATA_KEYS).

    Idempotent: what is already under the newest key is left alone. Once it reports nothing
    unreadable, the older keys can be removed from VERIFY_DATA_KEYS.
    """
    from verify_service.crypto import KeysUnavailable
    from verify_service.db import unit_of_work
    from verify_service.key_rotation import rotate_data_keys

    reg = _registry(_app())
    try:
        with unit_of_work(reg.sessions) as session:
            report = rotate_data_keys(session, reg.keyring.sealer, actor="cli", now=reg.now())
    except KeysUnavailable as exc:
        raise click.ClickException(str(exc)) from exc
    for part in report.parts:
        click.echo(f"{part.what}: {part.resealed} re-sealed under the newest key, {part.sealed} sealed "
                   f"(were in clear), {part.current} already under it")
    if report.unreadable:
        click.echo(f"{len(report.unreadable)} sealed value(s) no configured key opens (the key they were sealed "
                   f"with was removed): {', '.join(report.unreadable)}", err=True)
        sys.exit(1)
    older = reg.keyring.sealer.key_count - 1
    click.echo("every secret at rest is sealed under the newest key"
               + (f": the {older} older key(s) in VERIFY_DATA_KEYS can be removed" if older else ""))


# ---------------------------------------------------------------- outbox

@main.group()
def outbox() -> None:
    """Webhooks to the account service."""


@outbox.command("deliver")
@click.option("--once", is_flag=True, required=True, help="Run one delivery pass and exit.")
def outbox_deliver(once: bool) -> None:
    """Deliver every event that is due now, in order."""
    from jobs.outbox import deliver_outbox

    report = deliver_outbox(_app())
    if report is None:
        raise click.ClickException("VERIFY_ACCOUNT_SERVICE_WEBHOOK_URL is not set: nowhere to deliver")
    if report.disabled:
        raise click.ClickException("delivery is disabled after a 410 Gone; run 'verify-service outbox enable'")
    click.echo(f"delivered {report.delivered}, failed {report.failed}, dead-lettered {report.dead}, "
               f"errors {report.errors}")


@outbox.command("redeliver")
@click.argument("event_id", required=False)
@click.option("--dead", "all_dead", is_flag=True, help="Every dead-lettered event.")
def outbox_redeliver(event_id: str | None, all_dead: bool) -> None:
    """Put a dead-lettered event (EVENT_ID) or all of them (--dead) back in line."""
    from verify_service.db import unit_of_work
    from verify_service.errors import DomainError
    from verify_service.webhooks.outbox import redeliver

    if bool(event_id) == all_dead:
        raise click.UsageError("give either an EVENT_ID or --dead")
    reg = _registry(_app())
    try:
        with unit_of_work(reg.sessions) as session:
            count = redeliver(session, event_id=event_id, all_dead=all_dead, actor="cli", now=reg.now())
    except DomainError as exc:
        raise click.ClickException(exc.detail) from exc
    click.echo(f"{count} event(s) queued for redelivery")


@outbox.command("enable")
def outbox_enable() -> None:
    """Resume delivery after the account service answered 410 Gone."""
    from verify_service.db import unit_of_work
    from verify_service.webhooks.outbox import enable_endpoint

    reg = _registry(_app())
    with unit_of_work(reg.sessions) as session:
        was_disabled = enable_endpoint(session, reg.settings.account_service_webhook_url, actor="cli",
                                       now=reg.now())
    click.echo("delivery enabled" if was_disabled else "delivery was not disabled")


@outbox.command("status")
def outbox_status_command() -> None:
    """Pending and dead-lettered events, and whether delivery is enabled."""
    from verify_service.db import unit_of_work
    from verify_service.webhooks.outbox import outbox_status

    reg = _registry(_app())
    with unit_of_work(reg.sessions, write=False) as session:
        status = outbox_status(session, reg.settings.account_service_webhook_url or None)
    click.echo(f"pending {status.pending}, dead-lettered {status.dead}, oldest pending "
               f"{status.oldest_pending_at.isoformat() if status.oldest_pending_at else '-'}")
    if status.endpoint_disabled_at:
        click.echo(f"DISABLED since {status.endpoint_disabled_at.isoformat()}: {status.endpoint_disabled_reason}")


# ---------------------------------------------------------------- Google Meet

@main.group()
def meet() -> None:
    """Google Meet."""


@meet.command("check")
@click.option("--host", default=None, help="The host user to test (default: the first configured).")
def meet_check_command(host: str | None) -> None:
    """Create and end a test space with the configured credentials; explain what is wrong if it fails."""
    from integrations.google_meet import MeetConfigurationError, meet_check

    reg = _registry(_app())
    try:
        gateway = reg.meet_gateway()
    except MeetConfigurationError as exc:
        raise click.ClickException(str(exc)) from exc
    host = host or gateway.hosts[0]
    click.echo(f"checking Meet ({reg.settings.meet_backend}) as {host} …")
    problems = meet_check(gateway, host)
    if problems:
        for problem in problems:
            click.echo(f"  ✗ {problem}", err=True)
        sys.exit(1)
    click.echo("  ✓ created, read and ended a test space: Meet works with these settings")


# ---------------------------------------------------------------- release catalog

@main.group()
def catalog() -> None:
    """The release catalog: which browser and OS majors exist, and when they shipped."""


@catalog.command("refresh")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The file to refresh (default: VERIFY_RELEASE_CATALOG, else instance/release_catalog.json).")
def catalog_refresh(output: Path | None) -> None:
    """Fetch the public release sources now; a refresh that looks wrong is refused and the file kept.

    The sources' base URLs can be replaced with VERIFY_RELEASE_SOURCE_CHROME, _FIREFOX,
    _ENDOFLIFE and _BROWSER_COMPAT (a mirror, or the test fixtures' server).
    """
    import datetime as dt
    import os

    from integrations.release_sources import SourceClient, SourceURLs, default_fetchers
    from verify_service.settings import load_settings
    from verify_service.support.catalog import PRODUCTS, CatalogError
    from verify_service.support.refresh import refresh_file
    from verify_service.support.store import refresh_target

    if output is None:
        try:
            output = refresh_target(load_settings())
        except ConfigurationError as exc:
            raise click.ClickException(str(exc)) from exc
    now = dt.datetime.now(dt.timezone.utc)
    fetchers = default_fetchers(SourceClient(), SourceURLs.from_environ(os.environ))
    try:
        result = refresh_file(output, fetchers, now)
    except (CatalogError, OSError) as exc:
        raise click.ClickException(f"refresh refused, {output} is unchanged: {exc}") from exc
    click.echo(f"release catalog written to {output}")
    for name in PRODUCTS:
        kept = "" if result.products[name].fetched_at == result.generated_at else "  (kept: its source failed)"
        click.echo(f"  {name:<9} supported {', '.join(result.supported(name))}{kept}")


# ---------------------------------------------------------------- processes

@main.command("scheduler")
@click.option("--beat-seconds", type=click.FloatRange(min=0.1), default=None, envvar="VERIFY_SCHEDULER_BEAT_SECONDS",
              help="How often the leader writes its heartbeat and checks its lock (default 10).")
@click.option("--poll-seconds", type=click.FloatRange(min=0.1), default=None, envvar="VERIFY_SCHEDULER_POLL_SECONDS",
              help="How often a standby tries to become the leader (default 5).")
def scheduler_command(beat_seconds: float | None, poll_seconds: float | None) -> None:
    """Run the job scheduler on its own (production: next to the gunicorn web processes).

    On PostgreSQL any number may run: one leads (an advisory lock), the others
    stand by and take over within seconds when it dies. On SQLite run only one.
    Its metrics (job runs, Meet errors) are served on
    ``VERIFY_SCHEDULER_METRICS_ADDR:VERIFY_SCHEDULER_METRICS_PORT`` (``/metrics``; port 0: off).
    """
    import os

    # This process's metrics are its own: never written into gunicorn's multiprocess directory (gunicorn
    # would sum them in, or delete them at its start). Before prometheus_client is first imported below.
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    from jobs.leader import BEAT_SECONDS, POLL_SECONDS, Leadership, lock_for
    from verify_service.observability.metrics import start_exporter

    app = _app()
    settings = _registry(app).settings
    if settings.database_is_sqlite:
        log.warning("SQLite: run this scheduler only if no 'verify-service run' uses the same database")
    if settings.scheduler_metrics_port:
        start_exporter(settings.scheduler_metrics_addr, settings.scheduler_metrics_port)
    leadership = Leadership(app, lock_for(settings.database_url), beat_seconds=beat_seconds or BEAT_SECONDS,
                            poll_seconds=poll_seconds or POLL_SECONDS)
    signal.signal(signal.SIGTERM, lambda *_: leadership.stop())
    try:
        leadership.run()
    except KeyboardInterrupt:
        leadership.stop()


@main.command("run")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True)
@click.option("--threads", default=8, show_default=True)
def run_command(host: str, port: int, threads: int) -> None:
    """The embedded default: web app and scheduler in one process (gunicorn, one worker).

    On PostgreSQL the embedded scheduler takes part in the leader election, so
    it never runs jobs at the same time as a separate ``verify-service scheduler``.
    """
    import os

    from verify_service.server import serve_embedded

    # Links (and the sandbox Meet endpoints) must point where this process listens.
    os.environ.setdefault("VERIFY_BASE_URL", local_base_url(host, port))
    app = _app()
    click.echo(banner(app, host, port))
    serve_embedded(app, host=host, port=port, threads=threads)


def local_base_url(host: str, port: int) -> str:
    """The URL a browser on this machine uses to reach ``host:port``."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else "[::1]" if host == "::" else host
    return f"http://{shown}:{port}"


def banner(app: Flask, host: str, port: int) -> str:
    """What ``run`` prints. Secrets appear only when they were generated for development."""
    import sqlalchemy as sa

    from verify_service.demo import DEMO_ACCOUNT_ID, DEMO_REVIEWER_EMAIL

    settings = _registry(app).settings
    base = settings.base_url
    show_key = "VERIFY_API_KEYS" in settings.generated
    key = settings.api_keys[0] if show_key else f"({len(settings.api_keys)} configured in VERIFY_API_KEYS)"
    database = sa.make_url(settings.database_url).render_as_string(hide_password=True)
    lines = [
        "",
        "verify-service is running — web app and scheduler in one process",
        f"  Web            {base}/",
        f"  API            {base}/api/v1/   (OpenAPI 3.1: {base}/api/v1/openapi.json)",
        f"  Health         {base}/healthz   {base}/readyz",
        f"  Database       {database}",
        f"  Meet backend   {settings.meet_backend}",
        f"  API key        {key}",
    ]
    password = development_secret(settings, "demo_reviewer_password")
    if password:
        lines.append(f"  Demo reviewer  {DEMO_REVIEWER_EMAIL} / {password}")
    if show_key:
        lines += [
            "",
            "  Try it:",
            f"    curl -H 'Authorization: Bearer {key}' {base}/api/v1/accounts/{DEMO_ACCOUNT_ID}/restrictions",
        ]
    if settings.generated:
        lines += [
            "",
            "  !! DEVELOPMENT SECRETS: " + ", ".join(settings.generated) + " were generated and are kept in",
            f"  !! {settings.instance_dir / 'dev-secrets.json'}. Never use them in production.",
        ]
    return "\n".join(lines) + "\n"


def register_flask_commands(app: Flask) -> None:
    """The same commands under ``flask --app verify_service`` (for those who prefer it)."""
    app.cli.add_command(db)
    app.cli.add_command(audit)
