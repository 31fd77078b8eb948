"""The account service as an API client under faults: every write retried until acknowledged.

Each answer (or its absence: a cut connection, a timeout) is recorded with
when it was sent and how long it took, so a test can say what the service
answered while a fault lasted. POSTs carry an ``Idempotency-Key`` that every
retry repeats, as a careful client does.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Any

import requests

from tests.conftest import API_KEY

AUTH = {"Authorization": f"Bearer {API_KEY}"}
REQUEST_TIMEOUT = 10  # seconds: a request that takes longer is a hang


@dataclasses.dataclass(frozen=True)
class Answer:
    at: float           # time.monotonic() when the request was sent
    took: float
    status: int | None  # None: no HTTP answer (connection cut, timeout)
    detail: str         # the problem code, or the transport error


class AccountService:
    """Writes over the API, each retried with its Idempotency-Key until the service acknowledges it."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.answers: list[Answer] = []
        self._lock = threading.Lock()

    def once(self, method: str, path: str, body: dict[str, Any] | None, key: str | None) -> requests.Response | None:
        headers = {**AUTH, **({"Idempotency-Key": key} if key else {})}
        started = time.monotonic()
        try:
            response = requests.request(method, f"{self.base}{path}", json=body, headers=headers,
                                        timeout=REQUEST_TIMEOUT)
        except requests.RequestException as exc:
            response, status, detail = None, None, type(exc).__name__
        else:
            status = response.status_code
            detail = "" if response.ok else f"{response.headers.get('Content-Type')} {response.text[:300]} " \
                                            f"Retry-After={response.headers.get('Retry-After')}"
        with self._lock:
            self.answers.append(Answer(started, time.monotonic() - started, status, detail))
        return response

    def acknowledged(self, method: str, path: str, body: dict[str, Any] | None = None, *,
                     key: str | None = None, within: float = 60) -> requests.Response:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            response = self.once(method, path, body, key)
            if response is not None and response.ok:
                return response
            time.sleep(0.2)
        raise AssertionError(f"{method} {path} not acknowledged within {within:.0f} s")

    def onboard(self, account_id: str) -> dict[str, str]:
        """Profile, verification request with the pending hold, launch link; returns what was acknowledged."""
        self.acknowledged("PUT", f"/api/v1/accounts/{account_id}",
                          {"name": f"Freelancer {account_id}", "email": f"{account_id}@example.com", "country": "PT"})
        request = self.acknowledged("POST", f"/api/v1/accounts/{account_id}/verification-requests",
                                    {"reason": "new_account", "place_hold": True}, key=f"req-{account_id}")
        link = self.acknowledged("POST", f"/api/v1/accounts/{account_id}/launch-links", key=f"link-{account_id}")
        return {"account_id": account_id, "request_id": request.json()["request"]["id"], "link": link.json()["url"]}


class Load:
    """``threads`` clients onboarding new accounts back to back until stopped (each finishes its account)."""

    def __init__(self, client: AccountService, prefix: str, threads: int = 4) -> None:
        self.client, self.prefix = client, prefix
        self.done: list[dict[str, str]] = []
        self.failures: list[BaseException] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(threads)]

    def _run(self, number: int) -> None:
        count = 0
        while not self._stop.is_set():
            count += 1
            try:
                self.done.append(self.client.onboard(f"{self.prefix}-{number}-{count}"))
            except BaseException as exc:  # asserted on when the load ends
                self.failures.append(exc)
                return

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, exc_type: object, *_exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=90)
        if exc_type is None:  # else the test's own error says more
            assert self.failures == []
            assert self.done, "the load acknowledged nothing"
