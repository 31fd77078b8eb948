"""Secrets at rest, attacked by someone holding a copy of the database (both backends).

- Staff TOTP secrets are sealed under ``VERIFY_DATA_KEYS``: the column gives nobody a second factor.
  A secret stored in clear before sealing still works and is sealed at its first use;
  ``verify-service keys rotate`` seals what is left and moves every sealed value (TOTP secrets, launch
  links kept for Idempotency-Key replays) to the newest key, so the old key can be removed.
- Sign-in throttle counters are keyed with an HMAC: hashing guesses of emails and addresses, which
  recovered every failed sign-in's email and IP from plain SHA-256 keys, finds none.
- Without a data key (possible only outside production) nothing is stored in clear: a clear error.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyotp
import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import API_KEY, DATA_KEY, Api, FakeClock, make_settings
from tests.functional.test_abuse import _from
from tests.functional.test_staff_sign_in import code_step, enrol, password_step, sign_out
from tests.support.cli import run_cli
from tests.support.staff import PASSWORD, staff_member
from verify_service import create_app
from verify_service.api.models import IdempotencyKey
from verify_service.crypto import KeysUnavailable, looks_sealed
from verify_service.db import unit_of_work
from verify_service.freelancer.models import LaunchLink
from verify_service.registry import KEY, Registry
from verify_service.staff.models import Reviewer, SignInThrottle
from verify_service.staff import throttle, two_step
from verify_service.settings import ConfigurationError

NEW_KEY = "Wc3bHn2l0Ue7m8Q5xYtJpV9aZr4sKf6gDhB1oLiEqNM="  # a second Fernet key, tests only
reviewers = Reviewer.__table__


def stored_secret(registry: Registry, reviewer_id: int) -> str | None:
    """What a copy of the database holds in ``reviewers.totp_secret``."""
    with registry.engine.connect() as connection:
        return connection.execute(sa.select(reviewers.c.totp_secret).where(reviewers.c.id == reviewer_id)).scalar()


def store_in_clear(registry: Registry, reviewer_id: int, secret: str, clock: FakeClock) -> None:
    """A row as it was before secrets were sealed: the clear base32 secret, enrolment confirmed."""
    with registry.engine.begin() as connection:
        connection.execute(sa.update(reviewers).where(reviewers.c.id == reviewer_id)
                           .values(totp_secret=secret, totp_confirmed_at=clock()))


def sign_in(client: FlaskClient, email: str, secret: str, clock: FakeClock) -> None:
    assert password_step(client, email).status_code == 303
    assert code_step(client, pyotp.TOTP(secret).at(clock())).status_code == 303


# ================================================================ TOTP secrets

def test_a_copy_of_the_database_gives_nobody_a_second_factor(client: FlaskClient, registry: Registry,
                                                             clock: FakeClock) -> None:
    reviewer, secret, _ = enrol(client, registry, clock)
    stored = stored_secret(registry, reviewer.id)
    assert stored is not None and secret not in stored.upper() and looks_sealed(stored)
    assert Fernet(DATA_KEY).decrypt(stored.encode()).decode() == secret  # sealed with the configured key
    with pytest.raises(InvalidToken):
        Fernet(NEW_KEY).decrypt(stored.encode())  # ... and with nothing else

    sign_out(client)
    clock.advance(minutes=1)
    sign_in(client, reviewer.email, secret, clock)  # the sealed secret still signs its owner in
    assert stored_secret(registry, reviewer.id) == stored


def test_a_secret_stored_in_clear_before_sealing_still_works_and_is_sealed_at_first_use(
        client: FlaskClient, registry: Registry, clock: FakeClock) -> None:
    reviewer = staff_member(registry)
    secret = pyotp.random_base32()
    store_in_clear(registry, reviewer.id, secret, clock)
    sign_in(client, reviewer.email, secret, clock)
    stored = stored_secret(registry, reviewer.id)
    assert stored is not None and looks_sealed(stored) and secret not in stored.upper()
    assert Fernet(DATA_KEY).decrypt(stored.encode()).decode() == secret


def test_without_a_data_key_a_secret_is_refused_never_stored_in_clear(database_url: str, tmp_path: Path,
                                                                      clock: FakeClock) -> None:
    app = create_app(make_settings(database_url, tmp_path, data_keys=()))  # possible only outside production
    registry: Registry = app.extensions[KEY]
    registry.clock = clock
    try:
        reviewer = staff_member(registry)
        with pytest.raises(KeysUnavailable, match="VERIFY_DATA_KEYS is not set"):
            with unit_of_work(registry.sessions) as session:
                two_step.start_enrolment(session, session.get_one(Reviewer, reviewer.id), now=clock())
        assert stored_secret(registry, reviewer.id) is None
        api = Api(app.test_client())
        assert api.put_account("acc-1").status_code == 201
        # A launch link's replay cannot be remembered sealed: the request fails whole (logged with the reason).
        refused = api.client.post("/api/v1/accounts/acc-1/launch-links",
                                  headers={"Authorization": f"Bearer {API_KEY}", "Idempotency-Key": "k-1"})
        assert refused.status_code == 500
        with registry.sessions() as session:
            assert session.scalar(sa.select(sa.func.count()).select_from(IdempotencyKey)) == 0
            assert session.scalar(sa.select(sa.func.count()).select_from(LaunchLink)) == 0
    finally:
        registry.engine.dispose()


def test_a_malformed_data_key_stops_the_app_at_start_up_without_showing_it(database_url: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="VERIFY_DATA_KEYS: key 2 is not a Fernet key") as refused:
        create_app(make_settings(database_url, tmp_path, data_keys=(DATA_KEY, "not-a-fernet-key")))
    assert "not-a-fernet-key" not in str(refused.value)


# ================================================================ rotation

def _launch_link(api: Api, key: str) -> str:
    response = api.client.post("/api/v1/accounts/acc-1/launch-links",
                               headers={**api.auth, "Idempotency-Key": key})
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()["url"]


def test_keys_rotate_reseals_everything_under_the_newest_key_so_the_old_one_can_go(
        app: Flask, client: FlaskClient, api: Api, registry: Registry, clock: FakeClock, database_url: str,
        tmp_path: Path) -> None:
    enrolled, secret, _ = enrol(client, registry, clock)
    legacy = staff_member(registry, email="legacy@example.com")
    legacy_secret = pyotp.random_base32()
    store_in_clear(registry, legacy.id, legacy_secret, clock)
    assert api.put_account("acc-1").status_code == 201
    url = _launch_link(api, "link-1")

    both = {"VERIFY_DATA_KEYS": f"{NEW_KEY},{DATA_KEY}"}  # the new key first: it seals; the old one still opens
    first = run_cli(database_url, tmp_path, "keys", "rotate", **both)
    assert first.exit_code == 0, first.output
    assert "staff TOTP secrets: 1 re-sealed under the newest key, 1 sealed (were in clear), 0 already" in first.output
    assert "Idempotency-Key replays: 1 re-sealed under the newest key, 0 sealed (were in clear), 0" in first.output
    assert "the 1 older key(s) in VERIFY_DATA_KEYS can be removed" in first.output
    again = run_cli(database_url, tmp_path, "keys", "rotate", **both)  # idempotent: nothing left to do
    assert again.exit_code == 0, again.output
    assert "staff TOTP secrets: 0 re-sealed under the newest key, 0 sealed (were in clear), 2 already" in again.output
    assert "replays: 0 re-sealed under the newest key, 0 sealed (were in clear), 1 already" in again.output
    for reviewer_id in (enrolled.id, legacy.id):
        assert Fernet(NEW_KEY).decrypt((stored_secret(registry, reviewer_id) or "").encode())

    # The old key removed: everything still opens.
    rotated = create_app(make_settings(database_url, tmp_path, data_keys=(NEW_KEY,)))
    rotated.extensions[KEY].clock = clock
    try:
        client = rotated.test_client()
        clock.advance(minutes=1)
        sign_in(client, enrolled.email, secret, clock)
        sign_in(rotated.test_client(), legacy.email, legacy_secret, clock)
        assert _launch_link(Api(rotated.test_client()), "link-1") == url  # the replay opens under the new key
    finally:
        rotated.extensions[KEY].engine.dispose()


def test_keys_rotate_names_what_no_configured_key_opens(client: FlaskClient, registry: Registry, clock: FakeClock,
                                                        database_url: str, tmp_path: Path) -> None:
    reviewer, _, _ = enrol(client, registry, clock)
    result = run_cli(database_url, tmp_path, "keys", "rotate", VERIFY_DATA_KEYS=NEW_KEY)  # the old key dropped
    assert result.exit_code == 1
    assert f"no configured key opens (the key they were sealed with was removed): staff account {reviewer.id}" \
        in result.output


# ================================================================ sign-in throttle keys

def test_throttle_keys_do_not_give_away_who_failed_to_sign_in_or_from_where(app: Flask, registry: Registry,
                                                                            clock: FakeClock) -> None:
    staff = staff_member(registry)
    emails = [staff.email, "ana@example.com", "boss@example.com"]
    addresses = ["192.0.2.10", "198.51.100.7", "203.0.113.99"]
    for email, address in zip(emails, addresses):
        client = _from(app.test_client(), address)
        assert password_step(client, email, "wrong " + PASSWORD).status_code == 401
    with registry.sessions() as session:
        stored = set(session.scalars(sa.select(SignInThrottle.key_hash)))
    assert len(stored) == 6  # a counter per email and per address

    # The attacker's dictionary: every guess hashed the way the keys were derived (a plain SHA-256).
    guesses = [f"account:{email}" for email in emails] + [f"ip:{address}" for address in addresses]
    guesses += [f"second_factor:{n}" for n in range(1, 100)]
    assert stored.isdisjoint(hashlib.sha256(guess.encode()).hexdigest() for guess in guesses)
    # Only the app's secret finds them.
    secret = registry.keyring.throttle_key()
    assert stored == ({throttle.account_key(email, secret=secret).hash for email in emails}
                      | {throttle.ip_key(address, secret=secret).hash for address in addresses})
