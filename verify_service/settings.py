"""Settings, read once from ``VERIFY_*`` environment variables (README, "Configuration").

Three modes (``VERIFY_ENV``):

* ``development`` (default) — missing secrets are generated once, kept in
  ``instance/dev-secrets.json`` so restarts keep them, and printed loudly;
* ``testing`` — whatever the test passes; nothing is generated on disk;
* ``production`` — every secret must come from the environment, or the
  service refuses to start and names each missing one.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ENVIRONMENTS = ("development", "testing", "production")
MEET_BACKENDS = ("sandbox", "google")
MIN_SECRET_LENGTH = 32
# The Meet and Calendar emulator the app serves itself with VERIFY_MEET_BACKEND=sandbox
# (integrations/sandbox_google/): its APIs' paths under the base URL, and the host users it knows.
SANDBOX_MEET_PATH = "/sandbox/google/meet/"
SANDBOX_CALENDAR_PATH = "/sandbox/google/calendar/v3/"
SANDBOX_HOST_USERS = ("host-1@sandbox.example", "host-2@sandbox.example")
MEET_EVENTS_PATH = "/webhooks/google/meet-events"
GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"
SANDBOX_EVENTS = {"topic": "projects/sandbox/topics/meet-events", "account": "pubsub-push@sandbox.verify-service.invalid",
                  "api": "/sandbox/google/workspaceevents/", "certs": "/sandbox/google/oauth2/v1/certs", "userinfo": "/sandbox/google/oauth2/v3/userinfo"}


class ConfigurationError(RuntimeError):
    """Raised when the settings cannot run the service; the message says what to fix."""


def _split(value: str | None, separator: str = ",") -> tuple[str, ...]:
    if not value:
        return ()
    return tuple(part.strip() for part in value.split(separator) if part.strip())


@dataclasses.dataclass(frozen=True)
class Settings:
    env: str = "development"
    instance_dir: Path = Path("instance")
    database_url: str = ""
    secret_key: str = ""
    base_url: str = "http://127.0.0.1:8000"
    api_keys: tuple[str, ...] = ()
    inbound_webhook_secrets: tuple[str, ...] = ()
    account_service_webhook_url: str = ""
    account_service_webhook_secret: str = ""
    meet_backend: str = "sandbox"
    google_service_account_file: str = ""
    meet_host_users: tuple[str, ...] = ()
    meet_api_endpoint: str = ""
    calendar_api_endpoint: str = ""
    release_catalog: str = ""
    # Real-time attendance (README, "Real-time attendance"): on with a topic (the sandbox's own in development).
    meet_events_topic: str = ""            # projects/{project}/topics/{topic}
    meet_events_audience: str = ""         # the push token's audience; default: base_url + MEET_EVENTS_PATH
    meet_events_push_account: str = ""     # the push subscription's service account (the token's email)
    meet_events_certs_url: str = GOOGLE_CERTS_URL
    meet_events_api_endpoint: str = ""     # the Workspace Events API (the sandbox's own with the sandbox)
    meet_userinfo_endpoint: str = ""       # OpenID userinfo: a host user's id (the sandbox's own with the sandbox)
    attendance_reconcile_seconds: int = 300  # with events: how long a call goes without event or read
    meet_read_quota_per_user: int = 600    # Meet API reads per minute per user, per project (Google's limits)
    meet_read_quota_per_project: int = 6000
    # Meet spaces and calendar invites (see integrations/google_meet.py).
    meet_access_type: str = "RESTRICTED"
    meet_creates_per_minute: int = 10      # Google's per-user limit for spaces.create
    meet_project_creates_per_minute: int = 100
    calendar_send_updates: str = "all"
    session_ttl_minutes: int = 30          # nobody joined by then: the session expires
    # The freelancer journey: new call sessions (started or booked) a freelancer may open per day,
    # and how many 15-minute appointments a slot takes when leads have set no reviewer shifts.
    daily_session_limit: int = 3
    booking_default_capacity: int = 2
    booking_days: int = 7
    # Appointment reminders (verification.appointment.reminder), minutes before the call.
    reminder_minutes: tuple[int, ...] = (1440, 15)
    # Public endpoints (client checks, support matrix), per client IP.
    client_check_rate_limit: str = "60/minute;10/second"
    # Launch links per account (and per API key), staff sign-in per IP, call starts per freelancer session.
    launch_link_rate_limit: str = "30/minute"
    return_url_origins: tuple[str, ...] = ()   # where a launch link's return_url may point (freelancer/return_url.py)
    marketplace_name: str = "the marketplace"  # the freelancer pages' "Back to <name>" link and their sentences
    sign_in_rate_limit: str = "20/minute"
    call_start_rate_limit: str = "10/minute"
    rate_limit_storage: str = "memory://"
    trusted_proxies: int = 0
    # How long a request waits for a pooled connection (when all are busy) before it answers 503.
    db_pool_timeout_seconds: int = 5
    # Validate every API response against its schema: catches our own bugs in development and tests.
    # Off by default in production: every response is parsed back and checked,
    # and a slip would turn into 500s for the marketplace rather than a failing test.
    validate_responses: bool = True
    # How long an Idempotency-Key is remembered.
    idempotency_ttl_hours: int = 24
    # The reviewer dashboard.
    identity_pepper: str = ""              # HMAC key of ID document fingerprints (a secret)
    four_eyes_on_fail: bool = True         # a fail waits for a lead's second review
    claim_idle_minutes: int = 20           # a claim with no activity this long goes back to the queue
    # POST /api/v1/simulations/…/outcome: simulated calls for the account service's integration tests.
    # On in development and testing, off in production unless set (README, "Testing your integration end to end").
    simulations: bool = True
    # The rules of evidence for a decision (docs/architecture.md, 'Review and evidence').
    pass_requires_id: bool = True          # a pass needs an ID document recorded and not expired
    no_show_wait_minutes: int = 5          # a no show needs the reviewer in the call at least this long
    pass_sample_rate: float = 0.05         # share of passes that go to the leads' QA list, chosen at random
    # A call in progress with nobody in its conference this long (and no decision) ends as abandoned.
    abandoned_call_minutes: int = 20
    # Booking changes (book, reschedule, cancel) a freelancer may make in any 24 hours.
    booking_changes_per_day: int = 10
    checklist: tuple[str, ...] = (
        "The person on camera matches the profile photo",
        "The name on the ID matches the profile name",
        "The country on the ID matches the profile country",
        "The ID is valid (not expired) and shown in full",
        "They confirmed recent activity on their account",
    )
    # Staff invitations and notices by email: SMTP (smtp://user:pass@host:587 with STARTTLS, or smtps://host:465).
    # Empty outside production: the built-in mailbox (/sandbox/mail) keeps what is sent.
    smtp_url: str = ""
    mail_from: str = "verify-service <no-reply@verify-service.invalid>"
    staff_invite_hours: int = 48           # a staff invitation or credential-reset link works this long, once
    # Secrets at rest: Fernet keys (comma list, newest first: it encrypts; the others still decrypt).
    data_keys: tuple[str, ...] = ()
    # Signs the audit chain's checkpoints (HMAC-SHA256): a key the database never holds.
    audit_checkpoint_key: str = ""
    # Optional Google Workspace single sign-on (OpenID Connect) for staff.
    oidc_client_id: str = ""
    oidc_client_secret: str = ""
    oidc_discovery_url: str = "https://accounts.google.com/.well-known/openid-configuration"
    oidc_allowed_domain: str = ""          # the Workspace domain ("hd" claim) staff must belong to
    # Operations.
    redis_url: str = ""                    # shared rate-limit storage for several web processes
    retention_days: int = 90               # notes, ID evidence, Meet display names: counted from the call's end
    event_retention_days: int = 30         # delivered outbox events, and so the events API and its cursors
    log_format: str = "text"               # "json" (one object per line) or "text"; production defaults to json
    # Where `verify-service scheduler` serves its own /metrics (job runs, Meet errors); port 0 = off.
    scheduler_metrics_port: int = 9464
    scheduler_metrics_addr: str = "0.0.0.0"
    generated: tuple[str, ...] = ()        # names of secrets generated for development, so the banner can say so

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def meet_events(self) -> bool:  # configured: attendance comes from Meet's events, polling only reconciles
        return bool(self.meet_events_topic)

    @property
    def database_is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def _bool(name: str, value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigurationError(f"{name} must be a boolean (true/false), got {value!r}")


def _int(name: str, value: str | None, default: int, *, minimum: int = 1) -> int:
    if value is None or value.strip() == "":
        return default
    try:
        number = int(value)
    except ValueError as exc:
        raise ConfigurationError(f"{name} must be a whole number, got {value!r}") from exc
    if number < minimum:
        raise ConfigurationError(f"{name} must be at least {minimum}, got {number}")
    return number


def _fraction(name: str, value: str | None, default: float) -> float:
    """A number from 0 to 1 (a share). Raises: ConfigurationError."""
    if value is None or value.strip() == "":
        return default
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not 0.0 <= number <= 1.0:  # not a number, or out of range
        raise ConfigurationError(f"{name} must be a number from 0 to 1, got {value!r}")
    return number


def _minutes(name: str, value: str | None, default: tuple[int, ...]) -> tuple[int, ...]:
    """A comma list of whole numbers (at least 1), deduplicated, largest first.

    Raises:
        ConfigurationError: a part is not a whole number of at least 1.
    """
    if value is None or value.strip() == "":
        return default
    return tuple(sorted({_int(name, part, 1) for part in _split(value)}, reverse=True))


# Whole numbers that may be 0 (every other one is at least 1).
_MAY_BE_ZERO = frozenset({"booking_default_capacity", "trusted_proxies", "no_show_wait_minutes",
                          "scheduler_metrics_port"})
_SEPARATORS = {"checklist": "|"}  # lists are comma separated, except these
# VERIFY_ENV is read first (other defaults depend on it); ``generated`` is what development filled in.
_NOT_PARSED = frozenset({"env", "generated"})


def _env_name(field: str) -> str:  # the environment variable of a settings field
    return f"VERIFY_{field.upper()}"


def _parse(field: dataclasses.Field[Any], value: str | None, default: Any) -> Any:
    """``value`` read as the field's type; unset or blank is ``default``. Raises: ConfigurationError."""
    name, kind = _env_name(field.name), field.type
    if kind == "bool":
        return _bool(name, value, default)
    if kind == "int":
        return _int(name, value, default, minimum=0 if field.name in _MAY_BE_ZERO else 1)
    if kind == "float":
        return _fraction(name, value, default)
    if kind == "tuple[int, ...]":
        return _minutes(name, value, default)
    if value is None or value.strip() == "":
        return default
    if kind == "tuple[str, ...]":
        return _split(value, _SEPARATORS.get(field.name, ",")) or default
    if kind == "Path":
        return Path(value)
    return value


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build settings from the environment: each field from its ``VERIFY_*`` variable, else its default.

    Raises:
        ConfigurationError: a value is malformed, or production lacks a secret.
    """
    env_vars = os.environ if environ is None else environ
    env = env_vars.get("VERIFY_ENV", Settings.env)
    if env not in ENVIRONMENTS:
        raise ConfigurationError(f"VERIFY_ENV must be one of {', '.join(ENVIRONMENTS)}, got {env!r}")
    # The defaults that depend on the environment itself; every other one is the dataclass's.
    defaults: dict[str, Any] = {
        "instance_dir": Path.cwd() / "instance",
        # The sandbox unless Google credentials are configured.
        "meet_backend": "google" if env_vars.get("VERIFY_GOOGLE_SERVICE_ACCOUNT_FILE") else "sandbox",
        "meet_events_topic": SANDBOX_EVENTS["topic"] if env == "development"
        and not env_vars.get("VERIFY_GOOGLE_SERVICE_ACCOUNT_FILE") and env_vars.get("VERIFY_MEET_BACKEND", "sandbox")
        == "sandbox" else "",
        "validate_responses": env != "production",
        "simulations": env != "production",
        "log_format": "json" if env == "production" else "text",
    }
    values = {field.name: _parse(field, env_vars.get(_env_name(field.name)), defaults.get(field.name, field.default))
              for field in dataclasses.fields(Settings) if field.name not in _NOT_PARSED}
    values["instance_dir"] = values["instance_dir"].resolve()
    values["base_url"] = values["base_url"].rstrip("/")
    return finalize(Settings(env=env, **values))


def finalize(settings: Settings) -> Settings:
    """Fill development defaults, then check the result.

    Raises:
        ConfigurationError: see :func:`check`.
    """
    settings = with_sandbox_defaults(settings)
    if not settings.database_url:
        settings = settings.replace(
            database_url=f"sqlite:///{settings.instance_dir / 'verify-service.sqlite3'}"
        )
    if settings.env == "development":
        from verify_service.dev_secrets import with_development_secrets

        settings = with_development_secrets(settings)
    check(settings)
    return settings


def with_sandbox_defaults(settings: Settings) -> Settings:
    """With the sandbox backend: the emulator's endpoints and host users where the settings name none."""
    settings = settings.replace(meet_events_audience=settings.meet_events_audience or settings.base_url + MEET_EVENTS_PATH)
    if settings.meet_backend != "sandbox":
        return settings
    base, certs = settings.base_url, settings.meet_events_certs_url
    return settings.replace(
        meet_api_endpoint=settings.meet_api_endpoint or base + SANDBOX_MEET_PATH,
        calendar_api_endpoint=settings.calendar_api_endpoint or base + SANDBOX_CALENDAR_PATH,
        meet_host_users=settings.meet_host_users or SANDBOX_HOST_USERS,
        meet_events_api_endpoint=settings.meet_events_api_endpoint or base + SANDBOX_EVENTS["api"],
        meet_userinfo_endpoint=settings.meet_userinfo_endpoint or base + SANDBOX_EVENTS["userinfo"],
        meet_events_certs_url=base + SANDBOX_EVENTS["certs"] if certs == GOOGLE_CERTS_URL else certs,
        meet_events_push_account=settings.meet_events_push_account or SANDBOX_EVENTS["account"])


def check(settings: Settings) -> None:
    """Refuse settings the service cannot run safely with. Raises: ConfigurationError naming every problem."""
    problems: list[str] = []
    if settings.meet_backend not in MEET_BACKENDS:
        problems.append(f"VERIFY_MEET_BACKEND must be one of {', '.join(MEET_BACKENDS)}")
    if settings.log_format not in ("json", "text"):
        problems.append("VERIFY_LOG_FORMAT must be json or text")
    if settings.scheduler_metrics_port > 65535:
        problems.append("VERIFY_SCHEDULER_METRICS_PORT must be a TCP port (0 to 65535; 0 turns it off)")
    if settings.meet_access_type not in ("RESTRICTED", "TRUSTED"):
        problems.append("VERIFY_MEET_ACCESS_TYPE must be RESTRICTED or TRUSTED")
    if settings.calendar_send_updates not in ("all", "externalOnly", "none"):
        problems.append("VERIFY_CALENDAR_SEND_UPDATES must be all, externalOnly or none")
    if settings.smtp_url and not settings.smtp_url.strip().lower().startswith(("smtp://", "smtps://")):
        problems.append("VERIFY_SMTP_URL must be smtp://[user:password@]host[:port] (STARTTLS) or smtps://… "
                        "(implicit TLS)")
    problems += _origin_problems(settings)
    if settings.meet_events and not re.fullmatch(r"projects/[^/]+/topics/[^/]+", settings.meet_events_topic):
        problems.append("VERIFY_MEET_EVENTS_TOPIC must be a Pub/Sub topic: projects/{project}/topics/{topic}")
    if settings.meet_events and settings.meet_backend == "google" and not settings.meet_events_push_account:
        problems.append("VERIFY_MEET_EVENTS_PUSH_ACCOUNT must name the push subscription's service account")
    if settings.meet_backend == "google" and not settings.meet_host_users:
        problems.append("VERIFY_MEET_HOST_USERS must name at least one Workspace user with VERIFY_MEET_BACKEND=google")
    if settings.is_production:
        required = {
            "VERIFY_SECRET_KEY": settings.secret_key,
            "VERIFY_API_KEYS": settings.api_keys,
            "VERIFY_INBOUND_WEBHOOK_SECRETS": settings.inbound_webhook_secrets,
            "VERIFY_ACCOUNT_SERVICE_WEBHOOK_URL": settings.account_service_webhook_url,
            "VERIFY_ACCOUNT_SERVICE_WEBHOOK_SECRET": settings.account_service_webhook_secret,
            "VERIFY_IDENTITY_PEPPER": settings.identity_pepper,
            "VERIFY_DATA_KEYS": settings.data_keys,
            "VERIFY_AUDIT_CHECKPOINT_KEY": settings.audit_checkpoint_key,
            "VERIFY_SMTP_URL": settings.smtp_url,
        }
        problems += [f"{name} is not set" for name, value in required.items() if not value]
        if settings.secret_key and len(settings.secret_key) < MIN_SECRET_LENGTH:
            problems.append(f"VERIFY_SECRET_KEY must be at least {MIN_SECRET_LENGTH} characters")
        if settings.identity_pepper and len(settings.identity_pepper) < MIN_SECRET_LENGTH:
            problems.append(f"VERIFY_IDENTITY_PEPPER must be at least {MIN_SECRET_LENGTH} characters")
        if settings.audit_checkpoint_key and len(settings.audit_checkpoint_key) < MIN_SECRET_LENGTH:
            problems.append(f"VERIFY_AUDIT_CHECKPOINT_KEY must be at least {MIN_SECRET_LENGTH} characters")
        if settings.oidc_client_id and not settings.oidc_allowed_domain:
            problems.append("VERIFY_OIDC_ALLOWED_DOMAIN is required with VERIFY_OIDC_CLIENT_ID: otherwise any "
                            "Google account could try to sign in")
        if any(len(key) < MIN_SECRET_LENGTH for key in settings.api_keys):
            problems.append(f"every key in VERIFY_API_KEYS must be at least {MIN_SECRET_LENGTH} characters")
        if settings.meet_backend == "sandbox":
            problems.append("VERIFY_MEET_BACKEND=sandbox serves an unauthenticated Meet emulator; production needs "
                            "google (set VERIFY_GOOGLE_SERVICE_ACCOUNT_FILE and VERIFY_MEET_HOST_USERS)")
        if settings.meet_backend == "google" and not settings.google_service_account_file:
            problems.append("VERIFY_GOOGLE_SERVICE_ACCOUNT_FILE is required with VERIFY_MEET_BACKEND=google")
        if not settings.base_url.startswith("https://"):
            problems.append("VERIFY_BASE_URL must be an https:// URL in production")
    if problems:
        raise ConfigurationError("cannot start verify-service: " + "; ".join(problems))


_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of ``url`` (lower case, default port left out); None when it has none.

    The one reading of an origin: the check of ``VERIFY_RETURN_URL_ORIGINS`` below and of a launch link's
    ``return_url`` (``freelancer/return_url.py``) both use it."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname or parts.username is not None \
            or parts.password is not None:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    shown_port = f":{port}" if port is not None and port != _DEFAULT_PORTS[parts.scheme] else ""
    return f"{parts.scheme}://{host}{shown_port}"


def _origin_problems(settings: Settings) -> list[str]:
    """Each ``VERIFY_RETURN_URL_ORIGINS`` entry must be an origin (``scheme://host[:port]``; https in production)."""
    problems = []
    for entry in settings.return_url_origins:
        origin = origin_of(entry)
        parts = urlsplit(entry) if origin is not None else None  # urlsplit took it, then
        if parts is None or parts.path not in ("", "/") or parts.query or parts.fragment:
            problems.append(f"VERIFY_RETURN_URL_ORIGINS: {entry!r} is not an origin (scheme://host[:port])")
        elif settings.is_production and parts.scheme != "https":
            problems.append(f"VERIFY_RETURN_URL_ORIGINS: {entry!r} must be https:// in production")
    return problems
