"""``verify-service catalog``: the release catalog of browser and OS versions."""

from __future__ import annotations

from pathlib import Path

import click

from verify_service.cli.common import main
from verify_service.settings import ConfigurationError


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
