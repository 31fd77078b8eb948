"""A real HTTP webhook receiver on loopback, playing the account service.

It verifies every delivery with the ``standardwebhooks`` package, answers
according to a policy the test sets, applies each webhook-id's effect once
(as a careful consumer would), and records order violations: an account's
``seq`` n+1 arriving before n was acknowledged.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook


@dataclasses.dataclass(frozen=True)
class Delivery:
    webhook_id: str
    attempt: int
    type: str
    account_id: str
    seq: int
    data: dict[str, Any]


# A policy answers a verified delivery: (status, headers), or raises DropConnection.
Policy = Callable[[Delivery], tuple[int, dict[str, str]]]


class DropConnection(Exception):
    """Close the connection without answering (a crash or network cut on the receiver's side)."""


def always(status: int, **headers: str) -> Policy:
    return lambda _delivery: (status, headers)


class Receiver:
    def __init__(self, secret: str) -> None:
        self.webhook = Webhook(secret)
        self.policy: Policy = always(204)
        self.deliveries: list[Delivery] = []
        self.rejected: list[str] = []
        self.violations: list[str] = []
        self.acked: dict[str, int] = {}          # account -> highest seq acknowledged
        self.applied: dict[str, list[int]] = {}  # account -> seqs applied, once per webhook-id
        self._seen_ids: set[str] = set()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.port = 0
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/verify"

    def start(self) -> None:
        """Listen (again, on the same port after a stop)."""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802  (http.server's naming)
                receiver._handle(self)

            def log_message(self, *_args: Any) -> None:
                pass

        for _ in range(50):
            try:
                self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
                break
            except OSError:  # the old socket is still closing
                time.sleep(0.1)
        assert self._server is not None
        self.port = self._server.server_address[1]
        # A short poll, so stop() (waiting for the serving loop to notice) takes ~50 ms, not 0.5 s.
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        body = handler.rfile.read(int(handler.headers.get("Content-Length", 0)))
        headers = {k.lower(): v for k, v in handler.headers.items()}
        try:
            self.webhook.verify(body, headers, json_parse=False)
        except Exception as exc:  # any verification failure is a rejection
            with self._lock:
                self.rejected.append(f"{headers.get('webhook-id')}: {exc}")
            self._answer(handler, 401)
            return
        payload = json.loads(body)
        data = payload["data"]
        delivery = Delivery(headers["webhook-id"], int(headers["webhook-attempt"]), payload["type"],
                            data["account_id"], data["seq"], data)
        with self._lock:
            self.deliveries.append(delivery)
            if delivery.seq > self.acked.get(delivery.account_id, 0) + 1:
                self.violations.append(f"{delivery.account_id} seq {delivery.seq} arrived before "
                                       f"{delivery.seq - 1} was acknowledged")
        try:
            status, extra = self.policy(delivery)
        except DropConnection:
            handler.close_connection = True
            handler.connection.close()
            return
        if 200 <= status < 300:
            with self._lock:
                self.acked[delivery.account_id] = max(self.acked.get(delivery.account_id, 0), delivery.seq)
                if delivery.webhook_id not in self._seen_ids:
                    self._seen_ids.add(delivery.webhook_id)
                    self.applied.setdefault(delivery.account_id, []).append(delivery.seq)
        self._answer(handler, status, extra)

    @staticmethod
    def _answer(handler: BaseHTTPRequestHandler, status: int, headers: dict[str, str] | None = None) -> None:
        handler.send_response(status)
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    def ids(self) -> list[str]:
        return [d.webhook_id for d in self.deliveries]
