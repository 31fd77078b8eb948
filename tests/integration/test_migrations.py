"""The Alembic migrations build exactly the schema the models describe, on both backends."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from tests.conftest import PG_URL
from verify_service import migrate
from verify_service.audit.models import AuditEntry
from verify_service.db import Base, make_engine


@pytest.fixture
def empty_engine(backend: str, tmp_path: Path) -> Iterator[sa.Engine]:
    """A brand-new, empty database (PostgreSQL: a throw-away database of its own)."""
    if backend == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'migrations.sqlite3'}")
        yield engine
        engine.dispose()
        return
    name = f"verify_migrations_{uuid.uuid4().hex[:12]}"
    admin = make_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine = make_engine(sa.make_url(PG_URL).set(database=name).render_as_string(hide_password=False))
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def test_upgrade_matches_the_models_and_downgrade_removes_everything(empty_engine: sa.Engine) -> None:
    assert migrate.current_revision(empty_engine) is None
    migrate.upgrade(empty_engine)
    assert migrate.current_revision(empty_engine) == migrate.head_revision()
    with empty_engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata)
    assert diff == []
    command.downgrade(migrate.alembic_config(empty_engine), "base")
    leftover = set(sa.inspect(empty_engine).get_table_names()) - {"alembic_version"}
    assert leftover == set()


def test_migrated_audit_log_is_append_only_and_has_its_head(empty_engine: sa.Engine) -> None:
    migrate.upgrade(empty_engine)
    with empty_engine.connect() as connection:
        assert connection.execute(sa.text("SELECT last_seq FROM audit_head WHERE id = 1")).scalar_one() == 0
    with empty_engine.begin() as connection:
        connection.execute(sa.insert(AuditEntry.__table__).values(
            seq=1, occurred_at=sa.func.now(), actor="t", action="a", details={}, prev_hash="0" * 64, hash="f" * 64))
    with pytest.raises(sa.exc.DBAPIError), empty_engine.begin() as connection:
        connection.execute(sa.text("UPDATE audit_entries SET actor = 'x'"))
    with pytest.raises(sa.exc.DBAPIError), empty_engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM audit_entries"))


def _triggers(engine: sa.Engine) -> set[str]:
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            return set(connection.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type = 'trigger'").scalars())
        return set(connection.exec_driver_sql(
            "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal").scalars())


def test_migration_and_create_all_install_the_same_guards(empty_engine: sa.Engine, engine: sa.Engine) -> None:
    """The migration inlines the trigger DDL; it must match what the models install."""
    migrate.upgrade(empty_engine)
    migrated = _triggers(empty_engine)
    assert migrated == _triggers(engine)
    assert "audit_head_forward_only" in migrated


def test_migrated_enums_take_every_value_the_models_write(empty_engine: sa.Engine) -> None:
    """A value added to an enum reaches the migrated CHECK constraint (create_all alone would hide a gap)."""
    from verify_service.staff.models import SignInThrottle, ThrottleKind

    migrate.upgrade(empty_engine)
    with empty_engine.begin() as connection:
        for kind in ThrottleKind:
            connection.execute(sa.insert(SignInThrottle.__table__).values(
                key_hash=f"k-{kind.value}", kind=kind.value, failures=1, last_failure_at=sa.func.now()))
    with pytest.raises(sa.exc.IntegrityError), empty_engine.begin() as connection:
        connection.execute(sa.insert(SignInThrottle.__table__).values(
            key_hash="k-bad", kind="made_up", failures=1, last_failure_at=sa.func.now()))
