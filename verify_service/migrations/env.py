"""Alembic environment: runs on the engine handed over by :mod:`verify_service.migrate`."""

from __future__ import annotations

from alembic import context

import verify_service.models  # noqa: F401  (fills Base.metadata)
from verify_service.db import Base

engine = context.config.attributes["engine"]

with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata,
                      render_as_batch=connection.dialect.name == "sqlite", compare_type=True)
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
