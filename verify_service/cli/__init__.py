"""The ``verify-service`` command: one module per command group, each adding its commands to ``main``.

``run | scheduler | db upgrade | db current | create-admin EMAIL | create-reviewer | seed-demo |
audit verify [--checkpoints FILE] | audit checkpoint | keys rotate | outbox deliver --once |
outbox redeliver ID|--dead | outbox enable | outbox status | meet check |
catalog refresh [--output PATH]``
"""

from __future__ import annotations

from flask import Flask

# Importing each module adds its commands to main.
from verify_service.cli import audit, catalog, database, keys, meet, outbox, processes, staff  # noqa: F401
from verify_service.cli.common import main

__all__ = ["main", "register_flask_commands"]


def register_flask_commands(app: Flask) -> None:
    """The same commands under ``flask --app verify_service`` (for those who prefer it)."""
    app.cli.add_command(database.db)
    app.cli.add_command(audit.audit)
