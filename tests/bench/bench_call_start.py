"""Starting a call (the freelancer's "start now", sandbox Meet): the service's own time per start.

    make bench                                  # every tests/bench/bench_*.py
    .venv/bin/python tests/bench/bench_call_start.py [--starts 100] [--check]

PostgreSQL: ``VERIFY_BENCH_DATABASE_URL`` (default
postgresql+psycopg://postgres@127.0.0.1:5432/bench), created and migrated when
needed; every run asks fresh accounts to verify (ids callbench-<run>-<n>).

Meet: the sandbox emulator, served over HTTP by its own gunicorn process (one
worker: the emulator keeps its state in memory), reached through the real
Google adapter (googleapiclient) exactly as in production with
VERIFY_MEET_BACKEND=sandbox. The app under test runs in this process on
PostgreSQL, with a wrapper around its Meet gateway that times every Meet call.

Rows, each over --starts distinct accounts (after a few untimed starts):
  start_call()     verify_service/freelancer/journey.py start_call: lock the
                   account, check it may open a session, insert it, audit it,
                   reserve Meet budget, create the space, add the freelancer.
  POST /verify/calls  the whole request a signed-in freelancer sends (Flask
                   test client): session cookie and CSRF checks, rate limit,
                   the browser verdict, start_call, the redirect.
  Meet alone       the same two gateway calls (spaces.create, members.create)
                   made directly: the anchor, what any service pays for Meet.
"own" is a start's time minus the time its Meet calls took (measured around
each call), so Meet's (here: the emulator's) speed does not count.
Target: own time per start p50 < 50 ms (both rows).
Not a test: pytest does not collect tests/bench (setup.cfg norecursedirs).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from flask import Flask  # noqa: E402
from flask.testing import FlaskClient  # noqa: E402

from integrations.google_meet import MeetGateway, MeetingSpace  # noqa: E402
from tests.bench import support  # noqa: E402
from tests.support.staff import csrf_token  # noqa: E402
from verify_service import create_app  # noqa: E402
from verify_service.calls.models import MeetingStatus  # noqa: E402
from verify_service.freelancer import journey  # noqa: E402
from verify_service.registry import KEY  # noqa: E402

OWN_P50_TARGET_MS = 50.0
WARM_STARTS = 5
CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/142.0.0.0 Safari/537.36")
SYSTEM_CHECK = {"verdict": "supported", "browser": "chrome 142", "os": "windows 10"}


class TimedMeet:
    """The app's Meet gateway, with the time spent in each call added up (one thread at a time)."""

    def __init__(self, gateway: MeetGateway) -> None:
        self.gateway = gateway
        self.hosts = gateway.hosts
        self.spent = 0.0

    def __getattr__(self, name: str) -> Any:  # every other gateway call, untimed (a start makes none)
        return getattr(self.gateway, name)

    def _timed(self, call: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        try:
            return call()
        finally:
            self.spent += time.perf_counter() - started

    def create_space(self, *, host: str, access_type: Any = "RESTRICTED") -> MeetingSpace:
        space: MeetingSpace = self._timed(lambda: self.gateway.create_space(host=host, access_type=access_type))
        return space

    def add_member(self, space_name: str, email: str, *, host: str, cohost: bool = False) -> None:
        self._timed(lambda: self.gateway.add_member(space_name, email, host=host, cohost=cohost))

    def take(self) -> float:
        spent, self.spent = self.spent, 0.0
        return spent


@dataclasses.dataclass
class Timings:
    total: list[float] = dataclasses.field(default_factory=list)  # milliseconds
    meet: list[float] = dataclasses.field(default_factory=list)

    def add(self, total: float, meet: float) -> None:
        self.total.append(total * 1000)
        self.meet.append(meet * 1000)

    @property
    def own(self) -> list[float]:
        return [t - m for t, m in zip(self.total, self.meet, strict=True)]


def app_config(url: str, emulator: str, instance: Path) -> dict[str, str]:
    return {**support.SERVICE_SECRETS, "VERIFY_ENV": "testing", "VERIFY_DATABASE_URL": url,
            "VERIFY_INSTANCE_DIR": str(instance), "VERIFY_BASE_URL": emulator, "VERIFY_MEET_BACKEND": "sandbox",
            "VERIFY_MEET_API_ENDPOINT": f"{emulator}/sandbox/google/meet/",
            "VERIFY_CALENDAR_API_ENDPOINT": f"{emulator}/sandbox/google/calendar/v3/",
            # Budget for every start: a queued meeting would time a different path.
            "VERIFY_MEET_CREATES_PER_MINUTE": "100000", "VERIFY_MEET_PROJECT_CREATES_PER_MINUTE": "100000"}


def ask_to_verify(api: FlaskClient, account_id: str) -> str:
    """Create the account and its verification request (the account service's calls); returns a launch link."""
    auth = {"Authorization": f"Bearer {support.API_KEY}"}
    calls = [
        api.put(f"/api/v1/accounts/{account_id}", headers=auth,
                json={"name": "Bench Freelancer", "email": f"{account_id}@bench.example", "country": "PT"}),
        api.post(f"/api/v1/accounts/{account_id}/verification-requests", headers=auth,
                 json={"reason": "new_account", "place_hold": True}),
        api.post(f"/api/v1/accounts/{account_id}/launch-links", headers=auth),
    ]
    for response in calls:
        if response.status_code != 201:
            raise SystemExit(f"setting up {account_id} failed: {response.status_code} {response.text[:300]}")
    return str(calls[-1].get_json()["url"])


def signed_in(app: Flask, link: str) -> tuple[FlaskClient, str]:
    """A browser that followed the launch link; returns it and the CSRF token its pages carry."""
    browser = app.test_client()
    browser.environ_base["HTTP_USER_AGENT"] = CHROME
    if browser.get(urlsplit(link).path).status_code != 303:
        raise SystemExit("the launch link did not sign the freelancer in")
    return browser, csrf_token(browser, "/verify")


def time_function(app: Flask, meet: TimedMeet, links: dict[str, str], timings: Timings) -> None:
    reg = app.extensions[KEY]
    for account_id in links:
        meet.take()
        started = time.perf_counter()
        _, preparation = journey.start_call(reg.sessions, meet, account_id, settings=reg.settings, now=reg.now(),
                                            system_check=SYSTEM_CHECK)
        total = time.perf_counter() - started
        if preparation.status is not MeetingStatus.READY:
            raise SystemExit(f"the meeting of {account_id} is {preparation.status.value}: {preparation.error}")
        timings.add(total, meet.take())


def time_requests(app: Flask, meet: TimedMeet, links: dict[str, str], timings: Timings) -> None:
    browsers = {account_id: signed_in(app, link) for account_id, link in links.items()}
    for account_id, (browser, token) in browsers.items():
        meet.take()
        started = time.perf_counter()
        response = browser.post("/verify/calls", data={"csrf_token": token})
        total = time.perf_counter() - started
        if response.status_code != 303 or "/verify/calls/" not in response.headers.get("Location", ""):
            raise SystemExit(f"starting {account_id}'s call answered {response.status_code}")
        timings.add(total, meet.take())


def time_meet_alone(meet: TimedMeet, count: int, timings: Timings) -> None:
    for number in range(count):
        host = meet.hosts[number % len(meet.hosts)]
        meet.take()
        space = meet.create_space(host=host)
        meet.add_member(space.name, f"anchor-{number}@bench.example", host=host)
        spent = meet.take()
        timings.add(spent, spent)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--starts", type=int, default=100, help="timed starts per row (default 100)")
    parser.add_argument("--check", action="store_true", help="exit 1 when the target is missed")
    args, _unknown = parser.parse_known_args(argv)  # make bench passes one BENCH_ARGS to every script
    args.load_before = os.getloadavg()

    url = support.database_url()
    support.prepare_database(url)
    run = time.strftime("%Y%m%d%H%M%S")
    rows = {"start_call()": Timings(), "POST /verify/calls": Timings(), "Meet alone (anchor)": Timings()}
    with support.servers() as (started, scratch):
        emulator = f"http://127.0.0.1:{support.free_port()}"
        config = app_config(url, emulator, scratch / "instance")
        started.append(support.Server(
            "meet-emulator", support.gunicorn_command("gunicorn.conf.py", "verify_service:create_app()"),
            {**support.clean_environ(), **config, "VERIFY_BIND": emulator.removeprefix("http://"),
             "VERIFY_WEB_WORKERS": "1", "VERIFY_WEB_THREADS": "4"}, scratch))
        started[0].wait_ready(f"{emulator}/healthz")
        app = create_app(config)
        reg = app.extensions[KEY]
        meet = TimedMeet(reg.meet_gateway())
        reg.meet = meet  # the views use it too
        api = app.test_client()  # no app context around test-client requests: each needs its own g
        batches = [{f"callbench-{run}-{row}-{n:04d}": "" for n in range(WARM_STARTS + args.starts)}
                   for row in (1, 2)]
        for batch in batches:
            for account_id in batch:
                batch[account_id] = ask_to_verify(api, account_id)
        warm = [dict(list(batch.items())[:WARM_STARTS]) for batch in batches]
        timed = [dict(list(batch.items())[WARM_STARTS:]) for batch in batches]
        with app.app_context():
            time_function(app, meet, warm[0], Timings())
            time_function(app, meet, timed[0], rows["start_call()"])
        time_requests(app, meet, warm[1], Timings())
        time_requests(app, meet, timed[1], rows["POST /verify/calls"])
        time_meet_alone(meet, args.starts, rows["Meet alone (anchor)"])
    return report(rows, args, url)


def report(rows: dict[str, Timings], args: argparse.Namespace, url: str) -> int:
    pct = support.percentile
    anchor = pct(rows["Meet alone (anchor)"].total, 50)
    print("bench_call_start: starting a call (sandbox Meet over HTTP), the service's own time per start")
    print(support.machine_line(args.load_before))
    print(support.postgres_line(url))
    print(f"{args.starts} timed starts per row, each for a new account (after {WARM_STARTS} untimed); "
          "milliseconds; own = total - Meet")
    print()
    print(f"{'':22}{'total p50':>10}{'p95':>8}{'Meet p50':>10}{'own p50':>9}{'own p95':>9}  {'own/Meet alone':<16}"
          "target")
    met = True
    for name, timings in rows.items():
        own = timings.own
        is_anchor = name.startswith("Meet alone")
        ok = is_anchor or pct(own, 50) < OWN_P50_TARGET_MS
        met = met and ok
        target = "" if is_anchor else f"own p50 < {OWN_P50_TARGET_MS:g} ({'met' if ok else 'MISSED'})"
        print(f"{name:22}{pct(timings.total, 50):>10.1f}{pct(timings.total, 95):>8.1f}{pct(timings.meet, 50):>10.1f}"
              f"{pct(own, 50):>9.1f}{pct(own, 95):>9.1f}  {'' if is_anchor else f'{pct(own, 50) / anchor:.2f} x':<16}"
              f"{target}")
    print()
    print("anchor: the two Meet calls of a start made directly (spaces.create + members.create) = "
          f"{anchor:.1f} ms p50; against Google, Meet's own latency is added to every row alike")
    return 1 if args.check and not met else 0


if __name__ == "__main__":
    sys.exit(main())
