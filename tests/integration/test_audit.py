"""The hash-chained, append-only audit log (both backends)."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from verify_service.audit.models import GENESIS_HASH, AuditEntry, AuditHead
from verify_service.audit.services import ChainReport, entry_hash, record, verify_chain
from verify_service.db import unit_of_work

entries = AuditEntry.__table__


def append(sessions: sessionmaker[Session], clock: Any, count: int) -> None:
    for i in range(count):
        clock.advance(seconds=1, microseconds=1234)
        with unit_of_work(sessions) as session:
            record(session, actor=f"reviewer:{i % 2 + 1}", action="test.event", now=clock(),
                   account_id=f"acc-{i}", subject_type="thing", subject_id=str(i), details={"n": i, "kind": "x"})


def verify(sessions: sessionmaker[Session], **kwargs: Any) -> ChainReport:
    with unit_of_work(sessions, write=False) as session:
        return verify_chain(session, **kwargs)


def rows(engine: sa.Engine) -> list[sa.Row[Any]]:
    with engine.connect() as connection:
        return list(connection.execute(sa.select(entries).order_by(entries.c.seq)))


def tamper(engine: sa.Engine, statement: sa.Executable) -> None:
    """What a privileged tamperer (a DBA, a restore) can do past the triggers."""
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.exec_driver_sql("SET LOCAL session_replication_role = replica")
        else:
            for name in ("audit_entries_no_update", "audit_entries_no_delete", "audit_head_no_delete",
                         "audit_head_forward_only"):
                connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}")
        assert connection.execute(statement).rowcount == 1


# ---------------------------------------------------------------- appending

def test_empty_chain_verifies(sessions: sessionmaker[Session]) -> None:
    report = verify(sessions)
    assert report.ok and report.checked == 0 and report.problem is None


def test_chain_of_five_verifies(sessions: sessionmaker[Session], clock: Any) -> None:
    append(sessions, clock, 5)
    report = verify(sessions)
    assert report.ok, report.problem
    assert report.checked == 5


def test_verification_works_across_batches(sessions: sessionmaker[Session], clock: Any) -> None:
    append(sessions, clock, 7)
    report = verify(sessions, batch_size=2)
    assert report.ok and report.checked == 7


def test_seq_is_gapless_and_links_each_hash(sessions: sessionmaker[Session], clock: Any,
                                            engine: sa.Engine) -> None:
    append(sessions, clock, 5)
    stored = rows(engine)
    assert [row.seq for row in stored] == [1, 2, 3, 4, 5]
    assert stored[0].prev_hash == GENESIS_HASH
    for previous, current in zip(stored, stored[1:]):
        assert current.prev_hash == previous.hash
    assert len({row.hash for row in stored}) == 5
    with sessions() as session:
        head = session.get(AuditHead, 1)
        assert head is not None
        assert (head.last_seq, head.last_hash) == (5, stored[-1].hash)


def test_stored_hash_is_the_recomputed_hash(sessions: sessionmaker[Session], clock: Any) -> None:
    append(sessions, clock, 2)
    with sessions() as session:
        entry = session.get(AuditEntry, 2)
        assert entry is not None
        assert entry.details == {"n": 1, "kind": "x"}
        assert entry.hash == entry_hash(
            seq=2, occurred_at=entry.occurred_at, actor=entry.actor, action=entry.action,
            account_id=entry.account_id, subject_type=entry.subject_type, subject_id=entry.subject_id,
            details=entry.details, prev_hash=entry.prev_hash)


def test_several_entries_in_one_unit_of_work(sessions: sessionmaker[Session], clock: Any) -> None:
    with unit_of_work(sessions) as session:
        first = record(session, actor="cli", action="a", now=clock())
        second = record(session, actor="cli", action="b", now=clock())
    assert (first.seq, second.seq) == (1, 2)
    assert second.prev_hash == first.hash
    assert first.details == {}
    assert verify(sessions).checked == 2


def test_a_rolled_back_entry_leaves_no_gap(sessions: sessionmaker[Session], clock: Any) -> None:
    append(sessions, clock, 1)
    with pytest.raises(RuntimeError), unit_of_work(sessions) as session:
        record(session, actor="cli", action="doomed", now=clock())
        raise RuntimeError("abort")
    append(sessions, clock, 1)
    with sessions() as session:
        assert session.scalars(sa.select(AuditEntry.seq).order_by(AuditEntry.seq)).all() == [1, 2]
    assert verify(sessions).ok


# ---------------------------------------------------------------- append-only

@pytest.mark.parametrize("statement", [
    sa.update(entries).where(entries.c.seq == 2).values(actor="mallory"),
    sa.update(entries).values(details={"n": 0}),
    sa.delete(entries).where(entries.c.seq == 2),
    sa.delete(entries),
], ids=["update-one", "update-all", "delete-one", "delete-all"])
def test_database_refuses_update_and_delete(sessions: sessionmaker[Session], clock: Any, engine: sa.Engine,
                                            statement: sa.Executable) -> None:
    append(sessions, clock, 3)
    before = rows(engine)
    with pytest.raises(sa.exc.DBAPIError) as info, engine.begin() as connection:
        connection.execute(statement)
    assert issubclass(info.type, sa.exc.DBAPIError)
    assert "append-only" in str(info.value)
    assert rows(engine) == before
    assert verify(sessions).checked == 3


def test_orm_delete_is_refused_too(sessions: sessionmaker[Session], clock: Any) -> None:
    append(sessions, clock, 2)
    with pytest.raises(sa.exc.DBAPIError), unit_of_work(sessions) as session:
        entry = session.get(AuditEntry, 1)
        session.delete(entry)
    assert verify(sessions).checked == 2


# ---------------------------------------------------------------- tamper detection

def test_altered_details_are_detected(sessions: sessionmaker[Session], clock: Any, engine: sa.Engine) -> None:
    append(sessions, clock, 5)
    tamper(engine, sa.update(entries).where(entries.c.seq == 3).values(details={"n": 99, "kind": "x"}))
    report = verify(sessions)
    assert not report.ok
    assert report.broken_at == 3
    assert report.checked == 2
    assert "altered" in (report.problem or "")


def test_altered_actor_is_detected(sessions: sessionmaker[Session], clock: Any, engine: sa.Engine) -> None:
    append(sessions, clock, 5)
    tamper(engine, sa.update(entries).where(entries.c.seq == 4).values(actor="reviewer:9"))
    report = verify(sessions)
    assert (report.broken_at, report.checked) == (4, 3)
    assert "altered" in (report.problem or "")


def test_deleted_middle_entry_is_detected(sessions: sessionmaker[Session], clock: Any,
                                          engine: sa.Engine) -> None:
    append(sessions, clock, 5)
    tamper(engine, sa.delete(entries).where(entries.c.seq == 2))
    report = verify(sessions)
    assert report.broken_at == 2
    assert report.checked == 1
    assert "missing" in (report.problem or "")


def test_deleted_last_entry_is_detected_through_the_head(sessions: sessionmaker[Session], clock: Any,
                                                         engine: sa.Engine) -> None:
    append(sessions, clock, 5)
    tamper(engine, sa.delete(entries).where(entries.c.seq == 5))
    report = verify(sessions)
    assert not report.ok
    assert report.checked == 4
    assert report.broken_at == 5
    assert "removed from the end" in (report.problem or "")


def test_relinked_entry_with_consistent_hash_is_detected(sessions: sessionmaker[Session], clock: Any,
                                                         engine: sa.Engine) -> None:
    append(sessions, clock, 5)
    third = rows(engine)[2]
    forged_prev = "f" * 64
    forged_hash = entry_hash(seq=3, occurred_at=third.occurred_at, actor=third.actor, action=third.action,
                             account_id=third.account_id, subject_type=third.subject_type,
                             subject_id=third.subject_id, details=third.details, prev_hash=forged_prev)
    tamper(engine, sa.update(entries).where(entries.c.seq == 3).values(prev_hash=forged_prev, hash=forged_hash))
    report = verify(sessions)
    assert report.broken_at == 3
    assert report.checked == 2
    assert "does not link" in (report.problem or "")


# ---------------------------------------------------------------- the guards

def _refused(engine: sa.Engine, sql: str) -> None:
    with pytest.raises(sa.exc.DBAPIError), engine.begin() as connection:
        connection.exec_driver_sql(sql)


def test_replacing_an_entry_is_refused(sessions: sessionmaker[Session], clock: Any, engine: sa.Engine) -> None:
    append(sessions, clock, 3)
    original = rows(engine)[1]
    if engine.dialect.name == "sqlite":
        # Conflict resolution deletes without firing DELETE triggers; the INSERT guard catches it.
        _refused(engine, "INSERT OR REPLACE INTO audit_entries SELECT seq, occurred_at, 'mallory', action, "
                         "account_id, subject_type, subject_id, details, prev_hash, hash "
                         "FROM audit_entries WHERE seq = 2")
    else:
        _refused(engine, "INSERT INTO audit_entries SELECT * FROM audit_entries WHERE seq = 2 "
                         "ON CONFLICT (seq) DO UPDATE SET actor = 'mallory'")
    assert rows(engine)[1] == original


def test_wiping_the_tables_at_once_is_refused(sessions: sessionmaker[Session], clock: Any, engine: sa.Engine,
                                             backend: str) -> None:
    """Each backend's way to empty a table in one go: TRUNCATE on PostgreSQL (which skips row
    triggers, hence its own guard), an unconditional DELETE on SQLite (its TRUNCATE optimisation)."""
    append(sessions, clock, 2)
    wipe = "TRUNCATE {}" if backend == "postgresql" else "DELETE FROM {}"
    _refused(engine, wipe.format("audit_entries"))
    _refused(engine, wipe.format("audit_head"))
    assert len(rows(engine)) == 2


@pytest.mark.parametrize("sql", [
    "DELETE FROM audit_head",
    "UPDATE audit_head SET last_seq = 0",
    "UPDATE audit_head SET last_seq = last_seq + 2",
    "INSERT INTO audit_head (id, last_seq, last_hash) VALUES (2, 0, 'x')",
])
def test_the_head_only_moves_forward(sessions: sessionmaker[Session], clock: Any, engine: sa.Engine,
                                     sql: str) -> None:
    append(sessions, clock, 2)
    _refused(engine, sql)
    assert verify(sessions).ok


def test_a_missing_head_is_a_broken_chain(sessions: sessionmaker[Session], clock: Any, engine: sa.Engine) -> None:
    append(sessions, clock, 3)
    tamper(engine, sa.delete(entries).where(entries.c.seq == 3))
    tamper(engine, sa.delete(AuditHead.__table__))
    report = verify(sessions)
    assert not report.ok
    assert report.broken_at == 3
    assert "head" in (report.problem or "")
