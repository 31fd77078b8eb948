"""Settings from VERIFY_* variables (README, "Configuration")."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from verify_service.settings import ConfigurationError, load_settings

SECRETS = ("VERIFY_SECRET_KEY", "VERIFY_API_KEYS", "VERIFY_INBOUND_WEBHOOK_SECRETS",
           "VERIFY_ACCOUNT_SERVICE_WEBHOOK_URL", "VERIFY_ACCOUNT_SERVICE_WEBHOOK_SECRET",
           "VERIFY_IDENTITY_PEPPER", "VERIFY_DATA_KEYS", "VERIFY_AUDIT_CHECKPOINT_KEY", "VERIFY_SMTP_URL")
SECRET_KEY = "k" * 48
API_KEY = "a" * 40


def production(tmp_path: Path, **overrides: str) -> dict[str, str]:
    environ = {
        "VERIFY_ENV": "production",
        "VERIFY_INSTANCE_DIR": str(tmp_path / "instance"),
        "VERIFY_SECRET_KEY": SECRET_KEY,
        "VERIFY_API_KEYS": API_KEY,
        "VERIFY_INBOUND_WEBHOOK_SECRETS": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "VERIFY_ACCOUNT_SERVICE_WEBHOOK_URL": "https://accounts.example/hooks/verify",
        "VERIFY_ACCOUNT_SERVICE_WEBHOOK_SECRET": "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
        "VERIFY_IDENTITY_PEPPER": "pepper-" + "q" * 40,
        "VERIFY_DATA_KEYS": "HQfKzPv7wS2m4fJ1O0a8cXq9pE3rTbYuNdLkGhViW5U=",
        "VERIFY_AUDIT_CHECKPOINT_KEY": "checkpoint-" + "r" * 40,
        "VERIFY_SMTP_URL": "smtp://mailer:secret@smtp.corp.example:587",
        "VERIFY_BASE_URL": "https://verify.example",
        "VERIFY_GOOGLE_SERVICE_ACCOUNT_FILE": "/run/secrets/google-key.json",
        "VERIFY_MEET_HOST_USERS": "verify-host-1@corp.example",
    }
    environ.update(overrides)
    return environ


def development(tmp_path: Path, **overrides: str) -> dict[str, str]:
    return {"VERIFY_ENV": "development", "VERIFY_INSTANCE_DIR": str(tmp_path / "instance"), **overrides}


# ---------------------------------------------------------------- production

def test_complete_production_environment_loads(tmp_path: Path) -> None:
    settings = load_settings(production(tmp_path))
    assert settings.is_production
    assert settings.secret_key == SECRET_KEY
    assert settings.api_keys == (API_KEY,)
    assert settings.base_url == "https://verify.example"
    assert settings.generated == ()
    assert not (tmp_path / "instance" / "dev-secrets.json").exists()


def test_production_names_every_missing_secret_at_once(tmp_path: Path) -> None:
    environ = {k: v for k, v in production(tmp_path).items() if k not in SECRETS}
    with pytest.raises(ConfigurationError) as info:
        load_settings(environ)
    message = str(info.value)
    for name in SECRETS:
        assert f"{name} is not set" in message


@pytest.mark.parametrize("missing", SECRETS)
def test_production_names_a_single_missing_secret(tmp_path: Path, missing: str) -> None:
    environ = production(tmp_path)
    del environ[missing]
    with pytest.raises(ConfigurationError, match=f"{missing} is not set") as info:
        load_settings(environ)
    others = [name for name in SECRETS if name != missing]
    assert not any(f"{name} is not set" in str(info.value) for name in others)


def test_empty_values_count_as_missing(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="VERIFY_API_KEYS is not set"):
        load_settings(production(tmp_path, VERIFY_API_KEYS=" , ,"))


def test_short_secret_key_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="VERIFY_SECRET_KEY must be at least 32"):
        load_settings(production(tmp_path, VERIFY_SECRET_KEY="k" * 31))


@pytest.mark.parametrize("origin", ["market.example", "https://market.example/verify", "https://market.example?x=1",
                                    "ftp://market.example", "https://user@market.example", "https://:443",
                                    "https://market.example:99999"])
def test_a_return_url_origin_that_is_not_an_origin_is_refused_at_start(tmp_path: Path, origin: str) -> None:
    with pytest.raises(ConfigurationError, match="VERIFY_RETURN_URL_ORIGINS: .* is not an origin"):
        load_settings(development(tmp_path, VERIFY_RETURN_URL_ORIGINS=f"https://ok.example,{origin}"))


def test_return_url_origins_are_https_in_production(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="must be https:// in production"):
        load_settings(production(tmp_path, VERIFY_RETURN_URL_ORIGINS="http://market.example"))
    settings = load_settings(production(tmp_path, VERIFY_RETURN_URL_ORIGINS="https://market.example,https://a.example:8443/"))
    assert settings.return_url_origins == ("https://market.example", "https://a.example:8443/")


def test_short_api_key_refused_even_beside_a_long_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="VERIFY_API_KEYS must be at least 32"):
        load_settings(production(tmp_path, VERIFY_API_KEYS=f"{API_KEY},short-key"))


def test_keys_of_exactly_the_minimum_length_are_accepted(tmp_path: Path) -> None:
    settings = load_settings(production(tmp_path, VERIFY_SECRET_KEY="k" * 32, VERIFY_API_KEYS="a" * 32))
    assert settings.api_keys == ("a" * 32,)


@pytest.mark.parametrize("url", ["http://verify.example", "verify.example", "ftp://verify.example"])
def test_production_base_url_must_be_https(tmp_path: Path, url: str) -> None:
    with pytest.raises(ConfigurationError, match="VERIFY_BASE_URL must be an https://"):
        load_settings(production(tmp_path, VERIFY_BASE_URL=url))


def test_production_default_base_url_is_refused(tmp_path: Path) -> None:
    environ = production(tmp_path)
    del environ["VERIFY_BASE_URL"]
    with pytest.raises(ConfigurationError, match="VERIFY_BASE_URL"):
        load_settings(environ)


def test_google_backend_needs_service_account_in_production(tmp_path: Path) -> None:
    environ = {k: v for k, v in production(tmp_path, VERIFY_MEET_BACKEND="google").items()
               if k != "VERIFY_GOOGLE_SERVICE_ACCOUNT_FILE"}
    with pytest.raises(ConfigurationError, match="VERIFY_GOOGLE_SERVICE_ACCOUNT_FILE is required"):
        load_settings(environ)


# ---------------------------------------------------------------- parsing

def test_api_keys_are_split_on_commas_and_trimmed(tmp_path: Path) -> None:
    second = "b" * 40
    settings = load_settings(production(tmp_path, VERIFY_API_KEYS=f"  {API_KEY} ,\t{second} ,"))
    assert settings.api_keys == (API_KEY, second)


def test_base_url_trailing_slash_is_dropped(tmp_path: Path) -> None:
    assert load_settings(production(tmp_path, VERIFY_BASE_URL="https://verify.example/")).base_url \
        == "https://verify.example"


@pytest.mark.parametrize("value", ["staging", "Production", "prod", ""])
def test_bad_env_refused(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigurationError, match="VERIFY_ENV"):
        load_settings(development(tmp_path, VERIFY_ENV=value))


def test_bad_meet_backend_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="VERIFY_MEET_BACKEND"):
        load_settings(development(tmp_path, VERIFY_MEET_BACKEND="zoom"))


def test_bad_boolean_refused_naming_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="VERIFY_VALIDATE_RESPONSES must be a boolean"):
        load_settings(development(tmp_path, VERIFY_VALIDATE_RESPONSES="maybe"))


@pytest.mark.parametrize(("value", "expected"), [("1", True), ("TRUE", True), (" yes ", True), ("on", True),
                                                 ("0", False), ("False", False), ("no", False), ("off", False)])
def test_boolean_spellings(tmp_path: Path, value: str, expected: bool) -> None:
    settings = load_settings(development(tmp_path, VERIFY_VALIDATE_RESPONSES=value))
    assert settings.validate_responses is expected


def test_boolean_defaults(tmp_path: Path) -> None:
    settings = load_settings(development(tmp_path))
    assert settings.validate_responses is True
    # Production does not parse every response back; it can be switched on.
    assert load_settings(production(tmp_path)).validate_responses is False
    assert load_settings(production(tmp_path, VERIFY_VALIDATE_RESPONSES="on")).validate_responses is True


def test_bad_idempotency_ttl_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="VERIFY_IDEMPOTENCY_TTL_HOURS"):
        load_settings(development(tmp_path, VERIFY_IDEMPOTENCY_TTL_HOURS="a day"))


# ---------------------------------------------------------------- development

def test_development_generates_secrets_once_owner_only(tmp_path: Path) -> None:
    first = load_settings(development(tmp_path))
    path = tmp_path / "instance" / "dev-secrets.json"
    assert path.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert set(first.generated) == {"VERIFY_SECRET_KEY", "VERIFY_API_KEYS", "VERIFY_INBOUND_WEBHOOK_SECRETS",
                                    "VERIFY_ACCOUNT_SERVICE_WEBHOOK_SECRET", "VERIFY_IDENTITY_PEPPER",
                                    "VERIFY_DATA_KEYS", "VERIFY_AUDIT_CHECKPOINT_KEY"}
    assert len(first.secret_key) >= 32 and len(first.api_keys) == 1 and len(first.api_keys[0]) >= 32
    assert first.inbound_webhook_secrets[0].startswith("whsec_")
    stored = json.loads(path.read_text(encoding="utf-8"))
    assert stored["api_key"] == first.api_keys[0]
    assert stored["demo_reviewer_password"] and stored["demo_lead_password"]
    before = path.read_bytes()

    second = load_settings(development(tmp_path))
    assert second.api_keys == first.api_keys
    assert second.secret_key == first.secret_key
    assert second.inbound_webhook_secrets == first.inbound_webhook_secrets
    assert second.account_service_webhook_secret == first.account_service_webhook_secret
    assert path.read_bytes() == before


def test_development_does_not_override_the_environment(tmp_path: Path) -> None:
    settings = load_settings(development(tmp_path, VERIFY_SECRET_KEY=SECRET_KEY, VERIFY_API_KEYS=API_KEY))
    assert settings.secret_key == SECRET_KEY
    assert settings.api_keys == (API_KEY,)
    assert "VERIFY_SECRET_KEY" not in settings.generated
    assert "VERIFY_API_KEYS" not in settings.generated
    assert "VERIFY_INBOUND_WEBHOOK_SECRETS" in settings.generated


def test_testing_mode_generates_nothing(tmp_path: Path) -> None:
    settings = load_settings({"VERIFY_ENV": "testing", "VERIFY_INSTANCE_DIR": str(tmp_path / "instance")})
    assert settings.generated == ()
    assert settings.api_keys == ()
    assert not (tmp_path / "instance").exists()


def test_default_database_is_sqlite_under_the_instance_dir(tmp_path: Path) -> None:
    settings = load_settings(development(tmp_path))
    instance = (tmp_path / "instance").resolve()
    assert settings.instance_dir == instance
    assert settings.database_is_sqlite
    assert settings.database_url == f"sqlite:///{instance / 'verify-service.sqlite3'}"


def test_database_url_from_the_environment_wins(tmp_path: Path) -> None:
    url = "postgresql+psycopg://verify@db.example/verify"
    settings = load_settings(production(tmp_path, VERIFY_DATABASE_URL=url))
    assert settings.database_url == url
    assert not settings.database_is_sqlite


def test_a_stale_tmp_file_does_not_widen_the_secrets_mode(tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    instance.mkdir()
    stale = instance / "dev-secrets.tmp"
    stale.write_text("{}")
    stale.chmod(0o644)
    load_settings(development(tmp_path))
    assert (instance / "dev-secrets.json").stat().st_mode & 0o777 == 0o600


def test_production_refuses_the_sandbox_emulator(tmp_path: Path) -> None:
    environ = {k: v for k, v in production(tmp_path).items() if k != "VERIFY_GOOGLE_SERVICE_ACCOUNT_FILE"}
    with pytest.raises(ConfigurationError, match="unauthenticated Meet emulator"):
        load_settings(environ)


def test_the_backend_defaults_to_google_once_a_key_file_is_set(tmp_path: Path) -> None:
    assert load_settings(development(tmp_path)).meet_backend == "sandbox"
    configured = load_settings(development(tmp_path, VERIFY_GOOGLE_SERVICE_ACCOUNT_FILE="/k.json",
                                          VERIFY_MEET_HOST_USERS="h@corp.example"))
    assert configured.meet_backend == "google"
    assert configured.meet_api_endpoint == ""  # Google's own endpoints


def test_journey_and_dashboard_settings_are_read_and_checked(tmp_path: Path) -> None:
    settings = load_settings(production(tmp_path, VERIFY_DAILY_SESSION_LIMIT="5", VERIFY_REMINDER_MINUTES="15, 1440, 1440",
                                        VERIFY_FOUR_EYES_ON_FAIL="false", VERIFY_CHECKLIST="Face matches | ID valid"))
    assert settings.daily_session_limit == 5
    assert settings.reminder_minutes == (1440, 15)
    assert load_settings(production(tmp_path)).reminder_minutes == (1440, 15)
    assert settings.four_eyes_on_fail is False
    assert settings.checklist == ("Face matches", "ID valid")
    with pytest.raises(ConfigurationError, match="VERIFY_REMINDER_MINUTES must be a whole number"):
        load_settings(production(tmp_path, VERIFY_REMINDER_MINUTES="soon"))
    with pytest.raises(ConfigurationError, match="VERIFY_IDENTITY_PEPPER must be at least"):
        load_settings(production(tmp_path, VERIFY_IDENTITY_PEPPER="short"))
    with pytest.raises(ConfigurationError, match="VERIFY_OIDC_ALLOWED_DOMAIN is required"):
        load_settings(production(tmp_path, VERIFY_OIDC_CLIENT_ID="client.apps.googleusercontent.com"))


def test_rate_limits_have_defaults_and_read_the_environment(tmp_path: Path) -> None:
    defaults = load_settings(production(tmp_path))
    assert (defaults.launch_link_rate_limit, defaults.sign_in_rate_limit, defaults.call_start_rate_limit) == (
        "30/minute", "20/minute", "10/minute")
    assert defaults.redis_url == ""
    chosen = load_settings(production(tmp_path, VERIFY_LAUNCH_LINK_RATE_LIMIT="5/minute",
                                      VERIFY_SIGN_IN_RATE_LIMIT="3/minute", VERIFY_CALL_START_RATE_LIMIT="1/minute",
                                      VERIFY_REDIS_URL="redis://cache:6379/0"))
    assert (chosen.launch_link_rate_limit, chosen.sign_in_rate_limit, chosen.call_start_rate_limit) == (
        "5/minute", "3/minute", "1/minute")
    assert chosen.redis_url == "redis://cache:6379/0"
