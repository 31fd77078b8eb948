"""What every command shares: the ``verify-service`` group, and the app a command loads."""

from __future__ import annotations

import logging
from typing import Any

import click
from flask import Flask

from verify_service.settings import ConfigurationError

log = logging.getLogger("verify_service")


def load_app(*, serving: bool = False) -> Flask:
    """The app, with the settings from the environment (``serving``: see ``create_app``).

    Raises: ClickException naming what to fix.
    """
    from verify_service import create_app

    try:
        return create_app(serving=serving)
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from exc


def registry_of(app: Flask) -> Any:
    from verify_service.registry import KEY

    return app.extensions[KEY]


@click.group()
def main() -> None:
    """verify-service: video identity verification for the marketplace."""
    from verify_service.observability.logging import configure_logging, log_format_from_environ

    # Settings are not loaded yet; create_app reconfigures with settings.log_format.
    configure_logging(log_format_from_environ())
