"""Rate limits on launch links, client checks, staff sign-in and call starts; Redis shares the counts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from tests.conftest import API_KEY, IN_CI, Api, FakeClock, assert_problem, make_settings
from tests.functional.test_freelancer_journey import Freelancer
from tests.functional.test_staff_sign_in import form_token
from tests.support.fake_meet import FakeMeetGateway
from tests.support.parallel import redis_database
from verify_service import create_app
from verify_service.ratelimit import storage_uri_for
from verify_service.registry import KEY

# A database of its own (one per xdist worker, from 5 on): only it is flushed.
REDIS_URL = f"redis://127.0.0.1:6379/{redis_database(5)}"
TINY = {"launch_link_rate_limit": "2/minute", "sign_in_rate_limit": "2/minute",
        "call_start_rate_limit": "2/minute", "client_check_rate_limit": "2/minute"}
CHECK = {"user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                       "Chrome/142.0.0.0 Safari/537.36"}


@pytest.fixture
def app(database_url: str, tmp_path: Path, clock: FakeClock) -> Iterator[Flask]:
    app = create_app(make_settings(database_url, tmp_path, **TINY))
    app.extensions[KEY].clock = clock
    yield app
    app.extensions[KEY].engine.dispose()


def test_launch_links_are_limited_per_account(api: Api) -> None:
    for account_id in ("acc-1", "acc-2"):
        api.put_account(account_id)
    for _ in range(2):
        assert api.client.post("/api/v1/accounts/acc-1/launch-links", headers=api.auth).status_code == 201
    limited = api.client.post("/api/v1/accounts/acc-1/launch-links", headers=api.auth)
    assert_problem(limited, 429, "too_many_requests")
    assert int(limited.headers["Retry-After"]) > 0
    assert api.client.post("/api/v1/accounts/acc-2/launch-links", headers=api.auth).status_code == 201


def test_client_checks_are_limited_per_ip(client) -> None:
    for _ in range(2):
        assert client.post("/api/v1/client-checks", json=CHECK).status_code == 200
    assert_problem(client.post("/api/v1/client-checks", json=CHECK), 429, "too_many_requests")


def test_sign_in_posts_are_limited_per_ip_with_the_html_page(client) -> None:
    for _ in range(2):
        refused = client.post("/review/sign-in", data={"csrf_token": form_token(client), "email": "x@example.com",
                                                        "password": "wrong"})
        assert refused.status_code != 429
    limited = client.post("/review/sign-in", data={"csrf_token": form_token(client), "email": "x@example.com",
                                                    "password": "wrong"})
    assert limited.status_code == 429 and limited.mimetype == "text/html"
    assert int(limited.headers["Retry-After"]) > 0
    assert client.get("/review/sign-in").status_code == 200  # the form itself is not limited
    other = client.post("/review/sign-in", data={"csrf_token": form_token(client), "email": "x@example.com",
                                                  "password": "wrong"}, environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert other.status_code != 429


def test_call_starts_are_limited_per_freelancer_session(api: Api, registry) -> None:
    registry.meet = FakeMeetGateway()
    for account_id in ("acc-1", "acc-2"):
        api.put_account(account_id, email=f"{account_id}@example.com")
        assert api.request_verification(account_id, {"reason": "new_account"}).status_code == 201
    # Launch links count per account: two freelancers, one link each.
    ana, bea = Freelancer(api, "acc-1"), Freelancer(api, "acc-2")
    assert [ana.start().status_code for _ in range(2)] == [303, 303]
    limited = ana.start()
    assert limited.status_code == 429 and limited.mimetype == "text/html" and "Retry-After" in limited.headers
    assert bea.start().status_code == 303  # same IP, another freelancer


def test_the_storage_is_redis_when_configured(tmp_path: Path) -> None:
    settings = make_settings("sqlite://", tmp_path)
    assert storage_uri_for(settings) == "memory://"
    assert storage_uri_for(settings.replace(redis_url=REDIS_URL)) == REDIS_URL


# A second web process: its own interpreter, its own app, the same settings.
SECOND_PROCESS = """
import json, sys
from tests.conftest import make_settings
from verify_service import create_app
from pathlib import Path
tmp = Path(sys.argv[1])
app = create_app(make_settings(f"sqlite:///{tmp / 'other.sqlite3'}", tmp, **json.loads(sys.argv[2])))
print(app.test_client().post("/api/v1/client-checks", json=json.loads(sys.argv[3])).status_code)
"""


def _second_process(tmp_path: Path, overrides: dict[str, str]) -> int:
    done = subprocess.run([sys.executable, "-c", SECOND_PROCESS, str(tmp_path), json.dumps(overrides),
                           json.dumps(CHECK)], capture_output=True, text=True, timeout=60, check=False,
                          cwd=Path(__file__).resolve().parents[2], env={**os.environ, "VERIFY_ENV": "testing"})
    assert done.returncode == 0, done.stderr
    return int(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("shared", [True, False], ids=["redis", "memory"])
def test_two_processes_share_the_count_only_with_redis(tmp_path: Path, shared: bool) -> None:
    redis = pytest.importorskip("redis")
    connection = redis.Redis.from_url(REDIS_URL)
    try:
        connection.flushdb()
    except redis.exceptions.ConnectionError:
        if IN_CI:  # CI runs everything (.ci/run starts Redis when it is down)
            pytest.fail("CI=true needs Redis at 127.0.0.1:6379")
        pytest.skip("no Redis at 127.0.0.1:6379")
    overrides = {"client_check_rate_limit": "2/minute", **({"redis_url": REDIS_URL} if shared else {})}
    app = create_app(make_settings(f"sqlite:///{tmp_path / 'one.sqlite3'}", tmp_path, **overrides))
    try:
        client = app.test_client()
        assert [client.post("/api/v1/client-checks", json=CHECK).status_code for _ in range(2)] == [200, 200]
        assert _second_process(tmp_path, overrides) == (429 if shared else 200)
    finally:
        connection.flushdb()
        app.extensions[KEY].engine.dispose()


def test_calls_without_a_valid_key_do_not_use_up_the_limit(api: Api) -> None:
    # Refused (401) before the limiter counts: a stranger cannot lock the account service out.
    api.put_account("acc-1")
    for _ in range(3):
        response = api.client.post("/api/v1/accounts/acc-1/launch-links",
                                   headers={"Authorization": "Bearer wrong" + API_KEY})
        assert response.status_code == 401
    assert api.client.post("/api/v1/accounts/acc-1/launch-links", headers=api.auth).status_code == 201
