"""The audit chain rewritten whole by someone with database access, caught by checkpoints (both backends).

The attacker changes who lifted a hold, recomputes every hash after it and the head (triggers off,
then put back): ``verify-service audit verify`` alone still says intact. The hourly job had signed the
chain's head with a key the database never holds and sent it out (log line, ``audit.checkpoint``
event on the reserved system account ``_audit``); ``audit verify --checkpoints`` with those copies
names the first checkpointed entry that no longer matches, and refuses a forged checkpoint.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from jobs.audit import checkpoint_audit_chain
from jobs.outbox import deliver_outbox
from tests.conftest import Api, FakeClock, assert_problem
from tests.functional.test_inbound_webhooks import URL, signed_headers
from tests.support.cli import run_cli
from tests.support.receiver import Receiver
from tests.support.staff import signed_in
from verify_service.accounts import services as accounts
from verify_service.accounts.errors import AccountNotFound
from verify_service.accounts.domain import HoldKind
from verify_service.accounts.models import Hold
from verify_service.accounts.schemas import ACCOUNT_ID_PATTERN
from verify_service.ops import checkpoints
from verify_service.audit.models import SQLITE_GUARDS, AuditEntry, AuditHead
from verify_service.audit.services import entry_hash
from verify_service.db import unit_of_work
from verify_service.registry import Registry
from verify_service.staff.models import Role
from verify_service.webhooks.models import OutboxEvent

entries, head = AuditEntry.__table__, AuditHead.__table__
GUARDED = ("audit_entries_no_update", "audit_head_forward_only")


def rewrite(engine: sa.Engine, seq: int, **changes: Any) -> None:
    """What an attacker with database access does: change entry ``seq``, recompute the chain after it, and
    put the triggers back, so nothing looks touched."""
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.exec_driver_sql("SET LOCAL session_replication_role = replica")  # triggers off
        else:
            for name in GUARDED:
                connection.exec_driver_sql(f"DROP TRIGGER {name}")
        rows = connection.execute(sa.select(entries).where(entries.c.seq >= seq).order_by(entries.c.seq)).all()
        prev_hash = connection.execute(sa.select(entries.c.hash).where(entries.c.seq == seq - 1)).scalar_one()
        for row in rows:
            values = {**row._mapping, **(changes if row.seq == seq else {}), "prev_hash": prev_hash}
            values["hash"] = entry_hash(**{k: v for k, v in values.items() if k != "hash"})
            connection.execute(sa.update(entries).where(entries.c.seq == row.seq)
                               .values(prev_hash=values["prev_hash"], hash=values["hash"],
                                       **(changes if row.seq == seq else {})))
            prev_hash = values["hash"]
        connection.execute(sa.update(head).where(head.c.id == 1).values(last_hash=prev_hash))
        if engine.dialect.name == "sqlite":
            for statement in SQLITE_GUARDS:
                if any(f"TRIGGER {name} " in statement for name in GUARDED):
                    connection.exec_driver_sql(statement)


def checkpoint_events(registry: Registry) -> list[OutboxEvent]:
    with registry.sessions() as session:
        return list(session.scalars(sa.select(OutboxEvent).where(OutboxEvent.type == checkpoints.EVENT_TYPE)
                                    .order_by(OutboxEvent.seq)))


def last_seq(registry: Registry) -> int:
    with registry.sessions() as session:
        return session.get_one(AuditHead, 1).last_seq


@pytest.fixture
def story(app: Flask, api: Api, registry: Registry, clock: FakeClock, receiver: Receiver,
          caplog: pytest.LogCaptureFixture) -> dict[str, Any]:
    """A hold placed, checkpointed, lifted by a lead, checkpointed, more work, checkpointed; all delivered."""
    registry.settings = registry.settings.replace(account_service_webhook_url=receiver.url)
    caplog.set_level(logging.INFO, logger="jobs")
    assert api.put_account("acc-1").status_code == 201
    assert api.request_verification("acc-1", {"reason": "new_account", "place_hold": True}).status_code == 201
    first = checkpoint_audit_chain(app)
    assert first is not None and checkpoint_audit_chain(app) is None  # nothing new: no second checkpoint

    clock.advance(hours=1)
    with unit_of_work(registry.sessions) as session:
        hold = session.scalars(sa.select(Hold)).one()
        accounts.lift_hold(session, hold.id, reason="verified by phone", actor="reviewer:7", now=clock())
    with registry.sessions() as session:
        lifted = session.scalars(sa.select(AuditEntry.seq).where(AuditEntry.action == "hold.lifted")).one()
    clock.advance(hours=1)
    second = checkpoint_audit_chain(app)
    clock.advance(hours=1)
    assert api.put_account("acc-2").status_code == 201
    third = checkpoint_audit_chain(app)
    assert second is not None and third is not None
    assert first.seq < lifted <= second.seq < third.seq == last_seq(registry)
    report = deliver_outbox(app)
    assert report is not None and report.dead == 0 and receiver.rejected == []
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("audit checkpoint ")]
    return {"checkpoints": [first, second, third], "lifted": lifted, "log": logged}


def export(tmp_path: Path, lines: list[str]) -> str:
    path = tmp_path / "checkpoints.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def test_a_chain_rewritten_whole_is_caught_by_the_checkpoints(app: Flask, registry: Registry, story: dict[str, Any],
                                                              receiver: Receiver, database_url: str,
                                                              tmp_path: Path) -> None:
    first, second, third = story["checkpoints"]
    events = [json.dumps({"type": d.type, "data": d.data}) for d in receiver.deliveries
              if d.type == checkpoints.EVENT_TYPE]
    assert len(events) == 3 and story["log"] == [checkpoints.log_line(c) for c in (first, second, third)]
    from_events = export(tmp_path, events)
    held = run_cli(database_url, tmp_path, "audit", "verify", "--checkpoints", from_events)
    assert held.exit_code == 0, held.output
    assert f"all 3 checkpoints hold (the latest at entry {third.seq})" in held.output

    rewrite(registry.engine, story["lifted"], actor="reviewer:9")  # someone else lifted it, says the log now

    alone = run_cli(database_url, tmp_path, "audit", "verify")
    assert alone.exit_code == 0 and "audit chain intact" in alone.output  # the hashes alone are fooled
    caught = run_cli(database_url, tmp_path, "audit", "verify", "--checkpoints", from_events)
    assert caught.exit_code == 1
    assert (f"audit chain REWRITTEN at entry {second.seq}: entry {second.seq} no longer has the hash checkpointed "
            f"at {second.at}: the chain was rewritten in entries {first.seq + 1}–{second.seq} (entry {first.seq}, "
            "checkpointed, still matches)") in caught.output
    # The log lines, piped in, tell the same.
    piped = run_cli(database_url, tmp_path, "audit", "verify", "--checkpoints", "-",
                    input="\n".join(f"2026-11-22 12:00:00,000 INFO jobs [run]: {line}" for line in story["log"]))
    assert piped.exit_code == 1 and f"REWRITTEN at entry {second.seq}" in piped.output

    # The next hourly run finds the entry it signed last changed, and signs nothing.
    with pytest.raises(checkpoints.ChainRewritten, match=f"entry {third.seq} no longer has the hash"):
        checkpoint_audit_chain(app)
    assert len(checkpoint_events(registry)) == 3


def test_a_forged_checkpoint_is_refused(app: Flask, registry: Registry, story: dict[str, Any], database_url: str,
                                        tmp_path: Path) -> None:
    first, second, third = story["checkpoints"]
    rewrite(registry.engine, story["lifted"], actor="reviewer:9")
    with registry.sessions() as session:
        rewritten = session.get_one(AuditEntry, second.seq).hash
    # The attacker's own checkpoint of the rewritten entry, signed without the key (a guess, or a key of theirs).
    forged = checkpoints.sign(second.seq, rewritten, at=registry.now(), key=b"not the checkpoint key")
    tampered = checkpoints.Checkpoint(third.seq, third.hash, third.at, "0" * 64)
    path = export(tmp_path, [first.to_json(), forged.to_json(), tampered.to_json()])
    refused = run_cli(database_url, tmp_path, "audit", "verify", "--checkpoints", path)
    assert refused.exit_code == 1
    assert "checkpoints REFUSED: the checkpoint on lines 2, 3 has a bad signature" in refused.output
    # Only the genuine one alone holds (the rewrite is after it).
    assert run_cli(database_url, tmp_path, "audit", "verify", "--checkpoints",
                   export(tmp_path, [first.to_json()])).exit_code == 0


def test_the_job_sends_one_checkpoint_per_new_head_on_the_audit_account(app: Flask, api: Api, registry: Registry,
                                                                       clock: FakeClock, database_url: str,
                                                                       tmp_path: Path) -> None:
    assert checkpoint_audit_chain(app) is None  # an empty chain: nothing to anchor
    assert api.put_account("acc-1").status_code == 201
    assert checkpoint_audit_chain(app) is not None
    for _ in range(3):
        clock.advance(hours=1)
        assert checkpoint_audit_chain(app) is None
    assert api.put_account("acc-1", name="Ana Maria Lima").status_code == 200
    assert checkpoint_audit_chain(app) is not None
    events = checkpoint_events(registry)
    assert [(e.account_id, e.seq, e.data["seq"]) for e in events] == [("_audit", 1, 1), ("_audit", 2, 2)]
    assert [e.data["checkpoint"]["seq"] for e in events] == [1, 2]
    key = registry.keyring.checkpoint_key()
    sent = [checkpoints.parse_line(json.dumps(e.data)) for e in events]
    assert all(c is not None and checkpoints.signature_holds(c, key) for c in sent)
    # An operator's checkpoint now: always written, printed as one JSON line.
    printed = run_cli(database_url, tmp_path, "audit", "checkpoint")
    assert printed.exit_code == 0, printed.output
    made = checkpoints.parse_line(printed.stdout.strip().splitlines()[-1])
    assert made is not None and made.seq == 2 and checkpoints.signature_holds(made, key)
    assert [e.seq for e in checkpoint_events(registry)] == [1, 2, 3]


def test_the_audit_account_is_no_account_of_the_marketplace(app: Flask, api: Api, registry: Registry,
                                                           client: Any) -> None:
    assert api.put_account("acc-1").status_code == 201
    assert checkpoint_audit_chain(app) is not None  # the system account exists now
    assert not re.fullmatch(ACCOUNT_ID_PATTERN, checkpoints.AUDIT_ACCOUNT_ID)

    # The API and the inbound webhooks refuse it as an id, exactly as an id that never existed.
    for account_id in (checkpoints.AUDIT_ACCOUNT_ID, "_never"):
        assert_problem(api.restrictions(account_id), 422, "validation_failed")
        assert_problem(api.put_account(account_id), 422, "validation_failed")
        assert_problem(api.request_verification(account_id), 422, "validation_failed")
    body = json.dumps({"type": "account.closed", "timestamp": "2026-11-22T09:00:00Z",
                       "data": {"account_id": checkpoints.AUDIT_ACCOUNT_ID}})
    secret = registry.settings.inbound_webhook_secrets[0]
    assert api.client.post(URL, data=body, headers={**signed_headers(secret, body),
                                                    "Content-Type": "application/json"}).status_code == 422

    # The services treat it as unknown: nobody can place a hold on it or read it as an account.
    with unit_of_work(registry.sessions) as session, pytest.raises(AccountNotFound):
        accounts.place_hold(session, checkpoints.AUDIT_ACCOUNT_ID, kind=HoldKind.MANUAL,
                            blocks=["submit_proposals"], reason="x", actor="test", now=registry.now())

    # The leads never see it.
    signed_in(client, registry, role=Role.LEAD)
    listed = client.get("/review/lead/accounts").get_data(as_text=True)
    assert "acc-1" in listed and checkpoints.AUDIT_ACCOUNT_ID not in listed
    assert checkpoints.AUDIT_ACCOUNT_ID not in client.get("/review/lead/accounts?q=_").get_data(as_text=True)
    assert client.get(f"/review/lead/accounts/{checkpoints.AUDIT_ACCOUNT_ID}").status_code == 404
