"""``verify-service keys``: the data keys that seal secrets at rest."""

from __future__ import annotations

import sys

import click

from verify_service.cli.common import load_app, main, registry_of


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

    reg = registry_of(load_app())
    try:
        with unit_of_work(reg.sessions) as db:
            report = rotate_data_keys(db, reg.keyring.sealer, actor="cli", now=reg.now())
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
