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
