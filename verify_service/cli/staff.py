"""Staff accounts from the command line (``create-admin``, ``create-reviewer``, ``reset-password``), demo data."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from verify_service.cli.common import load_app, main, registry_of
from verify_service.dev_secrets import development_secret

if TYPE_CHECKING:
    from collections.abc import Callable

    from integrations.mail import Mailer
    from verify_service.staff.invitations import IssuedLink
    from verify_service.staff.mail import StaffMail


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
    _print_link(invited.link, links.base_url, invited.mail, reg.mailer)


def _print_link(link: IssuedLink, base_url: str, message: StaffMail, mailer: Callable[[], Mailer]) -> None:
    """Print a setup or reset link, then email it to the account's own address (after the commit)."""
    from verify_service.staff.mail import deliver

    # The link is printed for whoever runs this (the first admin has no one to email it for them); it works once.
    click.echo(f"setup link (works once, until {link.expires_at:%Y-%m-%d %H:%M} UTC): {link.url(base_url)}")
    if deliver(message, mailer):
        click.echo(f"the link was also emailed to {message.to}")
    else:
        click.echo(f"the link could not be emailed to {message.to} (see the log); give it to them yourself",
                   err=True)


@main.command("reset-password")
@click.argument("email")
@click.option("--two-step", "two_step_too", is_flag=True,
              help="Also clear two-step verification: the link then sets it up again.")
def reset_password_command(email: str, two_step_too: bool) -> None:
    """Reset a staff account's password (the first admin has no lead to ask) and print a one-time link.

    The old password stops working and every session of the account ends at once; the link (also emailed to
    the account's address) lets its owner choose a new one. Audited, with the command line as the actor.
    """
    from verify_service.db import unit_of_work
    from verify_service.errors import DomainError
    from verify_service.leads.staffing import reset_from_command_line
    from verify_service.staff.invitations import LinkPolicy

    reg = registry_of(load_app())
    links = LinkPolicy(base_url=reg.settings.base_url, hours=reg.settings.staff_invite_hours)
    try:
        with unit_of_work(reg.sessions) as db:
            person, link, message = reset_from_command_line(db, email, two_step_too=two_step_too, actor="cli",
                                                            links=links, now=reg.now())
    except DomainError as exc:
        raise click.ClickException(exc.detail) from exc
    what = "password and two-step verification" if two_step_too else "password"
    click.echo(f"reset the {what} of {person.role.value} {person.email} (id {person.id}); "
               "their sessions have ended")
    _print_link(link, links.base_url, message, reg.mailer)


@main.command("seed-demo")
def seed_demo_command() -> None:
    """Create the demo account (with an open verification request), reviewer and lead (idempotent; development only)."""
    from verify_service.db import unit_of_work
    from verify_service.demo import seed_demo

    reg = registry_of(load_app())
    if reg.settings.env != "development":
        raise click.ClickException("seed-demo only runs with VERIFY_ENV=development")
    reviewer_password = development_secret(reg.settings, "demo_reviewer_password")
    lead_password = development_secret(reg.settings, "demo_lead_password")
    assert reviewer_password and lead_password  # development settings always generate them
    with unit_of_work(reg.sessions) as db:
        result = seed_demo(db, reviewer_password=reviewer_password, lead_password=lead_password, now=reg.now())
    click.echo(f"demo data: {result.summary()}")
