"""What a pytest-xdist worker needs to stay out of the other workers' way.

``make test`` runs the suite on several worker processes (pytest-xdist).
Loopback ports are always picked free and files live under ``tmp_path``, so
those never collide; what must differ per worker is named here: each worker
has a PostgreSQL database of its own (``<VERIFY_TEST_DATABASE_URL's
database>_gw0``, ``…_gw1``, created when missing) and a Redis database
number of its own. Without xdist (``-n 0``, or a plain ``pytest``) the
given database is used as it is, and the worker number is 0.
"""

from __future__ import annotations

import os

import sqlalchemy as sa

# "gw0", "gw1", … in an xdist worker; empty in a run without workers (and in the xdist controller).
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")


def worker_number() -> int:
    return int(WORKER[2:]) if WORKER.startswith("gw") else 0


def worker_database_url(url: str) -> str:
    """``url`` with a database name of this worker's own (``url`` itself outside xdist or when empty)."""
    if not url or not WORKER:
        return url
    parsed = sa.make_url(url)
    return parsed.set(database=f"{parsed.database}_{WORKER}").render_as_string(hide_password=False)


def ensure_database(admin_url: str, url: str) -> None:
    """Create ``url``'s database, from a connection to ``admin_url``, if it does not exist yet.

    A worker's database is a scratch copy nobody keeps: its commits need not wait for the disk
    (``synchronous_commit = off`` loses at most the last moment's commits in a server crash, and
    changes nothing that a connection can observe), which saves a WAL flush on every commit.
    """
    name = sa.make_url(url).database
    if name == sa.make_url(admin_url).database:
        return
    # Imported here: this module is imported by tests/conftest.py before anything else of the service.
    from verify_service.db import make_engine

    admin = make_engine(admin_url, isolation_level="AUTOCOMMIT", pool_size=1)
    try:
        with admin.connect() as connection:
            exists = connection.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :name"),
                                        {"name": name}).scalar()
            if not exists:
                connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
            connection.exec_driver_sql(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    finally:
        admin.dispose()


def redis_database(first: int) -> int:
    """A Redis database number of this worker's own, counting from ``first`` (Redis has 16 by default)."""
    number = first + worker_number()
    if number > 15:
        raise RuntimeError(f"no Redis database left for xdist worker {WORKER} (from {first}, 16 in all): "
                           f"run with fewer workers")
    return number
