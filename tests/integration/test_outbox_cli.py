"""`verify-service outbox …` commands, run as real processes against the loopback receiver."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.conftest import ACCOUNT_SERVICE_SECRET, FakeClock
from tests.integration.test_cli import Cli
from tests.support.receiver import Receiver, always
from verify_service.accounts import services
from verify_service.accounts.domain import HoldKind
from verify_service.db import make_engine, make_sessionmaker, unit_of_work



@pytest.fixture
def cli(tmp_path: Path, receiver: Receiver) -> Cli:
    cli = Cli(tmp_path)
    cli.env.update(VERIFY_ACCOUNT_SERVICE_WEBHOOK_URL=receiver.url, VERIFY_ACCOUNT_SERVICE_WEBHOOK_SECRET=ACCOUNT_SERVICE_SECRET)
    return _with_two_events(cli)


def _with_two_events(cli: Cli) -> Cli:
    """The migrated database of ``cli``, with an account whose two holds wait in the outbox."""
    assert cli("db", "upgrade").returncode == 0
    engine = make_engine(f"sqlite:///{cli.database}")
    sessions, clock = make_sessionmaker(engine), FakeClock(start=None)
    clock.current = clock.current.replace(year=2020)  # long due by the real clock the commands use
    with unit_of_work(sessions) as session:
        services.upsert_account(session, "acc-1", services.Profile("A", "a@example.com", "PT"), actor="t",
                                now=clock())
        for reason in ("one", "two"):
            services.place_hold(session, "acc-1", kind=HoldKind.MANUAL, blocks=["appear_in_search"],
                                reason=reason, actor="t", now=clock())
    engine.dispose()
    return cli


def _sql(cli: Cli, statement: str) -> None:
    connection = sqlite3.connect(cli.database)
    with connection:
        connection.execute(statement)
    connection.close()


@pytest.mark.slow
def test_outbox_commands(cli: Cli, receiver: Receiver) -> None:
    receiver.policy = always(410)
    gone = cli("outbox", "deliver", "--once")
    assert gone.returncode == 1 and "outbox enable" in gone.stderr
    assert "DISABLED" in cli("outbox", "status").stdout
    assert cli("outbox", "enable").stdout.strip() == "delivery enabled"
    assert cli("outbox", "enable").stdout.strip() == "delivery was not disabled"

    receiver.policy = always(500)
    failed = cli("outbox", "deliver", "--once")
    assert failed.returncode == 0 and "failed 1" in failed.stdout

    _sql(cli, "UPDATE outbox_events SET status = 'dead' WHERE seq = 1")  # as if its retries ran out
    assert "dead-lettered 1" in cli("outbox", "status").stdout
    assert cli("outbox", "redeliver", "evt_nope").returncode == 1
    assert cli("outbox", "redeliver").returncode == 2  # neither an id nor --dead
    assert "1 event(s) queued" in cli("outbox", "redeliver", "--dead").stdout

    receiver.policy = always(204)
    assert "delivered 2" in cli("outbox", "deliver", "--once").stdout
    assert receiver.applied == {"acc-1": [1, 2]} and receiver.violations == []
    assert cli("audit", "verify").returncode == 0  # redeliver and enable were audited on the chain


@pytest.mark.slow
def test_outbox_status_names_a_missing_webhook_url(tmp_path: Path) -> None:
    """Without VERIFY_ACCOUNT_SERVICE_WEBHOOK_URL events only wait: the status says why, in words."""
    cli = _with_two_events(Cli(tmp_path))
    status = cli("outbox", "status")
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    assert lines[0].startswith("pending 2, dead-lettered 0")
    assert lines[1].startswith("2 webhook event(s) are pending because VERIFY_ACCOUNT_SERVICE_WEBHOOK_URL is not set")
    configured = cli("outbox", "status", VERIFY_ACCOUNT_SERVICE_WEBHOOK_URL="https://accounts.example/hooks")
    assert configured.returncode == 0 and "is not set" not in configured.stdout
