"""The long-running processes: ``run`` (web app and scheduler in one) and ``scheduler``."""

from __future__ import annotations

import signal

import click
from flask import Flask

from verify_service.cli.common import load_app, log, main, registry_of
from verify_service.dev_secrets import development_secret
from verify_service.settings import Settings


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

    app = load_app()
    settings = registry_of(app).settings
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
    if os.environ.get("VERIFY_ENV", "development") == "development" and \
            not os.environ.get("VERIFY_ACCOUNT_SERVICE_WEBHOOK_URL", "").strip():
        # Webhooks go to the built-in receiver, which verifies them with the same (development) secret.
        os.environ["VERIFY_ACCOUNT_SERVICE_WEBHOOK_URL"] = sandbox_webhook_url(os.environ["VERIFY_BASE_URL"])
    app = load_app(serving=True)
    click.echo(banner(app, host, port))
    serve_embedded(app, host=host, port=port, threads=threads)


def local_base_url(host: str, port: int) -> str:
    """The URL a browser on this machine uses to reach ``host:port``."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else "[::1]" if host == "::" else host
    return f"http://{shown}:{port}"


def sandbox_webhook_url(base_url: str) -> str:
    """The built-in sandbox account service (integrations/sandbox_account_service.py) under ``base_url``."""
    from integrations.sandbox_account_service import PATH

    return base_url.rstrip("/") + PATH


def banner(app: Flask, host: str, port: int) -> str:
    """What ``run`` prints. Secrets appear only when they were generated for development."""
    import sqlalchemy as sa

    from verify_service.demo import DEMO_ACCOUNT_ID

    settings = registry_of(app).settings
    base = settings.base_url
    show_key = "VERIFY_API_KEYS" in settings.generated
    key = settings.api_keys[0] if show_key else f"({len(settings.api_keys)} configured in VERIFY_API_KEYS)"
    database = sa.make_url(settings.database_url).render_as_string(hide_password=True)
    lines = [
        "",
        "verify-service is running — web app and scheduler in one process",
        f"  Web            {base}/",
        f"  Review         {base}/review   (reviewers and leads sign in here)",
        f"  API            {base}/api/v1/   (OpenAPI 3.1: {base}/api/v1/openapi.json)",
        f"  Health         {base}/healthz   {base}/readyz",
        f"  Database       {database}",
        f"  Meet backend   {settings.meet_backend}",
        f"  Webhooks       {webhook_line(settings)}",
        f"  API key        {key}",
        *demo_staff_lines(settings),
    ]
    if show_key:
        lines += [
            "",
            "  Try it (the demo account has an open verification request):",
            f"    curl -H 'Authorization: Bearer {key}' {base}/api/v1/accounts/{DEMO_ACCOUNT_ID}/restrictions",
        ]
    if settings.generated:
        lines += [
            "",
            "  !! DEVELOPMENT SECRETS: " + ", ".join(settings.generated) + " were generated and are kept in",
            f"  !! {settings.instance_dir / 'dev-secrets.json'}. Never use them in production.",
        ]
    return "\n".join(lines) + "\n"


def webhook_line(settings: Settings) -> str:
    """Where the outbox delivers, said so a developer sees when it is the built-in receiver, or nowhere."""
    url = settings.account_service_webhook_url
    if not url:
        return "nowhere: VERIFY_ACCOUNT_SERVICE_WEBHOOK_URL is not set, so events wait in the outbox"
    if url == sandbox_webhook_url(settings.base_url) and not settings.is_production:
        return f"{url}   (the built-in sandbox account service: open it to see what arrived)"
    return url


def demo_staff_lines(settings: Settings) -> list[str]:
    """The demo reviewer's and lead's sign-in details (development only: their passwords are generated)."""
    from verify_service.demo import DEMO_LEAD_EMAIL, DEMO_REVIEWER_EMAIL

    lines = []
    for label, email, secret in (("Demo reviewer", DEMO_REVIEWER_EMAIL, "demo_reviewer_password"),
                                 ("Demo lead", DEMO_LEAD_EMAIL, "demo_lead_password")):
        password = development_secret(settings, secret)
        if password:
            lines.append(f"  {label:<15}{email} / {password}")
    return lines
