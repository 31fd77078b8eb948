"""Outbox relay throughput to a loopback receiver, next to a bare loop of signed POSTs on the same machine.

    make bench                                   # every tests/bench/bench_*.py
    .venv/bin/python tests/bench/bench_relay.py [--events 10000] [--accounts 1000] [--repeat 3] [--check]

The database is ``VERIFY_BENCH_DATABASE_URL`` (default
postgresql+psycopg://postgres@127.0.0.1:5432/bench_pages, created and migrated
when missing; ``--database-url sqlite:///...`` works too). The bench writes its
own accounts (``bench-relay-*``) and outbox events straight into the tables,
and removes them again on the next run; other data in the database stays.

Rows:
  anchor  a bare loop: each event signed and POSTed by the relay's own sender
          (integrations/account_service.WebhookSender: standardwebhooks, one
          kept-alive ``requests.Session``); no database. The floor the relay
          pays per delivery.
  relay   the real relay (jobs/outbox.py ``deliver_outbox`` → Relay.run_once,
          its default worker pool) delivering the same events from the outbox
          table: claims, per-account order, recording every acknowledgement.

The receiver runs in its own process (a threaded HTTP/1.1 server with
keep-alive), verifies every signature and checks per-account order: an
account's seq n+1 must never arrive before n was acknowledged, and in the end
every account must have had seqs 1..n acknowledged. Target: relay >= 0.5 x
anchor, with order held. Not a test: pytest does not collect tests/bench.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import multiprocessing
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from standardwebhooks import Webhook  # noqa: E402

from integrations.account_service import OutboundMessage, WebhookSender  # noqa: E402
from jobs.outbox import deliver_outbox, relay_for  # noqa: E402
from tests.bench.support import (  # noqa: E402
    PAGES_DATABASE_URL, database_url, describe_machine, prepared_engine)
from tests.conftest import make_settings  # noqa: E402
from verify_service import create_app  # noqa: E402
from verify_service.accounts.models import Account  # noqa: E402
from verify_service.registry import KEY  # noqa: E402
from verify_service.webhooks.models import DeliveryStatus, OutboxEvent  # noqa: E402

logging.getLogger("jobs").setLevel(logging.WARNING)  # a line per relay pass is noise here

RATIO_TARGET = 0.5
SECRET = "whsec_" + "QmVuY2hSZWxheVNlY3JldEtleTAxMjM0NTY="
PREFIX = "bench-relay-"


# ---------------------------------------------------------------- the receiver (its own process)

class _Ledger:
    """What the receiver saw: per-account acknowledgements and order violations."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.received = self.rejected = self.duplicates = 0
        self.acked: dict[str, int] = {}
        self.violations: list[str] = []

    def take(self, account_id: str, seq: int) -> None:
        with self.lock:
            self.received += 1
            acked = self.acked.get(account_id, 0)
            if seq > acked + 1:
                self.violations.append(f"{account_id} seq {seq} arrived before {seq - 1} was acknowledged")
            elif seq <= acked:
                self.duplicates += 1  # at least once: allowed, and applied once by a careful consumer
            else:
                self.acked[account_id] = seq

    def summary(self) -> dict[str, Any]:
        with self.lock:
            return {"received": self.received, "rejected": self.rejected, "duplicates": self.duplicates,
                    "acked": self.acked, "violations": self.violations[:20], "violation_count": len(self.violations)}


def serve_receiver(secret: str, conn: Any) -> None:
    """Run the receiver; sends its port through ``conn``, then serves until the parent ends it."""
    webhook = Webhook(secret)
    ledger = _Ledger()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a real account service would answer

        def do_POST(self) -> None:  # noqa: N802  (http.server's naming)
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.path == "/reset":
                ledger.reset()
                return self._answer(204)
            try:
                data = webhook.verify(body, dict(self.headers))["data"]
            except Exception:  # any verification failure is a rejection
                with ledger.lock:
                    ledger.rejected += 1
                return self._answer(401)
            ledger.take(data["account_id"], data["seq"])
            self._answer(204)

        def do_GET(self) -> None:  # noqa: N802
            payload = json.dumps(ledger.summary()).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _answer(self, status: int) -> None:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    conn.send(server.server_address[1])
    server.serve_forever()


class ReceiverProcess:
    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        self.process = context.Process(target=serve_receiver, args=(SECRET, child), daemon=True)
        self.process.start()
        self.base = f"http://127.0.0.1:{parent.recv()}"
        self.url = f"{self.base}/hooks/verify"

    def reset(self) -> None:
        requests.post(f"{self.base}/reset", timeout=5).raise_for_status()

    def summary(self) -> dict[str, Any]:
        response = requests.get(f"{self.base}/stats", timeout=5)
        response.raise_for_status()
        return response.json()

    def stop(self) -> None:
        self.process.terminate()
        self.process.join(5)


# ---------------------------------------------------------------- the outbox

def write_events(engine: sa.Engine, accounts: int, per_account: int) -> None:
    """``per_account`` pending events on each of ``accounts`` fresh accounts, written round-robin (as they happen)."""
    with engine.begin() as connection:
        connection.execute(sa.delete(OutboxEvent).where(OutboxEvent.account_id.like(f"{PREFIX}%")))
        connection.execute(sa.delete(Account).where(Account.id.like(f"{PREFIX}%")))
        others = connection.scalar(sa.select(sa.func.count()).select_from(OutboxEvent)
                                   .where(OutboxEvent.status == DeliveryStatus.PENDING))
        if others:
            raise SystemExit(f"the bench database has {others} other pending outbox events; the relay would "
                             "deliver them too. Use another database (--database-url).")
        start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)
        ids = [f"{PREFIX}{n:05d}" for n in range(accounts)]
        connection.execute(sa.insert(Account), [
            {"id": account_id, "display_name": f"Bench {n}", "country": "PT", "restrictions_version": per_account,
             "last_event_seq": per_account, "created_at": start, "updated_at": start}
            for n, account_id in enumerate(ids)])
        rows = []
        for seq in range(1, per_account + 1):
            for n, account_id in enumerate(ids):
                at = start + dt.timedelta(milliseconds=seq * accounts + n)
                rows.append({"event_id": f"evt_{uuid.uuid4().hex}", "account_id": account_id, "seq": seq,
                             "type": "account.hold.placed", "data": _hold_event(account_id, seq, at),
                             "created_at": at, "next_attempt_at": at, "status": DeliveryStatus.PENDING,
                             "attempts": 0})
        for chunk in range(0, len(rows), 5000):
            connection.execute(sa.insert(OutboxEvent), rows[chunk:chunk + 5000])


def _hold_event(account_id: str, seq: int, at: dt.datetime) -> dict[str, Any]:
    """The data of a hold event as the service writes it (a full restriction snapshot)."""
    return {"account_id": account_id, "seq": seq, "restrictions_version": seq,
            "hold": {"id": str(uuid.uuid4()), "kind": "manual", "blocks": ["appear_in_search"],
                     "reason": f"bench hold {seq}", "placed_at": at.isoformat(), "placed_by": "reviewer:1"},
            "restrictions": {"account_id": account_id, "version": seq, "blocked": ["appear_in_search"],
                             "verification": {"status": "required"}}}


def reset_events(engine: sa.Engine) -> None:
    """Every bench event pending again, as never attempted."""
    with engine.begin() as connection:
        connection.execute(sa.update(OutboxEvent).where(OutboxEvent.account_id.like(f"{PREFIX}%")).values(
            status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=OutboxEvent.created_at, last_attempt_at=None,
            last_status_code=None, last_error=None, delivered_at=None, claimed_by=None, claimed_until=None))


def undelivered(engine: sa.Engine) -> int:
    with engine.connect() as connection:
        return connection.scalar(sa.select(sa.func.count()).select_from(OutboxEvent).where(
            OutboxEvent.account_id.like(f"{PREFIX}%"), OutboxEvent.status != DeliveryStatus.DELIVERED)) or 0


# ---------------------------------------------------------------- the two rows

def run_anchor(engine: sa.Engine, url: str) -> tuple[int, float]:
    """Sign and POST every event in a bare loop over one kept-alive session; (deliveries, seconds)."""
    with engine.connect() as connection:
        events = connection.execute(sa.select(OutboxEvent.event_id, OutboxEvent.type, OutboxEvent.created_at,
                                              OutboxEvent.data).where(OutboxEvent.account_id.like(f"{PREFIX}%"))
                                    .order_by(OutboxEvent.created_at, OutboxEvent.id)).all()
    sender = WebhookSender(url, SECRET)  # the relay's own signing and kept-alive session, nothing else
    start = time.perf_counter()
    for event_id, event_type, created_at, data in events:
        result = sender.send(OutboundMessage(event_id, event_type, created_at, data, 1))
        if not result.delivered:
            raise SystemExit(f"the receiver refused the anchor: {result.status_code} {result.error}")
    return len(events), time.perf_counter() - start


def run_relay(app: Any, engine: sa.Engine) -> tuple[int, float]:
    """Run relay passes (as the scheduler's job does) until the outbox is empty; (deliveries, seconds)."""
    delivered, start = 0, time.perf_counter()
    for _ in range(20):
        report = deliver_outbox(app)
        assert report is not None
        delivered += report.delivered
        if report.failed or report.dead or report.errors:
            raise SystemExit(f"relay pass had failures: {report}")
        if report.delivered == 0 and undelivered(engine) == 0:
            break
    return delivered, time.perf_counter() - start


def check_receiver(summary: dict[str, Any], accounts: int, per_account: int) -> list[str]:
    problems = []
    if summary["rejected"]:
        problems.append(f"{summary['rejected']} deliveries failed signature verification")
    if summary["violation_count"]:
        problems.append(f"{summary['violation_count']} order violations, e.g. {summary['violations'][:3]}")
    incomplete = [a for a in range(accounts) if summary["acked"].get(f"{PREFIX}{a:05d}") != per_account]
    if incomplete:
        problems.append(f"{len(incomplete)} accounts did not get seq 1..{per_account} acknowledged")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000, help="outbox events in all (default 10000)")
    parser.add_argument("--accounts", type=int, default=1_000, help="accounts they are spread over (default 1000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per row; the best is shown (default 3)")
    parser.add_argument("--database-url", help="default: $VERIFY_BENCH_DATABASE_URL or the local bench_pages")
    parser.add_argument("--check", action="store_true", help="exit 1 when the target is missed or order broke")
    args, _unknown = parser.parse_known_args(argv)  # make bench passes one BENCH_ARGS to every script
    per_account = max(1, args.events // args.accounts)

    url = database_url(args.database_url, PAGES_DATABASE_URL)
    engine = prepared_engine(url)
    receiver = ReceiverProcess()
    instance = tempfile.TemporaryDirectory(prefix="bench-relay-")
    try:
        write_events(engine, args.accounts, per_account)
        total = args.accounts * per_account
        app = create_app(make_settings(url, Path(instance.name), account_service_webhook_url=receiver.url,
                                       account_service_webhook_secret=SECRET))
        relay = relay_for(app)
        assert relay is not None
        anchor_rates, relay_rates, problems = [], [], []
        for _ in range(args.repeat):
            receiver.reset()
            count, seconds = run_anchor(engine, receiver.url)
            problems += [f"anchor: {p}" for p in check_receiver(receiver.summary(), args.accounts, per_account)]
            anchor_rates.append(count / seconds)

            reset_events(engine)
            receiver.reset()
            count, seconds = run_relay(app, engine)
            summary = receiver.summary()
            problems += [f"relay: {p}" for p in check_receiver(summary, args.accounts, per_account)]
            if count != total:
                problems.append(f"relay: reported {count} deliveries of {total}")
            relay_rates.append(summary["received"] / seconds)
        app.extensions[KEY].engine.dispose()
    finally:
        receiver.stop()
        instance.cleanup()

    anchor, best = max(anchor_rates), max(relay_rates)
    ratio = best / anchor
    ok = ratio >= RATIO_TARGET and not problems
    print("bench_relay: outbox relay deliveries per second to a loopback receiver")
    engine.dispose()
    for line in describe_machine(url, ("requests", "urllib3", "standardwebhooks", "SQLAlchemy", "psycopg")):
        print(line)
    print(f"{total:,} events over {args.accounts:,} accounts ({per_account} each); relay: {relay.workers} workers, "
          f"a claim leases {relay.batch} accounts' next {relay.claim_ahead} events; receiver: its own process, "
          f"HTTP/1.1 keep-alive, verifies every signature; best of {args.repeat} runs")
    print()
    print(f"{'':34}{'per second':>12}  {'runs':<28}{'ratio':<12}")
    print(f"{'anchor (bare signed POST loop)':34}{anchor:>12,.0f}  {_runs(anchor_rates):<28}")
    print(f"{'relay (outbox → receiver)':34}{best:>12,.0f}  {_runs(relay_rates):<28}{ratio:.2f} x anchor")
    print()
    print(f"per-account order: {'held' if not problems else 'BROKEN'}"
          + "".join(f"\n  {problem}" for problem in problems))
    print(f"relay/anchor = {ratio:.2f} ({'met' if ratio >= RATIO_TARGET else 'MISSED'}: target {RATIO_TARGET})")
    return 1 if args.check and not ok else 0


def _runs(rates: list[float]) -> str:
    return ", ".join(f"{rate:,.0f}" for rate in rates)


if __name__ == "__main__":
    sys.exit(main())
