"""Abuse: what an attacker tries, on both backends.

- the inbound webhook fuzzed (random headers, bytes, JSON; validly signed bodies of the wrong shape):
  never a 500, a refusal changes nothing, a correctly signed delivery is never refused as unsigned;
- staff sign-in brute-forced from many addresses, with spoofed X-Forwarded-For, in parallel bursts:
  the lockout holds, even for the right password, and is audited;
- launch links replayed, tampered with, used as a session cookie, or read back through
  Idempotency-Key replays: refused, and never stored in the clear.

The plain behaviour of each feature (a link works once, five failures lock an account, a bad
signature is 401 ...) is tested with the feature; this file adds the attacker's angle.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path
from typing import Any

import pyotp
import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from tests.conftest import API_KEY, Api, FakeClock, assert_problem, make_settings
from tests.functional.test_inbound_webhooks import URL, count, signed_headers
from tests.functional.test_launch_links import launch_url, path_of
from tests.functional.test_staff_sign_in import audit, code_step, enrol, other_code, password_step
from tests.support.concurrency import run_together
from tests.support.staff import PASSWORD, staff_member
from verify_service import create_app
from verify_service.accounts.models import Account, Hold, VerificationRequest
from verify_service.api.models import IdempotencyKey
from verify_service.audit.models import AuditEntry
from verify_service.freelancer.models import FreelancerSession, LaunchLink
from verify_service.registry import KEY, Registry
from verify_service.staff import throttle
from verify_service.staff.models import ThrottleKind
from verify_service.webhooks.models import OutboxEvent

# ================================================================ the inbound webhook, fuzzed
from verify_service.inbound.models import InboundWebhookReceipt

STATE = (Account, Hold, VerificationRequest, InboundWebhookReceipt, OutboxEvent, AuditEntry)
REFUSALS = {400, 401, 404, 409, 413, 422}

# Header values as they reach a WSGI app: any byte but CR and LF (latin-1 text; bytes above 0x7f
# are not UTF-8 on the wire), plausible but wrong ones, and huge ones.
RAW_HEADER = st.text(st.characters(min_codepoint=0, max_codepoint=0xFF, exclude_characters="\r\n"), max_size=40)
HEADER_VALUE = st.one_of(
    RAW_HEADER,
    st.integers(-10**20, 10**20).map(str),
    st.from_regex(r"v[0-9],[A-Za-z0-9+/]{0,64}={0,2}( v1,[A-Za-z0-9+/=,]{0,50})?", fullmatch=True),
    st.sampled_from(["x" * 100_000, "v1," + "A" * 100_000, "9" * 5000, " ", ",", "v1,"]),
)
# Text, often with the characters storage trips on (NUL: PostgreSQL text cannot hold it) or that look empty.
TEXT = st.one_of(st.text(max_size=20), st.text(st.sampled_from("a \x00\t\u00e9"), min_size=1, max_size=8))
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
                    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children,
                                                                                          max_size=4),
                    max_leaves=12)
ACCOUNT_ID = st.one_of(st.sampled_from(["acc-3", "acc-1 ", "", "x" * 65]), TEXT)
OFFSET = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda minutes: dt.timezone(dt.timedelta(minutes=minutes)))
# Any time, the first and last a datetime can hold, around now (the test clock's 2026-11-22), in any offset.
EXTREME_TIME = st.builds(
    lambda moment, offset: moment.replace(tzinfo=offset).isoformat(),
    st.one_of(st.datetimes(), st.sampled_from([dt.datetime.min, dt.datetime.max, dt.datetime(2026, 11, 22, 9)])),
    OFFSET)
TIMESTAMP = st.one_of(EXTREME_TIME, st.sampled_from(["2026-11-22T08:59:00", "yesterday", ""]), JSON)
EVENT_DATA = st.fixed_dictionaries({"account_id": ACCOUNT_ID}, optional={
    "name": st.one_of(TEXT, st.text(max_size=250), JSON),
    "email": st.sampled_from(["ana@example.com", "nope", "a@b.test"]),
    "country": st.sampled_from(["PT", "pt", "PRT"]),
    "photo_url": st.sampled_from(["https://example.com/a.jpg", "javascript:alert(1)",
                                  "https://example.com/" + "p" * 2100]),
    "timezone": st.sampled_from(["Europe/Lisbon", "Mars/Olympus", "localtime"]),
    "reason": st.sampled_from(["new_account", "risk_signal", "manual", "whim"]),
    "deadline": TIMESTAMP, "place_hold": st.one_of(st.booleans(), JSON), "extra": JSON,
})
EVENT = st.fixed_dictionaries(
    {"type": st.one_of(st.sampled_from(["account.upserted", "verification.requested", "account.closed"]),
                       TEXT, st.text(max_size=120)),
     "timestamp": TIMESTAMP, "data": st.one_of(EVENT_DATA, JSON)},
    optional={"extra": JSON},
).map(json.dumps)
ACCOUNT = st.sampled_from(["acc-1", "acc-2", "acc-3"])
CLOSED = st.sampled_from(["acc-3", "acc-9"])  # closing is for good: acc-1 and acc-2 stay open for the others
# Events as the account service sends them, edge values in their fields: these reach the effects.
PROFILE_DATA = st.fixed_dictionaries(
    {"account_id": ACCOUNT, "name": st.one_of(TEXT, st.text(min_size=1, max_size=200)),
     "email": st.just("ana@example.com"), "country": st.just("PT")},
    optional={"timezone": st.sampled_from(["Europe/Lisbon", "Pacific/Kiritimati"]),
              "photo_url": st.just("https://example.com/" + "p" * 1900)})
REQUEST_DATA = st.fixed_dictionaries({"account_id": ACCOUNT, "reason": st.just("manual")},
                                     optional={"deadline": EXTREME_TIME, "place_hold": st.booleans()})


def _event(event_type: str, data: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({"type": st.just(event_type), "timestamp": EXTREME_TIME, "data": data})


WELL_FORMED = st.one_of(_event("account.upserted", PROFILE_DATA), _event("verification.requested", REQUEST_DATA),
                        _event("account.closed", st.fixed_dictionaries({"account_id": CLOSED}))).map(json.dumps)
BODY = st.one_of(st.binary(max_size=300), JSON.map(json.dumps), EVENT, EVENT.map(lambda text: text[: len(text) // 2]),
                 WELL_FORMED, WELL_FORMED, WELL_FORMED)
# Which of the three headers are left as the sender computed them (else fuzzed or missing).
HEADERS_KEPT = st.sampled_from(["all"] * 4 + ["none", "id", "timestamp", "signature", "id+timestamp"])


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _state(registry: Registry) -> dict[str, int]:
    return {model.__name__: count(registry, model) for model in STATE}


@pytest.fixture
def webhook_target(client: FlaskClient, registry: Registry) -> tuple[FlaskClient, Registry]:
    Api(client).put_account("acc-1")  # an account for the events to act on
    return client, registry


@settings(max_examples=200, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(body=BODY, kept=HEADERS_KEPT, fuzzed=st.fixed_dictionaries({}, optional={
    "webhook-id": HEADER_VALUE, "webhook-timestamp": HEADER_VALUE, "webhook-signature": HEADER_VALUE}),
    content_type=st.sampled_from(["application/json", "text/plain", "", "application/json; charset=latin-1"]))
def test_fuzzed_webhooks_never_fail_and_refusals_change_nothing(webhook_target, body: str | bytes, kept: str,
                                                                fuzzed: dict[str, str], content_type: str) -> None:
    client, registry = webhook_target
    raw = body if isinstance(body, bytes) else body.encode("utf-8")
    signed = signed_headers(registry.settings.inbound_webhook_secrets[0], raw.decode("utf-8", errors="replace"))
    headers = {name: value for name, value in signed.items() if kept == "all" or name.split("-")[1] in kept}
    # The others fuzzed, or missing.
    headers.update({name: value for name, value in fuzzed.items() if kept != "all" and name not in headers})
    before = _state(registry)

    response = client.post(URL, data=raw, headers=headers, content_type=content_type)

    assert response.status_code == 200 or response.status_code in REFUSALS, response.get_data(as_text=True)[:500]
    if response.status_code == 200:
        assert response.get_json()["status"] in ("processed", "duplicate", "ignored")
        with registry.sessions() as session:
            assert session.get(InboundWebhookReceipt, headers["webhook-id"]) is not None
        return
    assert response.content_type == "application/problem+json"
    assert _state(registry) == before
    if headers == signed and _is_utf8(raw):
        # A delivery signed as the sender signs is never refused as unsigned (its body may still be wrong).
        assert response.status_code != 401, response.get_json()


# ================================================================ staff sign-in, brute-forced

REVIEWER = "reviewer@example.com"


def _from(client: FlaskClient, address: str, forwarded_for: str | None = None) -> FlaskClient:
    client.environ_base["REMOTE_ADDR"] = address
    if forwarded_for is None:
        client.environ_base.pop("HTTP_X_FORWARDED_FOR", None)
    else:
        client.environ_base["HTTP_X_FORWARDED_FOR"] = forwarded_for
    return client


def test_a_botnet_rotating_addresses_and_spellings_still_locks_the_account(app: Flask, registry: Registry) -> None:
    reviewer = staff_member(registry, email=REVIEWER)
    spellings = [REVIEWER, "Reviewer@Example.com", " REVIEWER@example.com", "reviewer@EXAMPLE.COM ", REVIEWER]
    codes = [password_step(_from(app.test_client(), f"198.51.100.{n}"), email, "guess-" + str(n)).status_code
             for n, email in enumerate(spellings, start=1)]
    assert codes == [401, 401, 401, 401, 429]  # one account, however it is spelled and wherever from

    # The right password, from an address never seen, while locked: refused, and no session.
    fresh = _from(app.test_client(), "192.0.2.77")
    refused = password_step(fresh, "Reviewer@Example.com", PASSWORD)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert fresh.get_cookie("verify_staff") is None
    assert [(e.details["key"], e.subject_id) for e in audit(registry, "staff.locked_out")] == [
        ("account", str(reviewer.id))]
    reasons = [e.details["reason"] for e in audit(registry, "staff.sign_in_failed")]
    assert reasons == ["wrong_password"] * 5 + ["locked"]


@pytest.mark.parametrize("trusted_proxies", [0, 1])
def test_spoofed_x_forwarded_for_does_not_escape_the_address_lock(database_url: str, tmp_path: Path,
                                                                  clock: FakeClock, monkeypatch,
                                                                  trusted_proxies: int) -> None:
    monkeypatch.setitem(throttle.LIMITS, ThrottleKind.IP, 6)  # 50 in production; fewer argon2 runs here
    app = create_app(make_settings(database_url, tmp_path, trusted_proxies=trusted_proxies))
    registry = app.extensions[KEY]
    registry.clock = clock
    try:
        staff_member(registry, email=REVIEWER)
        attacker = app.test_client()
        address = "10.9.9.9" if trusted_proxies else "203.0.113.9"  # the proxy's, or the attacker's own
        codes = []
        for n in range(7):  # a new email and a new made-up origin every time
            # Behind one trusted proxy the proxy appends the real client, 203.0.113.9, to what was sent.
            sent = f"10.0.{n}.1, 172.16.0.{n}"
            forwarded = f"{sent}, 203.0.113.9" if trusted_proxies else sent
            codes.append(password_step(_from(attacker, address, forwarded), f"guess{n}@example.com",
                                       "wrong password!").status_code)
        assert codes == [401] * 5 + [429, 429]
        assert password_step(_from(attacker, address, "192.0.2.1, 203.0.113.9" if trusted_proxies else "192.0.2.1"),
                             REVIEWER, PASSWORD).status_code == 429
        assert [e.details["key"] for e in audit(registry, "staff.locked_out")] == ["ip"]
        if trusted_proxies:  # another client behind the same proxy is not locked out with the attacker
            assert password_step(_from(app.test_client(), address, "198.51.100.20"), REVIEWER,
                                 PASSWORD).status_code == 303
    finally:
        registry.engine.dispose()


def test_a_parallel_burst_of_guesses_gets_no_more_password_checks_than_the_limit(app: Flask,
                                                                               registry: Registry) -> None:
    staff_member(registry, email=REVIEWER)

    def guess(n: int) -> Any:
        client = _from(app.test_client(), f"198.51.100.{n}")
        return lambda: password_step(client, REVIEWER, f"guess-{n}").status_code

    # Attempts on one account are checked one after another (before, on PostgreSQL, all 12 passwords
    # of a burst were checked: each attempt passed the lock check before any failure was counted).
    codes = run_together([guess(n) for n in range(12)])
    assert sorted(codes) == [401] * 4 + [429] * 8
    reasons = [e.details["reason"] for e in audit(registry, "staff.sign_in_failed")]
    assert reasons.count("wrong_password") == throttle.LIMITS[ThrottleKind.ACCOUNT] and reasons.count("locked") == 7
    assert password_step(_from(app.test_client(), "192.0.2.8"), REVIEWER, PASSWORD).status_code == 429
    assert {e.details["key"] for e in audit(registry, "staff.locked_out")} == {"account"}


def test_knowing_the_password_gives_no_unlimited_second_factor_guesses(app: Flask, registry: Registry,
                                                                       clock: FakeClock,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    """Right password, wrong codes, again and again from new addresses: the codes lock out on their own."""
    caplog.set_level(logging.WARNING, logger="verify_service.staff.services")
    reviewer, secret, _ = enrol(app.test_client(), registry, clock, email=REVIEWER)
    clock.advance(minutes=1)
    before = REGISTRY.get_sample_value("verify_staff_second_factor_failures_total") or 0
    codes = []
    for n in range(4):  # four rounds of "right password, four wrong codes", each from an address never seen
        client = _from(app.test_client(), f"198.51.100.{n + 1}")
        if password_step(client, REVIEWER, PASSWORD).status_code != 303:
            codes.append("password refused")
            continue
        codes += [code_step(client, other_code(secret, clock)).status_code for _ in range(4)]
    # The fifth wrong code locks the second factor; each further attempt is refused, whatever the address,
    # and however often the right password was given in between (before: 16 codes, all 401, never a 429).
    assert codes[:4] == [401] * 4 and set(codes[4:]) == {429} and len(codes) == 16, codes
    client = _from(app.test_client(), "192.0.2.99")
    assert password_step(client, REVIEWER, PASSWORD).status_code == 303  # the password itself is right
    locked = code_step(client, pyotp.TOTP(secret).at(clock()))
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0  # even the right code, for now
    assert [(e.details["key"], e.subject_id) for e in audit(registry, "staff.locked_out")][0] == (
        "second_factor", str(reviewer.id))
    assert (REGISTRY.get_sample_value("verify_staff_second_factor_failures_total") or 0) - before == 5
    warned = [r for r in caplog.records if "repeated second-factor failures" in r.getMessage()]
    assert len(warned) == 3 and warned[0].levelno == logging.WARNING  # from the third wrong code on

    clock.advance(minutes=20)  # the lock and the count run out; a right code signs in and clears the count
    client = _from(app.test_client(), "192.0.2.100")
    assert password_step(client, REVIEWER, PASSWORD).status_code == 303
    assert code_step(client, pyotp.TOTP(secret).at(clock())).status_code == 303
    with registry.sessions() as session:
        key = throttle.second_factor_key(reviewer.id, secret=registry.keyring.throttle_key())
        assert throttle.failures(session, key, now=clock()) == 0


# ================================================================ launch links, replayed and forged

def _issue(api: Api, key: str | None = None) -> Any:
    headers = {**api.auth, **({"Idempotency-Key": key} if key else {})}
    response = api.client.post("/api/v1/accounts/acc-1/launch-links", headers=headers)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response


def _sessions(registry: Registry) -> int:
    return count(registry, FreelancerSession)


@pytest.fixture
def link(api: Api) -> str:
    api.put_account("acc-1")
    return path_of(launch_url(api))


def test_a_used_link_replayed_from_elsewhere_is_refused_and_the_owner_keeps_the_session(api: Api, registry: Registry,
                                                                                        clock: FakeClock,
                                                                                        link: str) -> None:
    owner = api.client.application.test_client()
    assert owner.get(link).status_code == 303
    for attempt in range(3):  # a proxy log, a shared screenshot, the browser history ...
        thief = _from(api.client.application.test_client(), f"203.0.113.{attempt}")
        replay = thief.get(link)
        assert replay.status_code == 410 and "Set-Cookie" not in replay.headers
        assert thief.get("/verify").status_code == 401
        clock.advance(minutes=3)
    assert owner.get("/verify").status_code == 200  # the replays did not end or share the owner's session
    assert _sessions(registry) == 1
    clock.advance(hours=9)  # the owner's session is over: the link is still spent
    assert api.client.application.test_client().get(link).status_code == 410


def test_forged_and_tampered_tokens_open_nothing(api: Api, registry: Registry, link: str) -> None:
    token = link.rsplit("/", 1)[1]
    forged = [token.swapcase(), token[:-1], token + "A", ("B" if token[0] == "A" else "A") + token[1:], f"{token}%00", f"{token}%2F..%2F",
              "A" * 10_000, "%E2%80%AE" + token, token.replace("-", "+").replace("_", "/") + "=", f"{token}.",
              f"{token}%20", token.upper()]
    client = api.client.application.test_client()
    for value in forged:
        assert value != token
        response = client.get(f"/verify/launch/{value}")
        assert response.status_code in (400, 404, 410), (value[:50], response.status_code)
        assert "Set-Cookie" not in response.headers
    assert _sessions(registry) == 0
    client.set_cookie("verify_session", token)  # the launch token is not a session token
    assert client.get("/verify").status_code == 401
    assert client.get(link).status_code == 303  # the real link was not spent by any of that


def test_an_idempotent_retry_returns_the_same_link_which_is_never_stored_in_the_clear(api: Api, registry: Registry,
                                                                                      database_url: str, tmp_path: Path,
                                                                                      clock: FakeClock) -> None:
    api.put_account("acc-1")
    first = _issue(api, key="link-1")
    retry = _issue(api, key="link-1")
    url = first.get_json()["url"]
    assert retry.get_json()["url"] == url and retry.headers["Idempotent-Replayed"] == "true"
    assert first.headers["Cache-Control"] == retry.headers["Cache-Control"] == "no-store"
    token = url.rsplit("/", 1)[1]
    with registry.sessions() as session:
        stored = session.scalars(sa.select(IdempotencyKey.response_body)).one()
        assert session.scalar(sa.select(sa.func.count()).select_from(LaunchLink)) == 1
    assert token not in json.dumps(stored)  # sealed: a database dump does not sign anyone in

    client = api.client.application.test_client()
    assert client.get(path_of(url)).status_code == 303
    assert client.get(path_of(_issue(api, key="link-1").get_json()["url"])).status_code == 410  # replayed, still spent

    # After the data key that sealed it was removed, the response cannot be read back: a clear refusal, not a 500.
    rotated = create_app(make_settings(database_url, tmp_path, data_keys=(Fernet.generate_key().decode(),)))
    rotated.extensions[KEY].clock = clock
    try:
        headers = {"Authorization": f"Bearer {API_KEY}", "Idempotency-Key": "link-1"}
        response = rotated.test_client().post("/api/v1/accounts/acc-1/launch-links", headers=headers)
        assert_problem(response, 409, "idempotency_key_unreadable")
    finally:
        rotated.extensions[KEY].engine.dispose()
