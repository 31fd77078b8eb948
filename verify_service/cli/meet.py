"""``verify-service meet``: check the Google Meet configuration against the real API (or the sandbox)."""

from __future__ import annotations

import sys

import click

from verify_service.cli.common import load_app, main, registry_of


@main.group()
def meet() -> None:
    """Google Meet."""


@meet.command("check")
@click.option("--host", default=None, help="The host user to test (default: the first configured).")
def meet_check_command(host: str | None) -> None:
    """Create and end a test space with the configured credentials; explain what is wrong if it fails."""
    from integrations.google_meet import MeetConfigurationError, meet_check

    reg = registry_of(load_app())
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
