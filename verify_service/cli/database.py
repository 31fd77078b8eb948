"""``verify-service db``: the database schema (Alembic migrations)."""

from __future__ import annotations

import click

from verify_service.cli.common import load_app, main, registry_of


@main.group()
def db() -> None:
    """Database schema (Alembic migrations)."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Create or migrate the database schema."""
    from verify_service import migrate

    app = load_app()
    reg = registry_of(app)
    if reg.settings.database_is_sqlite:
        reg.settings.instance_dir.mkdir(parents=True, exist_ok=True)
    migrate.upgrade(reg.engine, revision)
    click.echo(f"database at revision {migrate.current_revision(reg.engine)}")


@db.command("current")
def db_current() -> None:
    """Show the database's revision and the code's head."""
    from verify_service import migrate

    reg = registry_of(load_app())
    click.echo(f"current: {migrate.current_revision(reg.engine)}  head: {migrate.head_revision()}")
