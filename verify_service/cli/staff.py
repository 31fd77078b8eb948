"""Staff accounts from the command line (``create-admin``, ``create-reviewer``) and the demo data (``seed-demo``)."""

from __future__ import annotations

import sys

import click

from verify_service.cli.common import load_app, main, registry_of
from verify_service.settings import development_secret


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
    reg = registry_of(load_app())
    try:
        with unit_of_work(reg.sessions) as db:
            reviewer = create_reviewer(db, email=email, display_name=display_name, role=Role(role),
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

    reg = registry_of(load_app())
    links = LinkPolicy(base_url=reg.settings.base_url, hours=reg.settings.staff_invite_hours)
    try:
        with unit_of_work(reg.sessions) as db:
            invited = invite_staff(db, email=email, display_name=display_name, role=Role(role), by=None,
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

    reg = registry_of(load_app())
    if reg.settings.env != "development":
        raise click.ClickException("seed-demo only runs with VERIFY_ENV=development")
    password = development_secret(reg.settings, "demo_reviewer_password")
    assert password is not None  # development settings always generate it
    with unit_of_work(reg.sessions) as db:
        result = seed_demo(db, reviewer_password=password, now=reg.now())
    click.echo(f"demo data: account {'created' if result.account_created else 'present'}, "
               f"reviewer {'created' if result.reviewer_created else 'present'}")
